//! DOCX: a zip of XML parts. `word/document.xml` (found through `_rels/.rels`) gives paragraphs;
//! a paragraph styled `Heading 1`‥`Heading 9` or `Title` (by style id or, through
//! `word/styles.xml`, by style name, so localised Word works too) or with an outline level
//! becomes a heading; each top-level table row becomes one `cell | cell` paragraph. The title
//! is `dc:title` from `docProps/core.xml`, else the first `Title`-styled paragraph.
//!
//! Hostile input: the package is read through [`super::package`] (entry count, decompression
//! budget and ratio checked while inflating, never trusting the zip headers; XML entities never
//! expanded).

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::package::{attr, cdata_of, expect_root, text_of, xml_error, Package};
use super::{Blocks, ParseError, ParseLimits, ParsedDocument};
use crate::text;

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let mut pkg = Package::open(bytes, limits)?;
    let main = pkg.main_part("word/document.xml")?;
    let document = pkg.read_required(&main)?;
    expect_root(&document, &main, "document")?;
    let styles = match pkg.read("word/styles.xml")? {
        Some(xml) => heading_styles(&xml),
        None => HashMap::new(),
    };
    let core_title = pkg.core_title()?;
    let (blocks, styled_title) = body_blocks(&document, &main, &styles)?;
    Ok(ParsedDocument {
        title: core_title.or(styled_title),
        blocks,
        ..ParsedDocument::default()
    })
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

#[derive(Default)]
struct Paragraph {
    text: String,
    level: Option<u8>,
}

/// Walks `word/document.xml`; returns the blocks and the text of the first `Title` paragraph.
// Long on purpose: one state machine over the XML events, each tag's start and end side by side.
fn body_blocks(
    xml: &[u8],
    part: &str,
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
            .map_err(|e| xml_error(part, e))?;
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
                push(&mut paras, &text_of(t));
            }
            Event::CData(t) if in_text && skip_depth == 0 => {
                push(&mut paras, &cdata_of(t));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
