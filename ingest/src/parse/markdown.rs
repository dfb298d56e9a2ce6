//! Markdown (CommonMark with tables) via `pulldown-cmark`: headings keep their level, each
//! paragraph, list item, code block and table row becomes a paragraph. The title is `title:` in
//! YAML front matter, else the first H1. Raw HTML inside Markdown is dropped.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::{Blocks, ParseLimits, ParsedDocument};

// Long on purpose: one state machine over the Markdown events, each tag's start and end together.
pub(crate) fn parse(input: &str, limits: &ParseLimits) -> ParsedDocument {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut out = Blocks::default();
    let mut title: Option<String> = None;
    let mut first_h1: Option<String> = None;
    let mut buf = String::new();
    let mut cells: Vec<String> = Vec::new();
    let mut in_metadata = false;
    let mut depth = 0usize;

    // Block boundaries flush the buffer; nesting past the limit keeps text but not structure.
    for event in Parser::new_ext(input, options) {
        match event {
            Event::Start(tag) => {
                depth += 1;
                let structural = depth <= limits.max_depth;
                match tag {
                    Tag::MetadataBlock(_) => in_metadata = true,
                    Tag::Heading { .. }
                    | Tag::Paragraph
                    | Tag::CodeBlock(_)
                    | Tag::Item
                    | Tag::BlockQuote(_)
                    | Tag::FootnoteDefinition(_)
                        if structural =>
                    {
                        out.paragraph(&std::mem::take(&mut buf), None)
                    }
                    Tag::TableCell => buf.clear(),
                    _ => {}
                }
            }
            Event::End(tag) => {
                let structural = depth <= limits.max_depth;
                depth = depth.saturating_sub(1);
                match tag {
                    TagEnd::MetadataBlock(_) => {
                        in_metadata = false;
                        title = front_matter_title(&buf);
                        buf.clear();
                    }
                    TagEnd::Heading(level) if structural => {
                        let text = std::mem::take(&mut buf);
                        if level == HeadingLevel::H1 && first_h1.is_none() {
                            first_h1 = Some(text.clone());
                        }
                        out.heading(heading_level(level), &text, None);
                    }
                    TagEnd::Paragraph
                    | TagEnd::CodeBlock
                    | TagEnd::Item
                    | TagEnd::BlockQuote(_)
                    | TagEnd::FootnoteDefinition
                        if structural =>
                    {
                        out.paragraph(&std::mem::take(&mut buf), None)
                    }
                    TagEnd::TableCell => {
                        cells.push(crate::text::normalize(&std::mem::take(&mut buf)));
                    }
                    TagEnd::TableHead | TagEnd::TableRow => {
                        if cells.iter().any(|c| !c.is_empty()) {
                            out.paragraph(&cells.join(" | "), None);
                        }
                        cells.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                buf.push_str(&t);
            }
            // Front matter lines stay apart for the title lookup.
            Event::SoftBreak | Event::HardBreak => buf.push(if in_metadata { '\n' } else { ' ' }),
            Event::Rule => out.paragraph(&std::mem::take(&mut buf), None),
            _ => {}
        }
    }
    out.paragraph(&buf, None);
    ParsedDocument {
        title: title.or(first_h1),
        blocks: out.blocks,
        ..ParsedDocument::default()
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// `title: Dasar Cuti` (optionally quoted) in YAML front matter.
fn front_matter_title(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let value = line.strip_prefix("title:")?.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(doc: &ParsedDocument) -> Vec<(Option<u8>, &str)> {
        doc.blocks
            .iter()
            .map(|b| (b.heading_level(), b.text.as_str()))
            .collect()
    }

    #[test]
    fn headings_paragraphs_lists_and_tables() {
        let md = "# Dasar Cuti\n\nPengenalan *ringkas*\nyang `penting`.\n\n## Cuti Tahunan\n\n\
                  - satu\n- dua\n\n| Gred | Hari |\n|---|---|\n| 41 | 25 |\n\n<div>raw</div>\n";
        let doc = parse(md, &ParseLimits::default());
        assert_eq!(doc.title.as_deref(), Some("Dasar Cuti"));
        assert_eq!(
            summary(&doc),
            [
                (Some(1), "Dasar Cuti"),
                (None, "Pengenalan ringkas yang penting."),
                (Some(2), "Cuti Tahunan"),
                (None, "satu"),
                (None, "dua"),
                (None, "Gred | Hari"),
                (None, "41 | 25"),
            ]
        );
    }

    #[test]
    fn front_matter_title_wins() {
        let md = "---\ntitle: \"Polisi ICT\"\nauthor: x\n---\n\n# Bahagian 1\n\nTeks.\n";
        let doc = parse(md, &ParseLimits::default());
        assert_eq!(doc.title.as_deref(), Some("Polisi ICT"));
        assert_eq!(summary(&doc), [(Some(1), "Bahagian 1"), (None, "Teks.")]);
    }

    #[test]
    fn deep_nesting_is_flattened_not_fatal() {
        let md = format!("{}deep text\n", "> ".repeat(5000));
        let limits = ParseLimits {
            max_depth: 16,
            ..ParseLimits::default()
        };
        let doc = parse(&md, &limits);
        assert_eq!(summary(&doc), [(None, "deep text")]);
    }
}
