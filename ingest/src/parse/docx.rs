//! DOCX: a zip of XML parts. `word/document.xml` (found through `_rels/.rels`) gives paragraphs;
//! a paragraph styled `Heading 1`‥`Heading 9` or `Title` (by style id or, through
//! `word/styles.xml`, by style name, so localised Word works too) or with an outline level
//! becomes a heading; each top-level table row becomes one `cell | cell` paragraph. The title
//! is `dc:title` from `docProps/core.xml`, else the first `Title`-styled paragraph.
//!
//! Hostile input: the entry count is capped, every part is decompressed through a counting
//! `take()` reader (never trusting the sizes in the zip headers) against both an absolute
//! budget and a compression-ratio cap, and XML entities are never expanded: `quick-xml` does
//! not process DTDs, and unknown entity references are dropped.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use zip::result::ZipError;
use zip::ZipArchive;

use super::{Blocks, ParseError, ParseLimits, ParsedDocument};
use crate::text;

/// Parts under this size are never rejected for their compression ratio.
const RATIO_FLOOR: u64 = 1024 * 1024;

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    if zip.len() > limits.max_zip_entries {
        return Err(ParseError::TooManyEntries {
            count: zip.len(),
            max: limits.max_zip_entries,
        });
    }
    let mut budget = Budget {
        left: limits.max_uncompressed_bytes,
        ratio: limits.max_ratio,
    };
    let main = read_part(&mut zip, "_rels/.rels", &mut budget)?
        .and_then(|rels| main_document_target(&rels))
        .unwrap_or_else(|| "word/document.xml".to_owned());
    let document = read_part(&mut zip, &main, &mut budget)?
        .ok_or_else(|| ParseError::MissingPart(main.clone()))?;
    let styles = match read_part(&mut zip, "word/styles.xml", &mut budget)? {
        Some(xml) => heading_styles(&xml),
        None => HashMap::new(),
    };
    let core_title = match read_part(&mut zip, "docProps/core.xml", &mut budget)? {
        Some(xml) => core_title(&xml),
        None => None,
    };
    let (blocks, styled_title) = body_blocks(&document, &styles)?;
    Ok(ParsedDocument {
        title: core_title.or(styled_title),
        blocks,
    })
}

struct Budget {
    left: u64,
    ratio: u64,
}

/// Decompresses one part, or `None` when the archive has no such entry.
fn read_part(
    zip: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut Budget,
) -> Result<Option<Vec<u8>>, ParseError> {
    let file = match zip.by_name(name) {
        Ok(f) => f,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(zip_error(e)),
    };
    // The compressed size only ever lowers the cap, so a lying header cannot raise it.
    let ratio_cap = file
        .compressed_size()
        .saturating_mul(budget.ratio)
        .max(RATIO_FLOOR);
    let cap = budget.left.min(ratio_cap);
    let mut out = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ParseError::Zip(format!("{name}: {e}")))?;
    let n = out.len() as u64;
    if n > cap {
        return Err(ParseError::DecompressionLimit {
            part: name.to_owned(),
            limit: cap,
        });
    }
    budget.left -= n;
    Ok(Some(out))
}

fn zip_error(e: ZipError) -> ParseError {
    match e {
        ZipError::UnsupportedArchive(msg) if msg.contains("ncrypt") || msg.contains("assword") => {
            ParseError::Encrypted
        }
        e => ParseError::Zip(e.to_string()),
    }
}

/// The `officeDocument` relationship target in `_rels/.rels`.
fn main_document_target(rels: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(rels);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e))
                if e.local_name().as_ref() == b"Relationship" =>
            {
                let ty = attr(&e, b"Type").unwrap_or_default();
                if ty.ends_with("/officeDocument") {
                    let target = attr(&e, b"Target")?;
                    let target = target.trim_start_matches('/');
                    return (!target.is_empty() && !target.contains(".."))
                        .then(|| target.to_owned());
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// Maps style ids to heading levels (0 = the `Title` style) using style names and outline
/// levels from `word/styles.xml`.
fn heading_styles(xml: &[u8]) -> HashMap<String, u8> {
    let mut map = HashMap::new();
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut current: Option<String> = None;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"style" => current = attr(&e, b"styleId"),
                b"name" => {
                    if let (Some(id), Some(name)) = (&current, attr(&e, b"val")) {
                        if let Some(level) = level_from_style_name(&name) {
                            map.insert(id.clone(), level);
                        }
                    }
                }
                b"outlineLvl" => {
                    if let (Some(id), Some(level)) = (&current, attr(&e, b"val").and_then(outline))
                    {
                        map.entry(id.clone()).or_insert(level);
                    }
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.local_name().as_ref() == b"style" => current = None,
            Ok(Event::Eof) => break,
            // Styles only refine headings: a damaged styles part is not fatal.
            Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    map
}

/// `"heading 2"`, `"Heading2"` → 2; `"Title"` → 0 (a title, shown as a level-1 heading).
fn level_from_style_name(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    if lower == "title" {
        return Some(0);
    }
    let digits = lower.strip_prefix("heading")?.trim();
    match digits.parse::<u8>() {
        Ok(n @ 1..=9) => Some(n),
        _ => None,
    }
}

/// `w:outlineLvl w:val="0"` → level 1; 9 means body text.
fn outline(val: String) -> Option<u8> {
    match val.parse::<u8>() {
        Ok(n @ 0..=8) => Some(n + 1),
        _ => None,
    }
}

fn core_title(xml: &[u8]) -> Option<String> {
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

#[derive(Default)]
struct Paragraph {
    text: String,
    level: Option<u8>,
}

/// Walks `word/document.xml`; returns the blocks and the text of the first `Title` paragraph.
fn body_blocks(
    xml: &[u8],
    styles: &HashMap<String, u8>,
) -> Result<(Vec<super::Block>, Option<String>), ParseError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Blocks::default();
    let mut title: Option<String> = None;
    // Text boxes nest paragraphs inside paragraphs, hence a stack.
    let mut paras: Vec<Paragraph> = Vec::new();
    let mut in_text = false;
    let mut in_ppr = false;
    let mut skip_depth = 0usize; // inside mc:Fallback (a duplicate of mc:Choice)
    let mut tbl_depth = 0usize;
    let mut row: Option<Vec<String>> = None;
    let mut cell: Option<String> = None;

    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| ParseError::Xml(e.to_string()))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                let name = name.as_ref();
                if skip_depth > 0 || name == b"Fallback" {
                    skip_depth += 1;
                } else {
                    match name {
                        b"p" => paras.push(Paragraph::default()),
                        b"pPr" => in_ppr = true,
                        b"t" => in_text = true,
                        b"tbl" => tbl_depth += 1,
                        b"tr" if tbl_depth == 1 => row = Some(Vec::new()),
                        b"tc" if tbl_depth == 1 => cell = Some(String::new()),
                        _ => paragraph_property(&e, in_ppr, &mut paras, styles),
                    }
                }
            }
            Event::Empty(e) if skip_depth == 0 => match e.local_name().as_ref() {
                b"tab" | b"br" | b"cr" => push(&mut paras, " "),
                b"noBreakHyphen" => push(&mut paras, "-"),
                b"p" => {}
                _ => paragraph_property(&e, in_ppr, &mut paras, styles),
            },
            Event::Text(t) if in_text && skip_depth == 0 => {
                push(&mut paras, &unescape_lenient(&t.into_inner()));
            }
            Event::CData(t) if in_text && skip_depth == 0 => {
                push(&mut paras, &String::from_utf8_lossy(&t.into_inner()));
            }
            Event::End(e) => {
                if skip_depth > 0 {
                    skip_depth -= 1;
                } else {
                    match e.local_name().as_ref() {
                        b"t" => in_text = false,
                        b"pPr" => in_ppr = false,
                        b"p" => {
                            if let Some(p) = paras.pop() {
                                end_paragraph(p, &mut cell, &mut out, &mut title);
                            }
                        }
                        b"tc" if tbl_depth == 1 => {
                            if let (Some(c), Some(r)) = (cell.take(), row.as_mut()) {
                                r.push(text::normalize(&c));
                            }
                        }
                        b"tr" if tbl_depth == 1 => {
                            if let Some(r) = row.take() {
                                if r.iter().any(|c| !c.is_empty()) {
                                    out.paragraph(&r.join(" | "), None);
                                }
                            }
                        }
                        b"tbl" => tbl_depth = tbl_depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok((out.blocks, title))
}

/// Files a finished paragraph: into the open table cell, else as a heading or paragraph.
fn end_paragraph(
    p: Paragraph,
    cell: &mut Option<String>,
    out: &mut Blocks,
    title: &mut Option<String>,
) {
    if let Some(c) = cell.as_mut() {
        c.push(' ');
        c.push_str(&p.text);
        return;
    }
    match p.level {
        Some(0) => {
            if title.is_none() {
                let t = text::normalize(&p.text);
                *title = (!t.is_empty()).then_some(t);
            }
            out.heading(1, &p.text, None);
        }
        Some(level) => out.heading(level, &p.text, None),
        None => out.paragraph(&p.text, None),
    }
}

/// Applies `w:pStyle` / `w:outlineLvl` inside `w:pPr` to the current paragraph.
fn paragraph_property(
    e: &BytesStart<'_>,
    in_ppr: bool,
    paras: &mut [Paragraph],
    styles: &HashMap<String, u8>,
) {
    if !in_ppr {
        return;
    }
    let Some(p) = paras.last_mut() else { return };
    match e.local_name().as_ref() {
        b"pStyle" => {
            if let Some(id) = attr(e, b"val") {
                let level = styles
                    .get(&id)
                    .copied()
                    .or_else(|| level_from_style_name(&id));
                if level.is_some() {
                    p.level = level;
                }
            }
        }
        b"outlineLvl" if p.level.is_none() => {
            p.level = attr(e, b"val").and_then(outline);
        }
        _ => {}
    }
}

fn push(paras: &mut [Paragraph], s: &str) {
    if let Some(p) = paras.last_mut() {
        p.text.push_str(s);
    }
}

/// An attribute by local name, unescaped leniently.
fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| unescape_lenient(&a.value).into_owned())
}

/// Unescapes the five XML entities and numeric character references; any other entity
/// reference (one a DTD would have to define) is dropped, never expanded.
fn unescape_lenient(raw: &[u8]) -> Cow<'_, str> {
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
    fn style_names_give_levels() {
        assert_eq!(level_from_style_name("heading 2"), Some(2));
        assert_eq!(level_from_style_name("Heading1"), Some(1));
        assert_eq!(level_from_style_name("Title"), Some(0));
        assert_eq!(level_from_style_name("Heading10"), None);
        assert_eq!(level_from_style_name("Normal"), None);
    }

    #[test]
    fn localised_style_ids_resolve_through_styles_xml() {
        let styles = br#"<w:styles xmlns:w="w"><w:style w:styleId="Tajuk1"><w:name w:val="heading 1"/></w:style>
            <w:style w:styleId="Custom"><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style></w:styles>"#;
        let map = heading_styles(styles);
        assert_eq!(map.get("Tajuk1"), Some(&1));
        assert_eq!(map.get("Custom"), Some(&2));
    }

    #[test]
    fn finds_main_document_through_rels() {
        let rels = br#"<Relationships><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document2.xml"/></Relationships>"#;
        assert_eq!(
            main_document_target(rels).as_deref(),
            Some("word/document2.xml")
        );
    }
}
