//! Why a file could not be parsed: the one error type of the parsers and of format
//! detection.

/// Why a file could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A `.pdf` without `%PDF-` in its first 1024 bytes.
    #[error("not a PDF: the file does not start with a PDF header")]
    NotPdf,
    /// A `.docx`, `.xlsx` or `.pptx` that is not a zip archive.
    #[error("not an Office document: the file is not a zip archive (is it an old .doc, .xls or .ppt renamed?)")]
    NotZip,
    /// Password-protected or encrypted with a key we do not have.
    #[error("the document is encrypted or password-protected: save an unprotected copy and add it again")]
    Encrypted,
    /// Larger than [`ParseLimits::max_file_bytes`].
    #[error("the file is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Input size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A compressed part expands beyond the limits (a zip bomb, or just too big).
    #[error(
        "{part} expands beyond the decompression limit ({limit} bytes): the file may be a zip bomb"
    )]
    DecompressionLimit {
        /// The archive part being read.
        part: String,
        /// The limit that was hit, in bytes.
        limit: u64,
    },
    /// A zip with more entries than [`ParseLimits::max_zip_entries`].
    #[error("the archive has {count} entries, more than the limit of {max}")]
    TooManyEntries {
        /// Entries in the archive.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A zip package of another kind than its extension says (a DOCX renamed `.xlsx`).
    #[error("the file is another kind of Office document than its extension says: {0}")]
    WrongKind(String),
    /// A required part of a container format is missing.
    #[error("the file is damaged: {0} is missing")]
    MissingPart(String),
    /// The zip container is damaged.
    #[error("the file is damaged (zip): {0}")]
    Zip(String),
    /// Malformed XML.
    #[error("the file is damaged (XML): {0}")]
    Xml(String),
    /// A spreadsheet or CSV file with more rows or cells than the limits allow.
    #[error("the table has more than {max} {what}, over the limit")]
    TableTooLarge {
        /// `"rows"` or `"cells"`.
        what: &'static str,
        /// The limit that was passed.
        max: usize,
    },
    /// A damaged CSV file.
    #[error("the file is damaged (CSV): {0}")]
    Csv(String),
    /// Not an email: no header could be read.
    #[error("not an email: no message headers found")]
    NotEmail,
    /// The PDF could not be read.
    #[error("the PDF could not be read: {0}")]
    Pdf(String),
    /// The parser panicked; the panic was caught.
    #[error("the parser crashed on this file ({0}); it may be damaged")]
    Panicked(String),
    /// Parsed, but no text was found (for example a scanned PDF without a text layer, with
    /// OCR turned off or finding nothing).
    #[error(
        "no text found (in a PDF, scanned pages have no text layer: OCR found none or is off)"
    )]
    NoText,
    /// The PDF has no text layer and needs OCR, but the OCR tools (`tesseract` with its
    /// Malay and English data, `pdftoppm`) are not installed.
    #[error("the PDF has no text layer and OCR is unavailable: {0}")]
    OcrUnavailable(String),
    /// OCR ran out of time on every page that needed it.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The OCR tools failed for another reason.
    #[error("OCR failed: {0}")]
    Ocr(String),
}

impl ParseError {
    /// A short machine code: `encrypted`, `too_large`, `decompression_limit`, `no_text`,
    /// `ocr_unavailable`, `timeout` or `parse_error`.
    pub fn reason(&self) -> &'static str {
        match self {
            ParseError::Encrypted => "encrypted",
            ParseError::TooLarge { .. } | ParseError::TableTooLarge { .. } => "too_large",
            ParseError::DecompressionLimit { .. } | ParseError::TooManyEntries { .. } => {
                "decompression_limit"
            }
            ParseError::NoText => "no_text",
            ParseError::OcrUnavailable(_) => "ocr_unavailable",
            ParseError::Timeout(_) => "timeout",
            ParseError::NotPdf
            | ParseError::NotZip
            | ParseError::NotEmail
            | ParseError::MissingPart(_)
            | ParseError::WrongKind(_)
            | ParseError::Zip(_)
            | ParseError::Xml(_)
            | ParseError::Csv(_)
            | ParseError::Pdf(_)
            | ParseError::Ocr(_)
            | ParseError::Panicked(_) => "parse_error",
        }
    }
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
