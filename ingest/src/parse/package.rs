//! Office Open XML packages (DOCX, XLSX, PPTX): bounded zip reading, relationships and the
//! lenient XML helpers the three parsers share.
//!
//! A package is hostile until read. Before the zip directory is parsed, the central-directory
//! signatures are counted (the zip crate trusts the entry count in the end record and would
//! allocate for it), and more than [`ParseLimits::max_zip_entries`] is refused. Every part is
//! then inflated here, not by the zip crate, from its raw compressed bytes through a counting
//! reader: the sizes written in the zip headers are never used, the output is checked against
//! the package's absolute budget ([`ParseLimits::max_uncompressed_bytes`]) and, past its first
//! MiB, against [`ParseLimits::max_ratio`] times the compressed bytes consumed *so far*, so a
//! bomb stops after about a MiB of output whatever its headers say.
//!
//! XML is read with `quick-xml`, which does not process DTDs: entity declarations are never
//! loaded, and [`unescape_lenient`] drops any entity reference other than the five predefined
//! ones and numeric character references. Nothing is ever fetched.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::{ParseError, ParseLimits};
use crate::text;

/// Parts under this size are never rejected for their compression ratio.
pub(crate) const RATIO_FLOOR: u64 = 1024 * 1024;

/// Most end-of-central-directory records a package may contain. The zip crate tries every
/// candidate from the end backwards, each time parsing the directory it points to, so many of
/// them multiply its work; a real package has one (a stored embedded zip adds one each).
const MAX_END_RECORDS: usize = 64;

/// An opened package: its zip directory and what is left of its decompression budget.
pub(crate) struct Package<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    file_len: u64,
    left: u64,
    ratio: u64,
}

impl<'a> Package<'a> {
    /// Opens a zip package, refusing too many entries before the directory is parsed.
    pub(crate) fn open(bytes: &'a [u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        let (entries, ends) = count_signatures(bytes);
        if entries > limits.max_zip_entries {
            return Err(ParseError::TooManyEntries {
                count: entries,
                max: limits.max_zip_entries,
            });
        }
        if ends > MAX_END_RECORDS {
            return Err(ParseError::Zip(format!(
                "{ends} end-of-directory records (at most {MAX_END_RECORDS} are read)"
            )));
        }
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
        // The signature count bounds what the zip crate parsed, but check what it kept too.
        if zip.len() > limits.max_zip_entries {
            return Err(ParseError::TooManyEntries {
                count: zip.len(),
                max: limits.max_zip_entries,
            });
        }
        Ok(Package {
            zip,
            file_len: bytes.len() as u64,
            left: limits.max_uncompressed_bytes,
            ratio: limits.max_ratio,
        })
    }

    /// Decompresses one part, or `None` when the package has no such part.
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ParseError> {
        let Some(index) = self.zip.index_for_name(name) else {
            return Ok(None);
        };
        let raw = self.zip.by_index_raw(index).map_err(zip_error)?;
        if raw.encrypted() {
            return Err(ParseError::Encrypted);
        }
        let method = raw.compression();
        // The raw reader is bounded by the compressed size in the header, and the cursor by
        // the file: a lying compressed size cannot make more input appear.
        let consumed = Cell::new(0u64);
        let counted = Counting {
            inner: raw,
            count: &consumed,
        };
        let mut reader: Box<dyn Read + '_> = match method {
            CompressionMethod::Stored => Box::new(counted),
            CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(counted)),
            other => {
                return Err(ParseError::Zip(format!(
                    "{name}: unsupported compression method {other:?}"
                )))
            }
        };
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ParseError::Zip(format!("{name}: {e}"))),
            };
            out.extend_from_slice(&chunk[..n]);
            let produced = out.len() as u64;
            if produced > self.left {
                return Err(ParseError::DecompressionLimit {
                    part: name.to_owned(),
                    limit: self.left,
                });
            }
            let ratio_cap = consumed
                .get()
                .min(self.file_len)
                .saturating_mul(self.ratio)
                .max(RATIO_FLOOR);
            if produced > ratio_cap {
                return Err(ParseError::DecompressionLimit {
                    part: name.to_owned(),
                    limit: ratio_cap,
                });
            }
        }
        self.left -= out.len() as u64;
        Ok(Some(out))
    }

    /// [`Package::read`], failing with [`ParseError::MissingPart`] when absent.
    pub(crate) fn read_required(&mut self, name: &str) -> Result<Vec<u8>, ParseError> {
        self.read(name)?
            .ok_or_else(|| ParseError::MissingPart(name.to_owned()))
    }

    /// The relationships of `part` (from `dir/_rels/name.rels`), targets resolved to part
    /// names; an absent or damaged relationships part gives none.
    pub(crate) fn relationships(&mut self, part: &str) -> Result<Vec<Relationship>, ParseError> {
        let (dir, file) = match part.rfind('/') {
            Some(i) => (&part[..i + 1], &part[i + 1..]),
            None => ("", part),
        };
        let rels_name = format!("{dir}_rels/{file}.rels");
        Ok(match self.read(&rels_name)? {
            Some(xml) => parse_relationships(&xml, dir),
            None => Vec::new(),
        })
    }

    /// The target of the package's `officeDocument` relationship, else `fallback`.
    pub(crate) fn main_part(&mut self, fallback: &str) -> Result<String, ParseError> {
        Ok(self
            .relationships("")?
            .into_iter()
            .find(|r| r.is_type("officeDocument"))
            .map(|r| r.target)
            .unwrap_or_else(|| fallback.to_owned()))
    }

    /// `dc:title` from `docProps/core.xml`, if present and non-empty.
    pub(crate) fn core_title(&mut self) -> Result<Option<String>, ParseError> {
        Ok(self
            .read("docProps/core.xml")?
            .and_then(|xml| core_title(&xml)))
    }
}

/// Counts central-directory headers (`PK\1\2`) and end records (`PK\5\6`) anywhere in the
/// file: an upper bound on the entries the zip crate will parse.
fn count_signatures(bytes: &[u8]) -> (usize, usize) {
    let (mut entries, mut ends) = (0usize, 0usize);
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i] == b'P' && bytes[i + 1] == b'K' {
            match (bytes[i + 2], bytes[i + 3]) {
                (1, 2) => entries += 1,
                (5, 6) => ends += 1,
                _ => {}
            }
        }
        i += 1;
    }
    (entries, ends)
}

/// Counts the bytes read through it.
struct Counting<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

pub(crate) fn zip_error(e: ZipError) -> ParseError {
    match e {
        ZipError::UnsupportedArchive(msg) if msg.contains("ncrypt") || msg.contains("assword") => {
            ParseError::Encrypted
        }
        e => ParseError::Zip(e.to_string()),
    }
}

/// One `Relationship` of a `.rels` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relationship {
    pub(crate) id: String,
    pub(crate) rel_type: String,
    /// The target as a part name (no leading `/`), resolved against the source's folder.
    pub(crate) target: String,
}

impl Relationship {
    /// Whether the type URI ends with `/{last}` (`officeDocument`, `slide`, `notesSlide`, …).
    pub(crate) fn is_type(&self, last: &str) -> bool {
        self.rel_type
            .rsplit('/')
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case(last))
    }
}

/// The internal relationships of a `.rels` part whose source lives in `dir` (`"ppt/"`).
pub(crate) fn parse_relationships(xml: &[u8], dir: &str) -> Vec<Relationship> {
    let mut out = Vec::new();
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e))
                if e.local_name().as_ref() == b"Relationship" =>
            {
                let external =
                    attr(&e, b"TargetMode").is_some_and(|m| m.eq_ignore_ascii_case("External"));
                if let (false, Some(id), Some(target)) =
                    (external, attr(&e, b"Id"), attr(&e, b"Target"))
                {
                    if let Some(target) = resolve(dir, &target) {
                        out.push(Relationship {
                            id,
                            rel_type: attr(&e, b"Type").unwrap_or_default(),
                            target,
                        });
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// Resolves a relationship target against the source's folder: `"../notesSlides/n1.xml"`
/// from `"ppt/slides/"` is `"ppt/notesSlides/n1.xml"`; `"/word/document.xml"` is absolute.
/// `None` for an empty target or one that climbs out of the package.
pub(crate) fn resolve(dir: &str, target: &str) -> Option<String> {
    if target.trim().is_empty() {
        return None;
    }
    let (base, rel) = match target.strip_prefix('/') {
        Some(abs) => ("", abs),
        None => (dir, target),
    };
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `dc:title` of a `docProps/core.xml`.
pub(crate) fn core_title(xml: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut in_title = false;
    let mut title = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == b"title" => in_title = true,
            Ok(Event::End(e)) if e.local_name().as_ref() == b"title" => break,
            Ok(Event::Text(t)) if in_title => title.push_str(&unescape_lenient(&t.into_inner())),
            Ok(Event::CData(t)) if in_title => {
                title.push_str(&String::from_utf8_lossy(&t.into_inner()))
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    let title = text::normalize(&title);
    (!title.is_empty()).then_some(title)
}

/// Fails with [`ParseError::WrongKind`] when the main part's root element is not `expected`
/// (a DOCX renamed `.xlsx`); a part without a readable root passes, for the parser to judge.
pub(crate) fn expect_root(xml: &[u8], part: &str, expected: &str) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let name = e.local_name();
                return if name.as_ref() == expected.as_bytes() {
                    Ok(())
                } else {
                    Err(ParseError::WrongKind(format!(
                        "{part} is a `{}`, not a `{expected}`",
                        String::from_utf8_lossy(name.as_ref())
                    )))
                };
            }
            Ok(Event::Eof) | Err(_) => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

/// An attribute by local name, unescaped leniently.
pub(crate) fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| unescape_lenient(&a.value).into_owned())
}

/// Unescapes the five XML entities and numeric character references; any other entity
/// reference (one a DTD would have to define) is dropped, never expanded.
pub(crate) fn unescape_lenient(raw: &[u8]) -> Cow<'_, str> {
    let s = String::from_utf8_lossy(raw);
    if !s.contains('&') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = &*s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match after.find(';').filter(|&end| end <= 32) {
            Some(end) => {
                let name = &after[..end];
                let decoded = match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => name
                        .strip_prefix("#x")
                        .or_else(|| name.strip_prefix("#X"))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32),
                };
                if let Some(c) = decoded {
                    out.push(c);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The text of a `Text` event, leniently unescaped.
pub(crate) fn text_of(t: quick_xml::events::BytesText<'_>) -> String {
    unescape_lenient(&t.into_inner()).into_owned()
}

/// The text of a `CData` event.
pub(crate) fn cdata_of(t: quick_xml::events::BytesCData<'_>) -> String {
    String::from_utf8_lossy(&t.into_inner()).into_owned()
}

/// Maps a quick-xml error to [`ParseError::Xml`], naming the part.
pub(crate) fn xml_error(part: &str, e: quick_xml::Error) -> ParseError {
    ParseError::Xml(format!("{part}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_unescape_never_expands_custom_entities() {
        assert_eq!(
            unescape_lenient(b"a &amp; b &lt;c&gt; &#65;&#x42;"),
            "a & b <c> AB"
        );
        assert_eq!(unescape_lenient(b"x &lol9; y"), "x  y");
        assert_eq!(unescape_lenient(b"R&D"), "R&D");
    }

    #[test]
    fn targets_resolve_inside_the_package() {
        assert_eq!(
            resolve("ppt/slides/", "../notesSlides/n1.xml").as_deref(),
            Some("ppt/notesSlides/n1.xml")
        );
        assert_eq!(
            resolve("ppt/", "slides/slide1.xml").as_deref(),
            Some("ppt/slides/slide1.xml")
        );
        assert_eq!(
            resolve("ppt/", "/word/document.xml").as_deref(),
            Some("word/document.xml")
        );
        assert_eq!(resolve("", "../../etc/passwd"), None);
        assert_eq!(resolve("a/", ""), None);
    }

    #[test]
    fn finds_relationships() {
        let rels = br#"<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document2.xml"/>
            <Relationship Id="r2" Type="x/hyperlink" Target="http://example.com" TargetMode="External"/></Relationships>"#;
        let got = parse_relationships(rels, "");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].target, "word/document2.xml");
        assert!(got[0].is_type("officeDocument"));
    }

    #[test]
    fn signatures_are_counted_anywhere() {
        assert_eq!(
            count_signatures(b"PK\x01\x02PK\x01\x02xxPK\x05\x06"),
            (2, 1)
        );
        assert_eq!(count_signatures(b"PK\x01"), (0, 0));
    }
}
