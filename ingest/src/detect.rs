//! Format detection: the file extension picks the parser, and the first bytes must agree where a
//! wrong guess would feed garbage to a binary parser (PDF, and the zip packages DOCX, XLSX and
//! PPTX). CSV and email are text and accept anything.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// The start of an OLE compound file: an encrypted OOXML package (or a legacy `.doc`).
const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The document formats Tanya reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `.pdf`
    Pdf,
    /// `.docx` (Office Open XML word processing)
    Docx,
    /// `.xlsx` (Office Open XML spreadsheet): one paragraph per row, headed by the header row.
    Xlsx,
    /// `.pptx` (Office Open XML presentation): a block's `page` is its slide number.
    Pptx,
    /// `.html`, `.htm`
    Html,
    /// `.md`, `.markdown`
    Markdown,
    /// `.txt`, `.text`
    Text,
    /// `.csv`, `.tsv` (delimiter detected): one paragraph per row, headed by the first row.
    Csv,
    /// `.eml` (RFC 822 / MIME email): its attachments are returned to be read on their own.
    Eml,
}

impl Format {
    /// Every format, in a stable order.
    pub const ALL: [Format; 9] = [
        Format::Pdf,
        Format::Docx,
        Format::Xlsx,
        Format::Pptx,
        Format::Html,
        Format::Markdown,
        Format::Text,
        Format::Csv,
        Format::Eml,
    ];

    /// The format for a file extension (without the dot, any case), if it is supported.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "pdf" => Some(Format::Pdf),
            "docx" => Some(Format::Docx),
            "xlsx" => Some(Format::Xlsx),
            "pptx" => Some(Format::Pptx),
            "html" | "htm" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "csv" | "tsv" => Some(Format::Csv),
            "eml" => Some(Format::Eml),
            _ => None,
        }
    }

    /// The format for a path, by its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Format::from_extension)
    }

    /// The lowercase name used in serialised form (`"pdf"`, `"docx"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Csv => "csv",
            Format::Eml => "eml",
        }
    }

    /// The usual file extension, without the dot (`"pdf"`, `"md"`, …).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Text => "txt",
            other => other.as_str(),
        }
    }

    /// Checks that `bytes` plausibly are this format: a PDF must contain `%PDF-` within its first
    /// 1024 bytes, a DOCX, XLSX or PPTX must start like a zip archive (an OLE container there
    /// means a password-protected document: [`ParseError::Encrypted`]). Text formats (HTML,
    /// Markdown, text, CSV, email) accept anything.
    pub fn check_magic(self, bytes: &[u8]) -> Result<(), ParseError> {
        match self {
            Format::Pdf => {
                let head = &bytes[..bytes.len().min(1024)];
                if head.windows(5).any(|w| w == b"%PDF-") {
                    Ok(())
                } else {
                    Err(ParseError::NotPdf)
                }
            }
            Format::Docx | Format::Xlsx | Format::Pptx => {
                if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
                    Ok(())
                } else if bytes.starts_with(&OLE_MAGIC) && has_encryption_info(bytes) {
                    // Password-protected Office files are OLE containers wrapping the package.
                    Err(ParseError::Encrypted)
                } else {
                    Err(ParseError::NotZip)
                }
            }
            Format::Html | Format::Markdown | Format::Text | Format::Csv | Format::Eml => Ok(()),
        }
    }
}

/// Whether an OLE container has an `EncryptionInfo` stream (its name is stored in UTF-16LE).
fn has_encryption_info(bytes: &[u8]) -> bool {
    let name: Vec<u8> = "EncryptionInfo"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    bytes.windows(name.len()).any(|w| w == name.as_slice())
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of `path` by extension; `None` when it is not supported.
pub fn detect(path: &Path) -> Option<Format> {
    Format::from_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_extension_case_insensitively() {
        assert_eq!(detect(Path::new("a/B.PDF")), Some(Format::Pdf));
        assert_eq!(detect(Path::new("x.htm")), Some(Format::Html));
        assert_eq!(detect(Path::new("x.markdown")), Some(Format::Markdown));
        assert_eq!(detect(Path::new("x.text")), Some(Format::Text));
        assert_eq!(detect(Path::new("x.docx")), Some(Format::Docx));
        assert_eq!(detect(Path::new("x.XLSX")), Some(Format::Xlsx));
        assert_eq!(detect(Path::new("x.pptx")), Some(Format::Pptx));
        assert_eq!(detect(Path::new("x.csv")), Some(Format::Csv));
        assert_eq!(detect(Path::new("x.tsv")), Some(Format::Csv));
        assert_eq!(detect(Path::new("x.eml")), Some(Format::Eml));
        assert_eq!(detect(Path::new("x.xls")), None);
        assert_eq!(detect(Path::new("x.doc")), None);
        assert_eq!(detect(Path::new("README")), None);
        assert_eq!(detect(Path::new(".pdf")), None);
    }

    #[test]
    fn checks_magic_bytes() {
        assert!(Format::Pdf.check_magic(b"%PDF-1.7\n").is_ok());
        let mut late = vec![b' '; 1000];
        late.extend_from_slice(b"%PDF-1.4");
        assert!(Format::Pdf.check_magic(&late).is_ok());
        let mut too_late = vec![b' '; 1020];
        too_late.extend_from_slice(b"%PDF-1.4");
        assert!(matches!(
            Format::Pdf.check_magic(&too_late),
            Err(ParseError::NotPdf)
        ));
        assert!(matches!(
            Format::Docx.check_magic(b"<xml/>"),
            Err(ParseError::NotZip)
        ));
        assert!(Format::Docx.check_magic(b"PK\x03\x04rest").is_ok());
        let mut ole = OLE_MAGIC.to_vec();
        ole.extend(vec![0; 100]);
        assert!(matches!(
            Format::Docx.check_magic(&ole),
            Err(ParseError::NotZip)
        ));
        ole.extend("EncryptionInfo".encode_utf16().flat_map(u16::to_le_bytes));
        assert!(matches!(
            Format::Docx.check_magic(&ole),
            Err(ParseError::Encrypted)
        ));
        assert!(Format::Text.check_magic(b"").is_ok());
        assert!(Format::Eml.check_magic(b"").is_ok());
        assert!(Format::Xlsx.check_magic(b"PK\x03\x04").is_ok());
        assert!(matches!(
            Format::Pptx.check_magic(b"%PDF-1.4"),
            Err(ParseError::NotZip)
        ));
    }

    #[test]
    fn serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Format::Markdown).unwrap(),
            "\"markdown\""
        );
        for f in Format::ALL {
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
            assert_eq!(Format::from_extension(f.extension()), Some(f));
        }
    }
}
