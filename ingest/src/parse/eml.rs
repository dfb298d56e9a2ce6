//! Email (RFC 5322 / MIME, `.eml`) via `mail-parser`, which decodes quoted-printable, base64,
//! RFC 2047 encoded words and legacy charsets. The subject is the title and a level-1 heading;
//! `From`, `To`, `Cc` and `Date` follow as one paragraph, then the body: the `text/plain`
//! parts when there are any, else the `text/html` ones through the HTML parser.
//!
//! Attachments in a supported format are returned in [`ParsedDocument::attachments`] for the
//! caller to read as documents of their own, up to [`ParseLimits::max_attachments`] of them
//! and [`ParseLimits::max_attachment_bytes`] together. An attached email is not returned:
//! its headers and body become a level-2 section of this document and its own attachments
//! join this email's list; emails attached to it are left out (nesting is read one level
//! deep). Parsing runs under `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{Address, Message, MessageParser, MimeHeaders};

use super::{
    blocks_from_paras, html, paras_from_lines, Attachment, Blocks, ParseError, ParseLimits,
    ParsedDocument,
};
use crate::detect::Format;
use crate::text;

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    match catch_unwind(AssertUnwindSafe(|| read(bytes, limits))) {
        Ok(result) => result,
        Err(panic) => Err(ParseError::Panicked(super::panic_message(&*panic))),
    }
}

fn read(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or(ParseError::NotEmail)?;
    // `Message::headers` indexes the first part: check there is one.
    if message.parts.is_empty() || message.headers().is_empty() {
        return Err(ParseError::NotEmail);
    }
    let mut out = Blocks::default();
    let mut attachments = Attachments::new(limits);
    add_message(&message, 0, limits, &mut out, &mut attachments);
    if attachments.left_out > 0 {
        tracing::warn!(
            left_out = attachments.left_out,
            "email attachments over the count or size limit were left out"
        );
    }
    Ok(ParsedDocument {
        title: message.subject().map(text::normalize),
        blocks: out.blocks,
        attachments: attachments.list,
        ..ParsedDocument::default()
    })
}

/// Adds one message's headers, body and attachments; `depth` 0 is the email itself, 1 an
/// email attached to it.
fn add_message(
    message: &Message<'_>,
    depth: usize,
    limits: &ParseLimits,
    out: &mut Blocks,
    attachments: &mut Attachments,
) {
    if let Some(subject) = message.subject() {
        out.heading(if depth == 0 { 1 } else { 2 }, subject, None);
    }
    let mut fields = Vec::new();
    for (label, address) in [
        ("From", message.from()),
        ("To", message.to()),
        ("Cc", message.cc()),
    ] {
        if let Some(list) = address.map(addresses).filter(|l| !l.is_empty()) {
            fields.push(format!("{label}: {list}"));
        }
    }
    if let Some(date) = message.date() {
        fields.push(format!("Date: {}", date.to_rfc822()));
    }
    out.paragraph(&fields.join("; "), None);

    // `text_body` lists the text/plain parts, or the HTML ones where a message has no plain
    // alternative.
    for part in message.text_bodies() {
        let Some(body) = part.text_contents() else {
            continue;
        };
        if part.is_text_html() {
            out.blocks.extend(html::parse(body, limits).blocks);
        } else {
            let lines = text::normalize_lines(body);
            out.blocks
                .extend(blocks_from_paras(paras_from_lines(&lines, None), false));
        }
    }

    for (i, part) in message.attachments().enumerate() {
        if let Some(nested) = part.message() {
            if depth == 0 && !nested.parts.is_empty() {
                add_message(nested, depth + 1, limits, out, attachments);
            } else {
                attachments.left_out += 1;
            }
            continue;
        }
        let name = part.attachment_name();
        let by_name = name.and_then(|n| Format::from_path(std::path::Path::new(n)));
        let by_type = part
            .content_type()
            .and_then(|ct| format_of_mime(ct.ctype(), ct.subtype().unwrap_or_default()));
        let Some(format) = by_name.or(by_type) else {
            continue;
        };
        let bytes = part.contents();
        if format == Format::Eml {
            // An email attached as a file rather than as message/rfc822.
            match MessageParser::default().parse(bytes) {
                Some(nested)
                    if depth == 0 && !nested.parts.is_empty() && !nested.headers().is_empty() =>
                {
                    add_message(&nested, depth + 1, limits, out, attachments)
                }
                _ => attachments.left_out += 1,
            }
            continue;
        }
        attachments.push(name, i + 1, format, bytes);
    }
}

/// `Name <address>, address`.
fn addresses(address: &Address<'_>) -> String {
    let list: Vec<String> = address
        .iter()
        .filter_map(|a| match (a.name(), a.address()) {
            (Some(n), Some(addr)) if !n.trim().is_empty() => Some(format!("{} <{addr}>", n.trim())),
            (_, Some(addr)) => Some(addr.to_owned()),
            (Some(n), None) => Some(n.trim().to_owned()),
            (None, None) => None,
        })
        .collect();
    list.join(", ")
}

/// The supported format of a MIME type, if any (`application/octet-stream` is none: the
/// file name must tell).
fn format_of_mime(ctype: &str, subtype: &str) -> Option<Format> {
    let t = ctype.to_ascii_lowercase();
    let s = subtype.to_ascii_lowercase();
    Some(match (t.as_str(), s.as_str()) {
        ("application", "pdf") => Format::Pdf,
        ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document") => {
            Format::Docx
        }
        ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet") => Format::Xlsx,
        ("application", "vnd.openxmlformats-officedocument.presentationml.presentation") => {
            Format::Pptx
        }
        ("text", "html") => Format::Html,
        ("text", "markdown") => Format::Markdown,
        ("text", "plain") => Format::Text,
        ("text", "csv" | "tab-separated-values") => Format::Csv,
        ("message", "rfc822") => Format::Eml,
        _ => return None,
    })
}

/// The attachments kept so far, within the count and size limits.
struct Attachments {
    list: Vec<Attachment>,
    bytes: u64,
    max_count: usize,
    max_bytes: u64,
    left_out: usize,
}

/// Longest attachment name kept, in characters (before a de-duplicating suffix).
const MAX_NAME_CHARS: usize = 120;

impl Attachments {
    fn new(limits: &ParseLimits) -> Self {
        Attachments {
            list: Vec::new(),
            bytes: 0,
            max_count: limits.max_attachments,
            max_bytes: limits.max_attachment_bytes,
            left_out: 0,
        }
    }

    fn push(&mut self, name: Option<&str>, ordinal: usize, format: Format, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let size = bytes.len() as u64;
        if self.list.len() >= self.max_count || self.bytes.saturating_add(size) > self.max_bytes {
            self.left_out += 1;
            return;
        }
        let name = self.unique(safe_name(name, ordinal, format));
        self.bytes += size;
        self.list.push(Attachment {
            name,
            format,
            bytes: bytes.to_vec(),
        });
    }

    /// `name`, or `stem (2).ext`, `stem (3).ext`, … when an earlier attachment has it.
    fn unique(&self, name: String) -> String {
        let taken = |n: &str| self.list.iter().any(|a| a.name.eq_ignore_ascii_case(n));
        if !taken(&name) {
            return name;
        }
        let (stem, ext) = match name.rfind('.') {
            Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
            _ => (name.as_str(), ""),
        };
        (2..)
            .map(|n| format!("{stem} ({n}){ext}"))
            .find(|candidate| !taken(candidate))
            .unwrap_or(name)
    }
}

/// A file name safe to show and to use as a path component: the last component of what the
/// email says, without control characters or leading dots, at most [`MAX_NAME_CHARS`], with an
/// extension that gives `format`; `lampiran-N.ext` when nothing is left.
fn safe_name(name: Option<&str>, ordinal: usize, format: Format) -> String {
    let raw = name.unwrap_or_default();
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    let mut out = if cleaned.is_empty() {
        format!("lampiran-{ordinal}")
    } else {
        cleaned
    };
    if Format::from_path(std::path::Path::new(&out)) != Some(format) {
        out.push('.');
        out.push_str(format.extension());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_typed() {
        assert_eq!(
            safe_name(Some("Laporan.pdf"), 1, Format::Pdf),
            "Laporan.pdf"
        );
        assert_eq!(
            safe_name(Some("../../etc/passwd"), 1, Format::Text),
            "passwd.txt"
        );
        assert_eq!(
            safe_name(Some("C:\\x\\..\\nota\u{7}.md"), 1, Format::Markdown),
            "nota.md"
        );
        assert_eq!(safe_name(Some("..."), 3, Format::Pdf), "lampiran-3.pdf");
        assert_eq!(safe_name(None, 2, Format::Csv), "lampiran-2.csv");
        assert_eq!(safe_name(Some("data"), 2, Format::Xlsx), "data.xlsx");
    }

    #[test]
    fn duplicate_names_get_a_number() {
        let mut a = Attachments::new(&ParseLimits::default());
        a.push(Some("a.txt"), 1, Format::Text, b"x");
        a.push(Some("A.txt"), 2, Format::Text, b"y");
        a.push(Some("a.txt"), 3, Format::Text, b"z");
        let names: Vec<&str> = a.list.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "A (2).txt", "a (3).txt"]);
    }

    #[test]
    fn mime_types_map_to_formats() {
        assert_eq!(format_of_mime("Application", "PDF"), Some(Format::Pdf));
        assert_eq!(format_of_mime("text", "csv"), Some(Format::Csv));
        assert_eq!(format_of_mime("image", "png"), None);
        assert_eq!(format_of_mime("application", "octet-stream"), None);
    }
}
