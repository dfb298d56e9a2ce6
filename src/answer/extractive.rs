//! Extractive answers: the best sentences of the top passages, quoted with citations.

use tanya_ingest::Lang;

use super::{according_to, citation, Citation};
use crate::query::SearchHit;
use crate::text::sentences::Sentence;

/// A candidate sentence for an extractive answer.
#[derive(Debug, Clone)]
pub struct Scored {
    pub hit: usize,
    pub sentence: Sentence,
    pub score: f32,
    /// How its numbers fit the question's (see `NumericQuestion::fit`).
    pub fit: f32,
}

/// Weight of the chunk's own similarity in a sentence's score: a sentence must answer
/// *and* sit in a passage about the question ("3 times the hourly rate" is close to
/// "3 years" but sits in the overtime section). Measured: docs/quality.md.
pub const CHUNK_WEIGHT: f32 = 0.5;
/// Bonus for a sentence whose numeric condition fits the question's number.
pub const NUMERIC_WEIGHT: f32 = 0.03;

/// Scores a sentence: similarity to the question (a mix of the sentence's and its
/// chunk's, both cross-language), a small prior for the passage's rank, the numeric fit
/// (see [`numeric_fit`]) and `term_weight` × the share of the question's terms it says,
/// in the question's language or carried into the other one (a bonus counted in one
/// language only favoured sentences in the question's language: docs/quality.md §14).
pub fn score_sentence(
    sentence_cos: f32,
    chunk_cos: f32,
    passage_rank: usize,
    numeric: f32,
    terms: f32,
    term_weight: f32,
) -> f32 {
    (1.0 - CHUNK_WEIGHT) * sentence_cos
        + CHUNK_WEIGHT * chunk_cos
        + 0.02 / (passage_rank as f32 + 1.0)
        + NUMERIC_WEIGHT * numeric
        + term_weight * terms
}

/// Builds the extractive answer from the chosen sentences (best first).
pub fn extractive_answer(
    lang: Lang,
    hits: &[SearchHit],
    chosen: &[Scored],
) -> (String, Vec<Citation>) {
    let mut citations: Vec<Citation> = Vec::new();
    let mut parts = Vec::new();
    for c in chosen {
        let p = &hits[c.hit].passage;
        let n = match citations
            .iter()
            .position(|x| x.doc_id == p.doc_id && x.page == p.page && x.char_start == p.char_start)
        {
            Some(i) => citations[i].n,
            None => {
                let n = citations.len() + 1;
                citations.push(citation(n, c.hit, hits, &c.sentence.text));
                n
            }
        };
        parts.push(format!("“{}” [{n}]", super::quoted(&c.sentence.text)));
    }
    let quote_lang = chosen
        .first()
        .map_or(lang, |c| tanya_ingest::detect_lang(&c.sentence.text));
    let text = format!("{} {}", according_to(lang, quote_lang), parts.join(" "));
    (text, citations)
}
