//! Parsers: bytes of one format → a [`ParsedDocument`] of headings and paragraphs (with page
//! numbers for PDFs and slide numbers for PPTX), all text normalised by [`crate::text`].
//!
//! Every parser treats its input as hostile: sizes are checked before work, compressed parts
//! are inflated through a counting limit rather than trusting their headers (`package`), XML
//! entities are never expanded, markup nesting, table rows and email attachments are bounded,
//! PDF extraction and email parsing run under `catch_unwind`, and the OCR tools run as child
//! processes that are killed at their deadline ([`ocr`]).
//!
//! Tables (XLSX sheets, CSV) become one paragraph per row that repeats the header row
//! (`Nama: Ali; Jabatan: Kewangan; Baki cuti: 12`), so every row can be found and quoted on
//! its own.

mod delimited;
mod docx;
mod eml;
mod html;
mod markdown;
pub mod ocr;
mod package;
mod pdf;
mod plain;
mod pptx;
mod table;
mod xlsx;

use serde::{Deserialize, Serialize};

pub use ocr::OcrOptions;

use crate::detect::Format;
use crate::text;

/// Resource limits for parsing one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest input accepted, in bytes. Default 100 MiB.
    pub max_file_bytes: u64,
    /// Most bytes decompressed from a zip package (DOCX, XLSX, PPTX), all parts together.
    /// Default 200 MiB.
    pub max_uncompressed_bytes: u64,
    /// Most entries a zip package may have. Default 10 000.
    pub max_zip_entries: usize,
    /// Largest decompressed/compressed ratio of a zip part, checked while inflating once the
    /// part is past its first MiB. Default 200.
    pub max_ratio: u64,
    /// Markup nesting beyond which HTML and Markdown structure is flattened into the
    /// enclosing paragraph (the text is kept). Default 256.
    pub max_depth: usize,
    /// Most non-empty rows read from a spreadsheet (all sheets together) or a CSV file; more is
    /// [`ParseError::TableTooLarge`]. Default 100 000.
    pub max_table_rows: usize,
    /// Most non-empty cells read from a spreadsheet or CSV file; more is
    /// [`ParseError::TableTooLarge`]. Default 2 000 000.
    pub max_table_cells: usize,
    /// Most attachments returned from one email; further ones are left out. Default 32.
    pub max_attachments: usize,
    /// Most bytes of attachments returned from one email, all together; an attachment that
    /// would pass this is left out. Default 100 MiB.
    pub max_attachment_bytes: u64,
    /// OCR for PDF pages without a text layer; `None` turns it off (such pages are then
    /// skipped, and a PDF with no text at all is [`ParseError::NoText`]). Default: on.
    pub ocr: Option<OcrOptions>,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_file_bytes: 100 * 1024 * 1024,
            max_uncompressed_bytes: 200 * 1024 * 1024,
            max_zip_entries: 10_000,
            max_ratio: 200,
            max_depth: 256,
            max_table_rows: 100_000,
            max_table_cells: 2_000_000,
            max_attachments: 32,
            max_attachment_bytes: 100 * 1024 * 1024,
            ocr: Some(OcrOptions::default()),
        }
    }
}

pub use crate::error::ParseError;

/// What a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A heading; level 1 is the top.
    Heading {
        /// 1 (top) to 9.
        level: u8,
    },
    /// Body text: a paragraph, list item, table row or code block.
    Paragraph,
}

/// One heading or paragraph of normalised text (never empty, no line breaks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Heading or paragraph.
    pub kind: BlockKind,
    /// Normalised text.
    pub text: String,
    /// 1-based location: the page of a PDF, the slide of a PPTX (in presentation order);
    /// `None` for other formats.
    pub page: Option<u32>,
}

impl Block {
    /// A heading block.
    pub fn heading(level: u8, text: impl Into<String>, page: Option<u32>) -> Block {
        Block {
            kind: BlockKind::Heading { level },
            text: text.into(),
            page,
        }
    }

    /// A paragraph block.
    pub fn paragraph(text: impl Into<String>, page: Option<u32>) -> Block {
        Block {
            kind: BlockKind::Paragraph,
            text: text.into(),
            page,
        }
    }

    /// The heading level, if this is a heading.
    pub fn heading_level(&self) -> Option<u8> {
        match self.kind {
            BlockKind::Heading { level } => Some(level),
            BlockKind::Paragraph => None,
        }
    }
}

/// A parsed document: an optional title and its blocks in reading order, plus what the caller
/// must know about how it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedDocument {
    /// The title from metadata or the first top heading, if any.
    pub title: Option<String>,
    /// Headings and paragraphs in reading order.
    pub blocks: Vec<Block>,
    /// Pages whose text was recognised by OCR rather than read from a text layer (PDFs only),
    /// ascending.
    pub ocr_pages: Vec<u32>,
    /// Files attached to an email, in a supported format, for the caller to read as documents
    /// of their own (emails only; never emails themselves: a nested email's text is part of
    /// this document).
    pub attachments: Vec<Attachment>,
}

/// A file attached to an email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name, unique within the email: no folders, no control characters, with an
    /// extension that gives `format` (`lampiran-2.pdf` when the email named none).
    pub name: String,
    /// The format to parse it as.
    pub format: Format,
    /// The decoded content (serialised as a hex string: a parse worker process sends the
    /// document as JSON, where an array of numbers would take twice the room).
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

mod hex_bytes {
    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        hex::decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

impl ParsedDocument {
    /// The blocks' texts joined with `"\n\n"`, headings included. Chunk offsets index into
    /// this string by `char`.
    pub fn full_text(&self) -> String {
        let len = self.blocks.iter().map(|b| b.text.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                out.push_str("\n\n");
            }
            out.push_str(&b.text);
        }
        out
    }

    /// For paged formats, each page's `(page, char_start, char_end)` in [`Self::full_text`]
    /// (by `char`, like chunk offsets).
    pub fn page_spans(&self) -> Vec<(u32, usize, usize)> {
        let mut spans: Vec<(u32, usize, usize)> = Vec::new();
        let mut offset = 0usize;
        for (i, b) in self.blocks.iter().enumerate() {
            if i > 0 {
                offset += 2; // the "\n\n" that full_text puts between blocks
            }
            let len = b.text.chars().count();
            if let Some(page) = b.page {
                match spans.last_mut() {
                    Some(last) if last.0 == page => last.2 = offset + len,
                    _ => spans.push((page, offset, offset + len)),
                }
            }
            offset += len;
        }
        spans
    }

    /// The highest page (PDF) or slide (PPTX) number of any block.
    pub fn last_page(&self) -> Option<u32> {
        self.blocks.iter().filter_map(|b| b.page).max()
    }
}

/// Parses `bytes` as `format`.
///
/// Fails with [`ParseError::NoText`] when the document has no text at all.
pub fn parse(
    format: Format,
    bytes: &[u8],
    limits: &ParseLimits,
) -> Result<ParsedDocument, ParseError> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len() as u64,
            max: limits.max_file_bytes,
        });
    }
    format.check_magic(bytes)?;
    let mut doc = match format {
        Format::Pdf => pdf::parse(bytes, limits)?,
        Format::Docx => docx::parse(bytes, limits)?,
        Format::Xlsx => xlsx::parse(bytes, limits)?,
        Format::Pptx => pptx::parse(bytes, limits)?,
        Format::Csv => delimited::parse(&decode_text(bytes, false), limits)?,
        Format::Eml => eml::parse(bytes, limits)?,
        Format::Html => html::parse(&decode_text(bytes, true), limits),
        Format::Markdown => markdown::parse(&decode_text(bytes, false), limits),
        Format::Text => plain::parse(&decode_text(bytes, false)),
    };
    doc.blocks.retain(|b| !b.text.is_empty());
    doc.title = doc
        .title
        .map(|t| text::normalize(&t))
        .filter(|t| !t.is_empty());
    if doc.blocks.is_empty() {
        return Err(ParseError::NoText);
    }
    Ok(doc)
}

pub(crate) use crate::error::panic_message;

/// Decodes a text file: BOM first (UTF-8, UTF-16), then UTF-8, then (HTML) a declared
/// `charset`, then Windows-1252, which also reads Latin-1 and never fails.
pub(crate) fn decode_text(bytes: &[u8], html: bool) -> String {
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        return enc
            .decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned();
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    let mut enc = encoding_rs::WINDOWS_1252;
    if html {
        if let Some(declared) = html_charset(&bytes[..bytes.len().min(2048)]) {
            enc = declared;
        }
    }
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

fn html_charset(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let rest = &lower[at..];
    let rest = rest
        .strip_prefix(b"\"")
        .or(rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
        .unwrap_or(rest.len());
    encoding_rs::Encoding::for_label(&rest[..end])
}

/// Accumulates blocks, normalising text and dropping empty ones.
#[derive(Default)]
pub(crate) struct Blocks {
    pub(crate) blocks: Vec<Block>,
}

impl Blocks {
    pub(crate) fn heading(&mut self, level: u8, raw: &str, page: Option<u32>) {
        let t = text::normalize(raw);
        if !t.is_empty() {
            self.blocks.push(Block::heading(level.clamp(1, 9), t, page));
        }
    }

    pub(crate) fn paragraph(&mut self, raw: &str, page: Option<u32>) {
        let t = text::normalize(raw);
        if !t.is_empty() {
            self.blocks.push(Block::paragraph(t, page));
        }
    }
}

/// A paragraph of raw lines from a line-oriented source (PDF page text, plain text).
#[derive(Debug, Clone)]
pub(crate) struct Para {
    pub(crate) page: Option<u32>,
    pub(crate) lines: Vec<String>,
}

/// Groups lines into paragraphs on blank lines.
pub(crate) fn paras_from_lines(text: &str, page: Option<u32>) -> Vec<Para> {
    let mut paras = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !cur.is_empty() {
                paras.push(Para {
                    page,
                    lines: std::mem::take(&mut cur),
                });
            }
        } else {
            cur.push(line.to_owned());
        }
    }
    if !cur.is_empty() {
        paras.push(Para { page, lines: cur });
    }
    paras
}

/// Turns paragraphs of lines into blocks, recovering headings conservatively: a one-line
/// paragraph that looks like a heading (numbered, a `Bahagian 2` style label, ALL CAPS, or a
/// short Title Case line) and is followed by body text; the first line of a paragraph is split
/// off as a heading only when it is numbered, labelled or ALL CAPS and the next line does not
/// continue a sentence. A run of candidates at the same level is a list, not headings.
/// `dehyphenate` joins lines with [`text::join_lines`] (PDFs).
pub(crate) fn blocks_from_paras(paras: Vec<Para>, dehyphenate: bool) -> Vec<Block> {
    let mut split: Vec<Para> = Vec::with_capacity(paras.len());
    for p in paras {
        if p.lines.len() > 1
            && wrapped_heading_level(&p.lines).is_none()
            && heading_level(&p.lines[0], false).is_some()
            && !p.lines[1].chars().next().is_some_and(char::is_lowercase)
        {
            let mut lines = p.lines;
            let rest = lines.split_off(1);
            split.push(Para {
                page: p.page,
                lines,
            });
            split.push(Para {
                page: p.page,
                lines: rest,
            });
        } else {
            split.push(p);
        }
    }
    let levels: Vec<Option<u8>> = split
        .iter()
        .map(|p| wrapped_heading_level(&p.lines))
        .collect();
    let mut out = Blocks::default();
    for (i, p) in split.iter().enumerate() {
        let level = levels[i].filter(|&l| match split.get(i + 1) {
            None => false,
            Some(_) => levels[i + 1].is_none_or(|next| next > l),
        });
        match level {
            Some(l) => out.heading(l, &p.lines.join(" "), p.page),
            None if dehyphenate => {
                let joined = text::join_lines(p.lines.iter().map(String::as_str));
                if !joined.is_empty() {
                    out.blocks.push(Block::paragraph(joined, p.page));
                }
            }
            None => out.paragraph(&p.lines.join(" "), p.page),
        }
    }
    out.blocks
}

/// [`heading_level`] of a paragraph of up to three lines (a heading may wrap), as one line.
fn wrapped_heading_level(lines: &[String]) -> Option<u8> {
    match lines {
        [line] => heading_level(line, true),
        [first, ..] if lines.len() <= 3 && !first.ends_with('-') => {
            heading_level(&lines.join(" "), true)
        }
        _ => None,
    }
}

/// Section labels that start a heading when followed by a number or letter.
const SECTION_WORDS: &[&str] = &[
    "appendix", "article", "bab", "bahagian", "chapter", "jadual", "lampiran", "part", "perkara",
    "schedule", "section", "seksyen",
];

/// Guesses whether one line is a heading and at which level. `standalone`: the line is a
/// paragraph of its own, which also admits short Title Case lines.
pub(crate) fn heading_level(line: &str, standalone: bool) -> Option<u8> {
    let line = line.trim();
    let chars = line.chars().count();
    let words: Vec<&str> = line.split_whitespace().collect();
    if chars == 0 || chars > 100 || words.len() > 12 {
        return None;
    }
    let last = line.chars().last()?;
    if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '-' | '–' | '—') {
        return None;
    }
    let first = line.chars().next()?;
    if !(first.is_uppercase() || first.is_ascii_digit()) {
        return None;
    }
    if line.contains("....") || line.contains('…') {
        return None; // a table-of-contents line
    }
    // "1. Pengenalan", "2.3 Claims", "4.1.2 Syarat Kelayakan"
    if let Some((depth, rest)) = numbered_prefix(line) {
        let rest_first = rest.chars().next()?;
        let rest_words = rest.split_whitespace().count();
        return (rest_first.is_uppercase() && rest_words <= 10 && mostly_words(rest))
            .then_some(depth.min(6) as u8);
    }
    let first_word = words[0].to_lowercase();
    if SECTION_WORDS.contains(&first_word.as_str()) && words.len() >= 2 {
        let label = words[1].trim_end_matches([':', '.', ')']);
        let is_label = label.chars().all(|c| c.is_ascii_digit())
            || label.chars().all(|c| "IVXLCivxlc".contains(c))
            || (label.chars().count() == 1 && label.chars().all(char::is_alphabetic));
        if is_label && !label.is_empty() {
            return Some(1);
        }
    }
    if !mostly_words(line) {
        return None; // code, identifiers, tables of numbers
    }
    let letters: Vec<char> = line.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 4 && letters.iter().all(|c| c.is_uppercase()) && words.len() <= 10 {
        return Some(1);
    }
    if standalone && words.len() <= 8 {
        let significant: Vec<&&str> = words
            .iter()
            .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() > 3)
            .filter(|w| {
                let lw = w.to_lowercase();
                text::MALAY_STOPWORDS.binary_search(&lw.as_str()).is_err()
                    && text::ENGLISH_STOPWORDS.binary_search(&lw.as_str()).is_err()
            })
            .collect();
        let title_case = !significant.is_empty()
            && significant
                .iter()
                .all(|w| w.chars().next().is_some_and(|c| c.is_uppercase()));
        if title_case {
            return Some(2);
        }
    }
    None
}

/// More than half of the whitespace-separated tokens are words: letters (digits allowed when
/// fewer than the letters, as in `ASN.1`), no underscores.
fn mostly_words(s: &str) -> bool {
    let (mut words, mut total) = (0usize, 0usize);
    for token in s.split_whitespace() {
        total += 1;
        let core = token.trim_matches(|c: char| !c.is_alphanumeric());
        let letters = core.chars().filter(|c| c.is_alphabetic()).count();
        let digits = core.chars().filter(char::is_ascii_digit).count();
        if letters > 0 && digits < letters && !core.contains('_') {
            words += 1;
        }
    }
    words * 2 > total
}

/// `"2.3 Claims"` → `(2, "Claims")`; `"1. Pengenalan"` → `(1, "Pengenalan")`.
fn numbered_prefix(line: &str) -> Option<(usize, &str)> {
    let (number, rest) = line.split_once(char::is_whitespace)?;
    let trimmed = number.strip_suffix('.').unwrap_or(number);
    if trimmed.is_empty() || trimmed.len() > 12 {
        return None;
    }
    let parts: Vec<&str> = trimmed.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()));
    // A bare number without a dot ("2020 Annual Report") is a heading only when short.
    if !numeric || (parts.len() == 1 && !number.ends_with('.') && trimmed.len() > 2) {
        return None;
    }
    Some((parts.len(), rest.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_text_joins_blocks() {
        let doc = ParsedDocument {
            blocks: vec![Block::heading(1, "A", None), Block::paragraph("b c", None)],
            ..ParsedDocument::default()
        };
        assert_eq!(doc.full_text(), "A\n\nb c");
        assert_eq!(ParsedDocument::default().full_text(), "");
    }

    #[test]
    fn a_parsed_document_survives_json_with_its_attachments() {
        let doc = ParsedDocument {
            title: Some("T".into()),
            blocks: vec![Block::paragraph("b", Some(2))],
            ocr_pages: vec![2],
            attachments: vec![Attachment {
                name: "a.pdf".into(),
                format: Format::Pdf,
                bytes: vec![0, 0xff, b'%'],
            }],
        };
        let json = serde_json::to_string(&doc).unwrap();
        assert!(json.contains("\"bytes\":\"00ff25\""), "{json}");
        assert_eq!(serde_json::from_str::<ParsedDocument>(&json).unwrap(), doc);
    }

    #[test]
    fn guesses_headings_conservatively() {
        assert_eq!(heading_level("1. Pengenalan", false), Some(1));
        assert_eq!(heading_level("2.3 Claims", false), Some(2));
        assert_eq!(heading_level("4.1.2 Syarat Kelayakan", false), Some(3));
        assert_eq!(heading_level("BAHAGIAN II", false), Some(1));
        assert_eq!(heading_level("Bahagian 3: Cuti", false), Some(1));
        assert_eq!(heading_level("CUTI TAHUNAN", false), Some(1));
        assert_eq!(heading_level("Cuti Tahunan", true), Some(2));
        assert_eq!(heading_level("Cuti Tahunan", false), None);
        assert_eq!(heading_level("Pekerja hendaklah memohon cuti.", true), None);
        assert_eq!(
            heading_level("1. Pekerja hendaklah memohon cuti.", true),
            None
        );
        assert_eq!(heading_level("2020 annual report", true), None);
        assert_eq!(heading_level("3.1 pekerja tetap", true), None);
        assert_eq!(heading_level("Kandungan ........ 3", true), None);
        assert_eq!(heading_level("dan seterusnya", true), None);
        assert_eq!(heading_level("2.1 ASN.1 Syntax", true), Some(2));
        assert_eq!(heading_level("4 CARD32 FIRST_MATCHLET_OFFSET", true), None);
        assert_eq!(
            heading_level("AliasListEntry: 4 CARD32 ALIAS_OFFSET 4 CARD32", true),
            None
        );
    }

    #[test]
    fn paragraphs_and_headings_from_lines() {
        let text = "1. Pengenalan\nDasar ini menerangkan cuti.\n\nItem satu\n\n\
                    2. Skop\n\nDasar ini terpakai kepada semua pekerja.";
        let blocks = blocks_from_paras(paras_from_lines(text, Some(3)), true);
        let got: Vec<_> = blocks
            .iter()
            .map(|b| (b.heading_level(), b.text.as_str(), b.page))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), "1. Pengenalan", Some(3)),
                (None, "Dasar ini menerangkan cuti.", Some(3)),
                (None, "Item satu", Some(3)),
                (Some(1), "2. Skop", Some(3)),
                (None, "Dasar ini terpakai kepada semua pekerja.", Some(3)),
            ]
        );
    }

    #[test]
    fn a_wrapped_heading_stays_whole() {
        let text = "PROSEDUR PEROLEHAN BARANGAN DAN\nPERKHIDMATAN\n\nProsedur ini terpakai.";
        let blocks = blocks_from_paras(paras_from_lines(text, Some(1)), true);
        assert_eq!(
            blocks,
            [
                Block::heading(1, "PROSEDUR PEROLEHAN BARANGAN DAN PERKHIDMATAN", Some(1)),
                Block::paragraph("Prosedur ini terpakai.", Some(1)),
            ]
        );
    }

    #[test]
    fn a_list_of_short_numbered_lines_is_not_headings() {
        let text =
            "1. Cuti Tahunan\n\n2. Cuti Sakit\n\n3. Cuti Bersalin\n\nSemua cuti perlu diluluskan.";
        let blocks = blocks_from_paras(paras_from_lines(text, None), false);
        let headings = blocks
            .iter()
            .filter(|b| b.heading_level().is_some())
            .count();
        assert_eq!(headings, 1, "{blocks:?}");
    }

    #[test]
    fn decodes_boms_and_legacy_encodings() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFhai", false), "hai");
        assert_eq!(decode_text(b"\xFF\xFEh\0a\0i\0", false), "hai");
        assert_eq!(decode_text(b"caf\xE9", false), "café");
        let html = b"<meta charset=\"iso-8859-5\"><p>\xB0</p>";
        assert!(decode_text(html, true).contains('А'));
    }

    #[test]
    fn too_large_input_is_rejected_before_parsing() {
        let limits = ParseLimits {
            max_file_bytes: 3,
            ..ParseLimits::default()
        };
        let err = parse(Format::Text, b"four", &limits).unwrap_err();
        assert_eq!(err.reason(), "too_large");
    }

    #[test]
    fn empty_text_is_no_text() {
        let err = parse(Format::Text, b"  \n\n \x00 ", &ParseLimits::default()).unwrap_err();
        assert!(matches!(err, ParseError::NoText));
    }
}
