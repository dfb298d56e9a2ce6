//! `tanya-ingest`: files → located chunks.
//!
//! [`walk`] lists the supported files under a folder safely, [`parse`] turns the bytes of one
//! file into headings and paragraphs (with page numbers for PDFs and slide numbers for PPTX),
//! [`chunk`] cuts those into located [`Chunk`]s, and [`read_document`] does all of it for one
//! [`SourceFile`].
//!
//! Deliberately absent: models, stores, HTTP, threads. Everything here is deterministic: the
//! same bytes and settings always give the same chunks. The one impurity is OCR of PDF pages
//! without a text layer, which runs Debian's `pdftoppm` and `tesseract` as child processes
//! with a deadline ([`parse::ocr`]); [`ParseLimits::ocr`] turns it off.

pub mod chunk;
pub mod detect;
pub mod error;
pub mod lang;
pub mod open;
pub mod parse;
pub mod text;
pub mod walk;

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use chunk::{chunk, Chunk, ChunkerConfig, TokenCounter, WordEstimate};
pub use detect::{detect, Format};
pub use error::panic_message;
pub use lang::{detect_lang, Lang};
pub use parse::{
    parse, Attachment, Block, BlockKind, OcrOptions, ParseError, ParseLimits, ParsedDocument,
};
pub use text::{ENGLISH_STOPWORDS, MALAY_STOPWORDS};
pub use walk::{walk, SkipReason, Skipped, SourceFile, Walk, WalkError, WalkOptions, GROUPS_FILE};

/// One document, read, parsed and chunked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// `/`-separated path relative to the walked root.
    pub rel_path: String,
    /// The parsed title, else the file name without its extension.
    pub title: String,
    /// The format it was parsed as.
    pub format: Format,
    /// SHA-256 (hex) of the file's bytes: changes exactly when the content changes.
    pub content_hash: String,
    /// The language of most of the text (chunks weighted by length).
    pub lang: Lang,
    /// Number of the last page (PDF) or slide (PPTX) with text; `None` for other formats.
    pub pages: Option<u32>,
    /// Pages whose text came from OCR (PDFs only), ascending.
    pub ocr_pages: Vec<u32>,
    /// Attachments of an email, for the caller to read as documents of their own.
    pub attachments: Vec<Attachment>,
    /// [`ParsedDocument::full_text`]: chunk offsets index into this by `char`.
    pub full_text: String,
    /// [`ParsedDocument::page_spans`]: `(page, char_start, char_end)` in `full_text`.
    pub page_spans: Vec<(u32, usize, usize)>,
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
}

/// Why a document could not be read. `Display` is a message for people; [`ReadError::reason`]
/// is a short code for machines.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is over [`ParseLimits::max_file_bytes`].
    #[error("the file is {} but the limit is {}", walk::human_bytes(*.size), walk::human_bytes(*.max))]
    TooLarge {
        /// File size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// Not something Tanya can read (not a regular file, or a format it does not support).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The file, or a folder on its path, became a symlink (or left its root) after it was
    /// listed: it is not read (see [`open::open_beneath`]).
    #[error("{rel_path}: {source}")]
    Escapes {
        /// The file, relative to its root.
        rel_path: String,
        /// Always [`open::OpenError::Escapes`].
        #[source]
        source: open::OpenError,
    },
    /// The parser rejected the file.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl ReadError {
    /// A short machine code: `unsupported`, `symlink`, `encrypted`, `too_large`,
    /// `decompression_limit`, `parse_error`, `timeout`, `no_text`, `ocr_unavailable` or `io`.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Io { .. } => "io",
            ReadError::TooLarge { .. } => "too_large",
            ReadError::Unsupported(_) => "unsupported",
            ReadError::Escapes { .. } => "symlink",
            ReadError::Parse(e) => e.reason(),
        }
    }
}

/// Reads, parses and chunks one file: [`read_and_parse`] then [`build_document`].
pub fn read_document(
    file: &SourceFile,
    limits: &ParseLimits,
    cfg: &ChunkerConfig,
    counter: &dyn TokenCounter,
) -> Result<Document, ReadError> {
    let (content_hash, parsed) = read_and_parse(file, limits)?;
    Ok(build_document(file, content_hash, parsed, cfg, counter))
}

/// The part of reading that touches untrusted bytes: reads the file (bounded) and
/// parses it. Returns the content hash and the parsed document. This is what an
/// isolated worker process runs.
pub fn read_and_parse(
    file: &SourceFile,
    limits: &ParseLimits,
) -> Result<(String, ParsedDocument), ReadError> {
    let bytes = read_bounded(file, limits.max_file_bytes)?;
    let content_hash = content_hash(&bytes);
    let parsed = parse(file.format, &bytes, limits)?;
    Ok((content_hash, parsed))
}

/// Chunks a parsed document and fills in its metadata (title, language, pages).
pub fn build_document(
    file: &SourceFile,
    content_hash: String,
    mut parsed: ParsedDocument,
    cfg: &ChunkerConfig,
    counter: &dyn TokenCounter,
) -> Document {
    let chunks = chunk(&parsed, cfg, counter);
    let full_text = parsed.full_text();
    let lang = majority_lang(&chunks).unwrap_or_else(|| detect_lang(&full_text));
    let title = parsed
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| file_stem(&file.rel_path));
    Document {
        rel_path: file.rel_path.clone(),
        title,
        format: file.format,
        content_hash,
        lang,
        pages: match file.format {
            Format::Pdf | Format::Pptx => parsed.last_page(),
            _ => None,
        },
        ocr_pages: std::mem::take(&mut parsed.ocr_pages),
        attachments: std::mem::take(&mut parsed.attachments),
        page_spans: parsed.page_spans(),
        full_text,
        chunks,
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The one document id: the first 16 hex characters of the SHA-256 of the source's
/// canonical path, so a file keeps its id across edits and re-reads, and two roots that
/// reach one file share it. An email's attachment is `email path#attachment name`.
pub fn doc_id_for(canonical: &std::path::Path) -> String {
    let mut id = content_hash(canonical.to_string_lossy().as_bytes());
    id.truncate(16);
    id
}

/// The bytes of a listed file, opened beneath its root through no symlink
/// ([`open::open_beneath`]): at most `max`, failing with [`ReadError::TooLarge`] rather
/// than reading more, and refusing anything that is not a regular file.
pub fn read_bounded(file: &SourceFile, max: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: file.path.clone(),
        source,
    };
    let f = match open::open_beneath(&file.root, &file.path) {
        Ok(f) => f,
        Err(open::OpenError::Io(e)) => return Err(io(e)),
        Err(open::OpenError::NotAFile) => {
            return Err(ReadError::Unsupported(
                "not a regular file (a pipe, socket or device)".into(),
            ))
        }
        Err(source) => {
            return Err(ReadError::Escapes {
                rel_path: file.rel_path.clone(),
                source,
            })
        }
    };
    read_to_limit(f, max).map_err(|e| match e {
        Bounded::Io(e) => io(e),
        Bounded::TooLarge(size) => ReadError::TooLarge { size, max },
    })
}

/// Why [`read_to_limit`] stopped.
#[derive(Debug)]
pub enum Bounded {
    /// Reading failed.
    Io(std::io::Error),
    /// The file has this many bytes (at least), over the limit.
    TooLarge(u64),
}

/// Reads an opened file to its end, refusing one over `max` bytes (by its size first, then
/// by what is actually read: a file may grow while it is read).
pub fn read_to_limit(f: std::fs::File, max: u64) -> Result<Vec<u8>, Bounded> {
    let len = f.metadata().map_err(Bounded::Io)?.len();
    if len > max {
        return Err(Bounded::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Bounded::Io)?;
    if bytes.len() as u64 > max {
        return Err(Bounded::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The language covering most characters of the chunks; English wins ties.
fn majority_lang(chunks: &[Chunk]) -> Option<Lang> {
    if chunks.is_empty() {
        return None;
    }
    let (mut ms, mut en) = (0usize, 0usize);
    for c in chunks {
        let n = c.char_end - c.char_start;
        match c.lang {
            Lang::Ms => ms += n,
            Lang::En => en += n,
        }
    }
    Some(if ms > en { Lang::Ms } else { Lang::En })
}

/// `"dir/Dasar Cuti.pdf"` → `"Dasar Cuti"`.
fn file_stem(rel_path: &str) -> String {
    let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    match name.rfind('.') {
        Some(dot) if dot > 0 => name[..dot].to_owned(),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_hashes() {
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(doc_id_for(std::path::Path::new("")), "e3b0c44298fc1c14");
        assert_eq!(doc_id_for(std::path::Path::new("/a/b.pdf")).len(), 16);
    }

    #[test]
    fn file_stems() {
        assert_eq!(file_stem("dir/Dasar Cuti.pdf"), "Dasar Cuti");
        assert_eq!(file_stem("notes.v2.md"), "notes.v2");
        assert_eq!(file_stem(".hidden"), ".hidden");
        assert_eq!(file_stem("plain"), "plain");
    }

    #[test]
    fn reasons_are_short_codes() {
        let e = ReadError::from(ParseError::Encrypted);
        assert_eq!(e.reason(), "encrypted");
        assert!(e.to_string().contains("encrypted"));
        assert_eq!(
            ReadError::TooLarge { size: 2, max: 1 }.reason(),
            "too_large"
        );
        assert_eq!(ReadError::from(ParseError::NoText).reason(), "no_text");
        assert_eq!(ReadError::from(ParseError::NotPdf).reason(), "parse_error");
        assert_eq!(
            ReadError::from(ParseError::DecompressionLimit {
                part: "x".into(),
                limit: 1
            })
            .reason(),
            "decompression_limit"
        );
        assert_eq!(ReadError::Unsupported("x".into()).reason(), "unsupported");
        assert_eq!(
            ReadError::from(ParseError::OcrUnavailable("x".into())).reason(),
            "ocr_unavailable"
        );
        assert_eq!(
            ReadError::from(ParseError::Timeout("x".into())).reason(),
            "timeout"
        );
        assert_eq!(
            ReadError::from(ParseError::TableTooLarge {
                what: "rows",
                max: 1
            })
            .reason(),
            "too_large"
        );
    }
}
