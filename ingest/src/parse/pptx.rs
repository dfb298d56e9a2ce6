//! PPTX: a zip of XML parts read through [`super::package`]. The slides are taken in
//! presentation order (`p:sldIdLst` in `ppt/presentation.xml`, resolved through its
//! relationships), and every block of a slide carries the slide's 1-based position as its
//! `page`: for PPTX, a page is a slide. A slide's title placeholder becomes a level-1 heading
//! (placed first), its other text frames and table rows (`cell | cell`) paragraphs, then its
//! speaker notes (the notes slide's body placeholder) follow as paragraphs. Date, footer,
//! header and slide-number placeholders are left out: they repeat on every slide. The title is
//! `dc:title` from `docProps/core.xml`, else the first slide's title.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::package::{attr, cdata_of, expect_root, text_of, xml_error, Package};
use super::{Block, Blocks, ParseError, ParseLimits, ParsedDocument};

pub(crate) fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<ParsedDocument, ParseError> {
    let mut pkg = Package::open(bytes, limits)?;
    let main = pkg.main_part("ppt/presentation.xml")?;
    let presentation = pkg.read_required(&main)?;
    expect_root(&presentation, &main, "presentation")?;
    let rels = pkg.relationships(&main)?;
    let ids = slide_ids(&presentation, &main)?;
    // Slides in presentation order; a listing that resolves to nothing falls back to the
    // slide relationships in document order.
    let mut slides: Vec<String> = ids
        .iter()
        .filter_map(|id| rels.iter().find(|r| &r.id == id && r.is_type("slide")))
        .map(|r| r.target.clone())
        .collect();
    if slides.is_empty() {
        slides = rels
            .iter()
            .filter(|r| r.is_type("slide"))
            .map(|r| r.target.clone())
            .collect();
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut first_title: Option<String> = None;
    for (i, part) in slides.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let Some(xml) = pkg.read(part)? else {
            continue;
        };
        let slide = frames(&xml, part)?;
        let notes = match pkg
            .relationships(part)?
            .into_iter()
            .find(|r| r.is_type("notesSlide"))
        {
            Some(r) => match pkg.read(&r.target)? {
                Some(xml) => frames(&xml, &r.target)?,
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        let mut out = Blocks::default();
        let (titles, body): (Vec<&Frame>, Vec<&Frame>) = slide
            .iter()
            .filter(|f| !f.placeholder.is_some_and(Placeholder::is_running))
            .partition(|f| f.placeholder == Some(Placeholder::Title));
        for t in &titles {
            out.heading(1, &t.paragraphs.join(" "), Some(number));
        }
        if first_title.is_none() {
            first_title = out.blocks.first().map(|b| b.text.clone());
        }
        for f in body {
            for p in &f.paragraphs {
                out.paragraph(p, Some(number));
            }
        }
        // In the notes page, the slide image and running placeholders carry no notes.
        for f in notes
            .iter()
            .filter(|f| matches!(f.placeholder, None | Some(Placeholder::Body)))
        {
            for p in &f.paragraphs {
                out.paragraph(p, Some(number));
            }
        }
        blocks.extend(out.blocks);
    }
    Ok(ParsedDocument {
        title: pkg.core_title()?.or(first_title),
        blocks,
        ..ParsedDocument::default()
    })
}

/// The relationship ids of `p:sldIdLst`, in order.
fn slide_ids(xml: &[u8], part: &str) -> Result<Vec<String>, ParseError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut ids = Vec::new();
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(part, e))?
        {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"sldId" => {
                if let Some(id) = prefixed_id(&e) {
                    ids.push(id);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(ids)
}

/// The `r:id` attribute (a prefixed `id`, unlike the element's own numeric `id`).
fn prefixed_id(e: &BytesStart<'_>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"id" && a.key.prefix().is_some())
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// A placeholder's role, as far as reading needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    /// `title`, `ctrTitle`
    Title,
    /// `body`, `subTitle`, `obj` and untyped placeholders
    Body,
    /// `dt`, `ftr`, `hdr`, `sldNum`: the same on every slide
    Running,
    /// `sldImg` (the slide's picture on a notes page) and others without text of their own
    Other,
}

impl Placeholder {
    fn from_type(ty: Option<&str>) -> Placeholder {
        match ty {
            Some("title" | "ctrTitle") => Placeholder::Title,
            None | Some("body" | "subTitle" | "obj") => Placeholder::Body,
            Some("dt" | "ftr" | "hdr" | "sldNum") => Placeholder::Running,
            Some(_) => Placeholder::Other,
        }
    }

    fn is_running(self) -> bool {
        self == Placeholder::Running
    }
}

/// The text of one shape (or of the text outside any shape, such as a table).
#[derive(Debug, Default)]
struct Frame {
    placeholder: Option<Placeholder>,
    paragraphs: Vec<String>,
}

/// The text frames of a slide or notes part, in document order: one per `p:sp` shape, plus
/// one per table (each row a `cell | cell` paragraph) and one for stray text.
// Long on purpose: one state machine over the XML events, each tag's start and end side by side.
fn frames(xml: &[u8], part: &str) -> Result<Vec<Frame>, ParseError> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out: Vec<Frame> = Vec::new();
    // Shapes nest inside group shapes only through `grpSp`, but a stack costs nothing.
    let mut shapes: Vec<Frame> = Vec::new();
    let mut para: Option<String> = None;
    let mut in_t = false;
    let mut tbl_depth = 0usize;
    let mut row: Option<Vec<String>> = None;
    let mut cell: Option<String> = None;
    let mut table = Frame::default();
    let mut stray = Frame::default();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(part, e))?;
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                b"sp" => shapes.push(Frame::default()),
                b"ph" => set_placeholder(&e, &mut shapes),
                b"p" => para = Some(String::new()),
                b"t" => in_t = true,
                b"tbl" => tbl_depth += 1,
                b"tr" if tbl_depth == 1 => row = Some(Vec::new()),
                b"tc" if tbl_depth == 1 => cell = Some(String::new()),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                b"ph" => set_placeholder(&e, &mut shapes),
                b"br" | b"tab" => {
                    if let Some(p) = para.as_mut() {
                        p.push(' ');
                    }
                }
                _ => {}
            },
            Event::Text(t) if in_t => {
                if let Some(p) = para.as_mut() {
                    p.push_str(&text_of(t));
                }
            }
            Event::CData(t) if in_t => {
                if let Some(p) = para.as_mut() {
                    p.push_str(&cdata_of(t));
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_t = false,
                b"p" => {
                    if let Some(p) = para.take() {
                        if let Some(c) = cell.as_mut() {
                            c.push(' ');
                            c.push_str(&p);
                        } else if let Some(shape) = shapes.last_mut() {
                            shape.paragraphs.push(p);
                        } else {
                            stray.paragraphs.push(p);
                        }
                    }
                }
                b"sp" => {
                    if let Some(shape) = shapes.pop() {
                        out.push(shape);
                    }
                }
                b"tc" if tbl_depth == 1 => {
                    if let (Some(c), Some(r)) = (cell.take(), row.as_mut()) {
                        r.push(crate::text::normalize(&c));
                    }
                }
                b"tr" if tbl_depth == 1 => {
                    if let Some(r) = row.take() {
                        if r.iter().any(|c| !c.is_empty()) {
                            table.paragraphs.push(r.join(" | "));
                        }
                    }
                }
                b"tbl" => {
                    tbl_depth = tbl_depth.saturating_sub(1);
                    if tbl_depth == 0 {
                        out.push(std::mem::take(&mut table));
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out.extend(shapes);
    out.push(stray);
    Ok(out)
}

fn set_placeholder(e: &BytesStart<'_>, shapes: &mut [Frame]) {
    if let Some(shape) = shapes.last_mut() {
        shape.placeholder = Some(Placeholder::from_type(attr(e, b"type").as_deref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_know_their_placeholders() {
        let xml = br#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="body" idx="1"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Isi</a:t></a:r><a:br/><a:r><a:t>kedua</a:t></a:r></a:p></p:txBody></p:sp>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Tajuk</a:t></a:r></a:p></p:txBody></p:sp>
            <p:sp><p:nvSpPr><p:nvPr><p:ph type="sldNum"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:fld><a:t>3</a:t></a:fld></a:p></p:txBody></p:sp>
            <p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>A</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>B</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>
            </p:spTree></p:cSld></p:sld>"#;
        let got = frames(xml, "s.xml").unwrap();
        let summary: Vec<(Option<Placeholder>, Vec<&str>)> = got
            .iter()
            .map(|f| {
                (
                    f.placeholder,
                    f.paragraphs.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some(Placeholder::Body), vec!["Isi kedua"]),
                (Some(Placeholder::Title), vec!["Tajuk"]),
                (Some(Placeholder::Running), vec!["3"]),
                (None, vec!["A | B"]),
                (None, vec![]),
            ]
        );
    }

    #[test]
    fn slide_ids_are_the_prefixed_ones() {
        let xml = br#"<p:presentation xmlns:p="p" xmlns:r="r"><p:sldIdLst><p:sldId id="257" r:id="rId3"/><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>"#;
        assert_eq!(slide_ids(xml, "p.xml").unwrap(), ["rId3", "rId2"]);
    }
}
