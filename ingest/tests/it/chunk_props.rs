//! Property tests of the chunker's invariants over generated documents.

use proptest::prelude::*;
use tanya_ingest::{chunk, Block, ChunkerConfig, ParsedDocument, TokenCounter, WordEstimate};

/// Words that stress sentence splitting, multi-byte offsets and character splitting.
const WORDS: &[&str] = &[
    "pekerja",
    "cuti",
    "tahunan",
    "hendaklah",
    "yang",
    "dan",
    "the",
    "employee",
    "shall",
    "RM",
    "5,000.00",
    "Sdn.",
    "Bhd.",
    "e.g.",
    "3.1",
    "2.",
    "selesai.",
    "Ya?",
    "tidak;",
    "Tamat!",
    "café",
    "中文",
    "😀",
    "sekurang-kurangnya",
    "(a)",
    "\"petikan.\"",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..60).prop_map(|w| w.join(" "))
}

fn block() -> impl Strategy<Value = (u8, String, u32)> {
    (0u8..8, text(), 0u32..3)
}

fn document() -> impl Strategy<Value = ParsedDocument> {
    (prop::collection::vec(block(), 0..25), any::<bool>()).prop_map(|(blocks, paged)| {
        let mut page = 1;
        let blocks = blocks
            .into_iter()
            .map(|(kind, text, step)| {
                page += u32::from(step == 0);
                let page = paged.then_some(page);
                match kind {
                    1..=4 => Block::heading(kind, text, page),
                    _ => Block::paragraph(text, page),
                }
            })
            .collect();
        ParsedDocument {
            blocks,
            ..ParsedDocument::default()
        }
    })
}

fn config() -> impl Strategy<Value = ChunkerConfig> {
    (2usize..120, 0usize..80).prop_map(|(max_tokens, overlap_tokens)| ChunkerConfig {
        max_tokens,
        overlap_tokens,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn chunks_are_exact_ordered_and_cover_the_text(doc in document(), cfg in config()) {
        let full = doc.full_text();
        let chars: Vec<char> = full.chars().collect();
        let chunks = chunk(&doc, &cfg, &WordEstimate);

        // Block spans in chars, to check pages, sections and coverage.
        let mut spans = Vec::new();
        let mut pos = 0;
        for b in &doc.blocks {
            let n = b.text.chars().count();
            spans.push((pos, pos + n));
            pos += n + 2;
        }

        for (i, c) in chunks.iter().enumerate() {
            prop_assert_eq!(c.ordinal as usize, i);
            prop_assert!(c.char_start < c.char_end);
            let slice: String = chars[c.char_start..c.char_end].iter().collect();
            prop_assert_eq!(&slice, &c.text);
            prop_assert!(WordEstimate.count(&c.text) <= cfg.max_tokens,
                "chunk {} has {} tokens > {}", i, WordEstimate.count(&c.text), cfg.max_tokens);
            for (b, &(s, e)) in doc.blocks.iter().zip(&spans) {
                let overlaps = s < c.char_end && c.char_start < e;
                if overlaps {
                    prop_assert_eq!(b.page, c.page, "chunk {} spans pages", i);
                }
                if b.heading_level().is_some_and(|l| l <= 2) {
                    prop_assert!(!(c.char_start < s && s < c.char_end),
                        "chunk {} spans the start of a top heading", i);
                }
            }
        }
        for pair in chunks.windows(2) {
            prop_assert!(pair[0].char_start < pair[1].char_start);
            prop_assert!(pair[0].char_end < pair[1].char_end);
        }
        // Every non-whitespace character of every paragraph is in some chunk.
        let mut covered = vec![false; chars.len()];
        for c in &chunks {
            covered[c.char_start..c.char_end].iter_mut().for_each(|x| *x = true);
        }
        for (b, &(s, e)) in doc.blocks.iter().zip(&spans) {
            if b.heading_level().is_none() {
                for (k, ch) in chars[s..e].iter().enumerate() {
                    prop_assert!(ch.is_whitespace() || covered[s + k],
                        "char {} ({:?}) not covered", s + k, ch);
                }
            }
        }
        // Deterministic.
        prop_assert_eq!(chunk(&doc, &cfg, &WordEstimate), chunks);
    }
}
