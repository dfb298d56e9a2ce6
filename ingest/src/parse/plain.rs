//! Plain text: paragraphs on blank lines; a short first line is the title; numbered or
//! ALL CAPS lines become headings (see [`super::blocks_from_paras`]).

use super::{blocks_from_paras, paras_from_lines, Block, ParsedDocument};
use crate::text;

pub(crate) fn parse(input: &str) -> ParsedDocument {
    let normalized = text::normalize_lines(input);
    let mut paras = paras_from_lines(&normalized, None);
    // The title: the first of the opening paragraphs that is one short line without closing
    // punctuation or a clause number (a company name ending in "Bhd." before it is skipped).
    let title_at = paras.iter().take(3).position(|p| match p.lines.as_slice() {
        [line] => {
            let last = line.chars().last().unwrap_or('.');
            line.chars().count() <= 100
                && !matches!(last, '.' | ',' | ';' | ':')
                && !line.starts_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    });
    let Some(at) = title_at.filter(|&at| at + 1 < paras.len()) else {
        return ParsedDocument {
            title: None,
            blocks: blocks_from_paras(paras, false),
            ..ParsedDocument::default()
        };
    };
    let rest = paras.split_off(at + 1);
    let title_para = paras.pop().map(|p| p.lines.join(" ")).unwrap_or_default();
    let title = text::normalize(&title_para);
    let mut blocks = blocks_from_paras(paras, false);
    blocks.push(Block::heading(1, title.clone(), None));
    blocks.extend(blocks_from_paras(rest, false));
    ParsedDocument {
        title: Some(title),
        blocks,
        ..ParsedDocument::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_short_line_is_the_title() {
        let doc =
            parse("Dasar Cuti\n\nPekerja layak\nmendapat cuti.\n\n\n2. Kelayakan\nSemua pekerja.");
        assert_eq!(doc.title.as_deref(), Some("Dasar Cuti"));
        let got: Vec<_> = doc
            .blocks
            .iter()
            .map(|b| (b.heading_level(), b.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), "Dasar Cuti"),
                (None, "Pekerja layak mendapat cuti."),
                (Some(1), "2. Kelayakan"),
                (None, "Semua pekerja."),
            ]
        );
    }

    #[test]
    fn a_company_line_before_the_title_is_skipped() {
        let doc = parse("SYARIKAT ABC SDN. BHD.\n\nPOLISI LATIHAN\n\nRujukan : X\nVersi : 1\n\n1. TUJUAN\nTeks.");
        assert_eq!(doc.title.as_deref(), Some("POLISI LATIHAN"));
        assert_eq!(
            doc.blocks[0],
            Block::paragraph("SYARIKAT ABC SDN. BHD.", None)
        );
        assert_eq!(doc.blocks[1], Block::heading(1, "POLISI LATIHAN", None));
        assert_eq!(doc.blocks[3], Block::heading(1, "1. TUJUAN", None));
    }

    #[test]
    fn a_single_paragraph_has_no_title() {
        let doc = parse("Just one line");
        assert_eq!(doc.title, None);
        assert_eq!(doc.blocks, [Block::paragraph("Just one line", None)]);
    }
}
