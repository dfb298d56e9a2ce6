//! The chunker: a [`ParsedDocument`] → located [`Chunk`]s small enough for the embedder.
//!
//! Invariants (checked by property tests): chunks come in document order with strictly
//! increasing `char_start` and `char_end`; each chunk's `text` is exactly
//! `full_text[char_start..char_end]` (in chars); every non-whitespace character of every
//! paragraph is inside some chunk; a chunk never spans two pages nor the start of a level 1–2
//! heading, so each chunk has one page and one section. A level ≥ 3 heading starts a new chunk
//! only when the current one is at least half full.
//!
//! Packing is greedy over *units*: a whole block when it fits the budget, else its sentences,
//! else a sentence's words, else a word's characters. Within a section on one page, the next
//! chunk starts with the last sentences of the previous one, up to `overlap_tokens`.
//! Heading-only chunks (a heading at the foot of a page, say) are dropped when the document has
//! body text: the heading still reaches the following chunks through `heading_path`.

use serde::{Deserialize, Serialize};

use crate::lang::{detect_lang, Lang};
use crate::parse::{BlockKind, ParsedDocument};
use crate::text::sentence_spans;

/// Counts tokens the way the embedding model will. The core passes the real tokenizer.
pub trait TokenCounter {
    /// Tokens in `text`. Should be monotonic: a longer prefix never has fewer tokens.
    fn count(&self, text: &str) -> usize;
}

/// A tokenizer-free estimate: about 1.3 tokens per word, rounded up, which is close to what
/// XLM-R's sentencepiece gives for Malay and English prose. A "word" longer than 12 characters
/// counts as one word per 12 characters, so text without spaces is not underestimated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordEstimate;

impl TokenCounter for WordEstimate {
    fn count(&self, text: &str) -> usize {
        let words: usize = text
            .split_whitespace()
            .map(|w| w.chars().count().div_ceil(12).max(1))
            .sum();
        (words * 13).div_ceil(10)
    }
}

impl<T: TokenCounter + ?Sized> TokenCounter for &T {
    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
}

/// Chunk sizes, in tokens of the [`TokenCounter`] used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerConfig {
    /// Largest chunk. Default 220. Values below 1 are treated as 1.
    pub max_tokens: usize,
    /// Tokens repeated from the end of the previous chunk. Default 40; at most half of
    /// `max_tokens` is used.
    pub overlap_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        ChunkerConfig {
            max_tokens: 220,
            overlap_tokens: 40,
        }
    }
}

/// A located piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Position among the document's chunks, from 0.
    pub ordinal: u32,
    /// 1-based page (PDFs only).
    pub page: Option<u32>,
    /// Enclosing headings, outermost first, e.g. `["Cuti Tahunan", "Kelayakan"]`.
    pub heading_path: Vec<String>,
    /// Start offset, in chars, into [`ParsedDocument::full_text`].
    pub char_start: usize,
    /// End offset (exclusive), in chars, into [`ParsedDocument::full_text`].
    pub char_end: usize,
    /// `full_text[char_start..char_end]`.
    pub text: String,
    /// Language of this chunk.
    pub lang: Lang,
}

/// Splits `doc` into chunks. See the module documentation for the guarantees.
pub fn chunk(doc: &ParsedDocument, cfg: &ChunkerConfig, counter: &dyn TokenCounter) -> Vec<Chunk> {
    let full = doc.full_text();
    let max = cfg.max_tokens.max(1);
    let chunker = Chunker {
        full: &full,
        max,
        overlap: cfg.overlap_tokens.min(max / 2),
        counter,
    };

    // Byte offset of each block in `full`, and the heading path in force at each block.
    let mut starts = Vec::with_capacity(doc.blocks.len());
    let mut pos = 0;
    for b in &doc.blocks {
        starts.push(pos);
        pos += b.text.len() + 2;
    }
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    let mut path_of = Vec::with_capacity(doc.blocks.len());
    let mut stack: Vec<(u8, String)> = Vec::new();
    for b in &doc.blocks {
        if let BlockKind::Heading { level } = b.kind {
            while stack.last().is_some_and(|(l, _)| *l >= level) {
                stack.pop();
            }
            stack.push((level, b.text.clone()));
            paths.push(stack.iter().map(|(_, t)| t.clone()).collect());
        }
        path_of.push(paths.len() - 1);
    }

    let mut raw = Vec::new();
    let mut i = 0;
    while i < doc.blocks.len() {
        let page = doc.blocks[i].page;
        let mut j = i + 1;
        while j < doc.blocks.len()
            && doc.blocks[j].page == page
            && doc.blocks[j].heading_level().is_none_or(|l| l > 2)
        {
            j += 1;
        }
        chunker.pack_section(doc, &starts, i..j, &mut raw);
        i = j;
    }

    let has_body = doc
        .blocks
        .iter()
        .any(|b| b.kind == BlockKind::Paragraph && !b.text.is_empty());
    raw.retain(|r| r.has_body || !has_body);

    let char_starts = to_char_offsets(&full, raw.iter().map(|r| r.start));
    let char_ends = to_char_offsets(&full, raw.iter().map(|r| r.end));
    raw.iter()
        .enumerate()
        .map(|(n, r)| {
            let text = full[r.start..r.end].to_owned();
            Chunk {
                ordinal: n as u32,
                page: doc.blocks[r.block].page,
                heading_path: paths[path_of[r.block]].clone(),
                char_start: char_starts[n],
                char_end: char_ends[n],
                lang: detect_lang(&text),
                text,
            }
        })
        .collect()
}

/// A chunk in byte offsets, before conversion.
struct Raw {
    start: usize,
    end: usize,
    /// The block of the chunk's first own (non-overlap) unit: gives page and heading path.
    block: usize,
    has_body: bool,
}

/// A contiguous byte range of one block that is never split further.
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
    tokens: usize,
    block: usize,
}

struct Open {
    start: usize,
    tokens: usize,
    units: Vec<Unit>,
    has_body: bool,
}

struct Chunker<'a> {
    full: &'a str,
    max: usize,
    overlap: usize,
    counter: &'a dyn TokenCounter,
}

impl Chunker<'_> {
    /// Packs the blocks of one section on one page.
    fn pack_section(
        &self,
        doc: &ParsedDocument,
        starts: &[usize],
        blocks: std::ops::Range<usize>,
        out: &mut Vec<Raw>,
    ) {
        let first = blocks.start;
        let mut open: Option<Open> = None;
        for b in blocks {
            let block = &doc.blocks[b];
            let is_body = block.kind == BlockKind::Paragraph;
            // A minor heading starts a new chunk when the current one is already half full.
            if b != first && block.heading_level().is_some() {
                if let Some(o) = open.take_if(|o| o.tokens * 2 >= self.max) {
                    self.close(o, out);
                }
            }
            for u in self.units(starts[b], &block.text, b) {
                let mut next_start = u.start;
                let mut next_tokens = 0;
                if let Some(o) = open.take_if(|o| o.tokens + u.tokens > self.max) {
                    let allow = self.overlap.min(self.max.saturating_sub(u.tokens));
                    if let Some((s, t)) = self.overlap_start(&o, allow) {
                        next_start = s;
                        next_tokens = t;
                    }
                    self.close(o, out);
                }
                let o = open.get_or_insert_with(|| Open {
                    start: next_start,
                    tokens: next_tokens,
                    units: Vec::new(),
                    has_body: false,
                });
                o.tokens += u.tokens;
                o.has_body |= is_body;
                o.units.push(u);
            }
        }
        if let Some(o) = open {
            self.close(o, out);
        }
    }

    fn close(&self, o: Open, out: &mut Vec<Raw>) {
        if let (Some(first), Some(last)) = (o.units.first(), o.units.last()) {
            out.push(Raw {
                start: o.start,
                end: last.end,
                block: first.block,
                has_body: o.has_body,
            });
        }
    }

    /// Where the next chunk starts: the last whole sentences of `o` fitting in `allow` tokens,
    /// never reaching back to `o`'s own start. `None` when no sentence fits.
    fn overlap_start(&self, o: &Open, allow: usize) -> Option<(usize, usize)> {
        let mut found = None;
        let mut tokens = 0;
        for unit in o.units.iter().rev() {
            let text = &self.full[unit.start..unit.end];
            for &(a, b) in sentence_spans(text).iter().rev() {
                let start = unit.start + a;
                if start <= o.start {
                    return found;
                }
                let t = self.counter.count(&self.full[start..unit.start + b]);
                if tokens + t > allow {
                    return found;
                }
                tokens += t;
                found = Some((start, tokens));
            }
        }
        found
    }

    /// The units of one block starting at byte `base` of the full text.
    fn units(&self, base: usize, text: &str, block: usize) -> Vec<Unit> {
        let mut units = Vec::new();
        if text.trim().is_empty() {
            return units;
        }
        let tokens = self.counter.count(text);
        if tokens <= self.max {
            let lead = text.len() - text.trim_start().len();
            let end = text.trim_end().len();
            units.push(Unit {
                start: base + lead,
                end: base + end,
                tokens,
                block,
            });
            return units;
        }
        for (a, b) in sentence_spans(text) {
            let sentence = &text[a..b];
            let t = self.counter.count(sentence);
            if t <= self.max {
                units.push(Unit {
                    start: base + a,
                    end: base + b,
                    tokens: t,
                    block,
                });
            } else {
                self.word_units(base + a, sentence, block, &mut units);
            }
        }
        units
    }

    /// Splits an over-long sentence into runs of whole words, each within budget.
    fn word_units(&self, base: usize, sentence: &str, block: usize, units: &mut Vec<Unit>) {
        let words: Vec<(usize, usize)> = word_spans(sentence);
        let mut i = 0;
        while i < words.len() {
            let span = |k: usize| &sentence[words[i].0..words[i + k - 1].1];
            let single = self.counter.count(span(1));
            if single > self.max {
                let (a, b) = words[i];
                self.char_units(base + a, &sentence[a..b], block, units);
                i += 1;
                continue;
            }
            // The longest run of words from `i` within budget (binary search on its length).
            let (mut lo, mut hi) = (1, words.len() - i);
            let mut lo_tokens = single;
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                let t = self.counter.count(span(mid));
                if t <= self.max {
                    lo = mid;
                    lo_tokens = t;
                } else {
                    hi = mid - 1;
                }
            }
            units.push(Unit {
                start: base + words[i].0,
                end: base + words[i + lo - 1].1,
                tokens: lo_tokens,
                block,
            });
            i += lo;
        }
    }

    /// Splits one over-long word into runs of characters, each within budget (at least one
    /// character, so a budget below one character still makes progress).
    fn char_units(&self, base: usize, word: &str, block: usize, units: &mut Vec<Unit>) {
        let bounds: Vec<usize> = word
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(word.len()))
            .collect();
        let mut i = 0;
        while i + 1 < bounds.len() {
            let (mut lo, mut hi) = (1, bounds.len() - 1 - i);
            let mut lo_tokens = self.counter.count(&word[bounds[i]..bounds[i + 1]]);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                let t = self.counter.count(&word[bounds[i]..bounds[i + mid]]);
                if t <= self.max {
                    lo = mid;
                    lo_tokens = t;
                } else {
                    hi = mid - 1;
                }
            }
            units.push(Unit {
                start: base + bounds[i],
                end: base + bounds[i + lo],
                tokens: lo_tokens,
                block,
            });
            i += lo;
        }
    }
}

/// Byte spans of the whitespace-separated words of `s`.
fn word_spans(s: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(st)) => {
                spans.push((st, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        spans.push((st, s.len()));
    }
    spans
}

/// Converts non-decreasing byte offsets into char offsets in one pass.
fn to_char_offsets(s: &str, offsets: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut byte, mut chars) = (0, 0);
    for off in offsets {
        debug_assert!(off >= byte);
        chars += s[byte..off].chars().count();
        byte = off;
        out.push(chars);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Block;

    fn doc(blocks: Vec<Block>) -> ParsedDocument {
        ParsedDocument {
            blocks,
            ..ParsedDocument::default()
        }
    }

    fn words(n: usize, word: &str) -> String {
        vec![word; n].join(" ")
    }

    #[test]
    fn word_estimate_is_about_1_3_per_word() {
        assert_eq!(WordEstimate.count(""), 0);
        assert_eq!(WordEstimate.count("satu"), 2);
        assert_eq!(WordEstimate.count(&words(10, "cuti")), 13);
        assert_eq!(WordEstimate.count(&words(100, "cuti")), 130);
        assert_eq!(WordEstimate.count(&"a".repeat(120)), 13);
    }

    #[test]
    fn small_document_is_one_chunk_with_heading() {
        let d = doc(vec![
            Block::heading(1, "Cuti Tahunan", None),
            Block::paragraph("Pekerja yang layak boleh mendapat cuti tahunan.", None),
        ]);
        let chunks = chunk(&d, &ChunkerConfig::default(), &WordEstimate);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, d.full_text());
        assert_eq!(chunks[0].heading_path, ["Cuti Tahunan"]);
        assert_eq!(
            (chunks[0].char_start, chunks[0].char_end),
            (0, d.full_text().chars().count())
        );
        assert_eq!(chunks[0].lang, Lang::Ms);
    }

    #[test]
    fn sections_and_pages_split_chunks() {
        let d = doc(vec![
            Block::heading(1, "Cuti", Some(1)),
            Block::heading(2, "Kelayakan", Some(1)),
            Block::paragraph("Semua pekerja layak.", Some(1)),
            Block::heading(3, "Pengecualian", Some(1)),
            Block::paragraph("Kecuali pekerja sambilan.", Some(1)),
            Block::paragraph("Sambungan di halaman dua.", Some(2)),
            Block::heading(2, "Permohonan", Some(2)),
            Block::paragraph("Mohon melalui sistem.", Some(2)),
        ]);
        let chunks = chunk(&d, &ChunkerConfig::default(), &WordEstimate);
        let got: Vec<_> = chunks
            .iter()
            .map(|c| (c.page, c.heading_path.join(" > "), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some(1),
                    "Cuti > Kelayakan".to_owned(),
                    "Kelayakan\n\nSemua pekerja layak.\n\nPengecualian\n\nKecuali pekerja sambilan."
                ),
                (Some(2), "Cuti > Kelayakan > Pengecualian".to_owned(), "Sambungan di halaman dua."),
                (Some(2), "Cuti > Permohonan".to_owned(), "Permohonan\n\nMohon melalui sistem."),
            ]
        );
    }

    #[test]
    fn long_paragraph_splits_on_sentences_with_overlap() {
        let sentence = |i: usize| format!("Ayat nombor {i} adalah tentang cuti tahunan pekerja.");
        let para: Vec<String> = (0..40).map(sentence).collect();
        let d = doc(vec![Block::paragraph(para.join(" "), None)]);
        let cfg = ChunkerConfig {
            max_tokens: 60,
            overlap_tokens: 12,
        };
        let chunks = chunk(&d, &cfg, &WordEstimate);
        assert!(chunks.len() > 5, "{}", chunks.len());
        for pair in chunks.windows(2) {
            assert!(pair[1].char_start < pair[0].char_end, "overlapping");
            assert!(pair[1].char_start > pair[0].char_start);
            assert!(
                pair[1].text.starts_with("Ayat nombor"),
                "starts at a sentence"
            );
        }
        for c in &chunks {
            assert!(WordEstimate.count(&c.text) <= 60);
            assert!(c.text.ends_with('.'));
        }
    }

    #[test]
    fn giant_word_is_split_on_characters() {
        let d = doc(vec![Block::paragraph("x".repeat(5000), None)]);
        let cfg = ChunkerConfig {
            max_tokens: 20,
            overlap_tokens: 5,
        };
        let chunks = chunk(&d, &cfg, &WordEstimate);
        assert!(chunks.len() > 1);
        let total: usize = chunks.iter().map(|c| c.char_end - c.char_start).sum();
        assert_eq!(total, 5000);
    }

    #[test]
    fn heading_only_chunks_are_dropped_when_there_is_body() {
        let d = doc(vec![
            Block::paragraph("Teks halaman satu.", Some(1)),
            Block::heading(2, "Tajuk di kaki", Some(1)),
            Block::paragraph("Teks halaman dua.", Some(2)),
        ]);
        let chunks = chunk(&d, &ChunkerConfig::default(), &WordEstimate);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].heading_path, ["Tajuk di kaki"]);
        let only_headings = doc(vec![Block::heading(1, "Tajuk", None)]);
        assert_eq!(
            chunk(&only_headings, &ChunkerConfig::default(), &WordEstimate).len(),
            1
        );
        assert!(chunk(
            &ParsedDocument::default(),
            &ChunkerConfig::default(),
            &WordEstimate
        )
        .is_empty());
    }

    #[test]
    fn char_offsets_count_chars_not_bytes() {
        let d = doc(vec![
            Block::paragraph("Café ünïcödé 中文 😀.", None),
            Block::paragraph("Kedua.", None),
        ]);
        let cfg = ChunkerConfig {
            max_tokens: 4,
            overlap_tokens: 0,
        };
        let full: Vec<char> = d.full_text().chars().collect();
        let chunks = chunk(&d, &cfg, &WordEstimate);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].text, "😀.\n\nKedua.");
        for c in chunks {
            let slice: String = full[c.char_start..c.char_end].iter().collect();
            assert_eq!(slice, c.text);
        }
    }
}
