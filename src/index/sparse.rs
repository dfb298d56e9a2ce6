//! BM25 as sparse vectors, for a vector store that does the lexical search itself (a
//! Qdrant server: no local index, so any replica can answer).
//!
//! The same analysis as the tantivy index ([`crate::index::bm25`]): every chunk's
//! heading path and text analysed twice, by the Malay and by the English analyser. Each
//! (analyser, stemmed term) pair is one dimension, its id the first four bytes of the
//! SHA-256 of `ms:term` or `en:term`, so both "fields" live in one sparse vector and a
//! query's terms in both analyses are scored together, as tantivy sums its two fields.
//! A chunk's value for a term is BM25's term-frequency part,
//! `tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))`; the store multiplies in the inverse
//! document frequency at search time (Qdrant's IDF modifier, the same
//! `ln(1 + (N − n + 0.5)/(n + 0.5))` as tantivy's), over the chunks that pass the
//! filter's collection. What differs from tantivy: `avgdl` is fixed ([`AVERAGE_TERMS`])
//! rather than the index's running average, which would change every stored value as
//! documents come and go; docs/quality.md measures what it costs.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::index::bm25::indexed_text;
use crate::index::passage::Passage;
use crate::text::analysis::{analyze, Analyzer};
use crate::text::lexicon::Translation;

/// BM25's saturation and length normalisation, as tantivy's defaults.
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// The length, in analysed terms per analyser, that a chunk's is compared with.
pub const AVERAGE_TERMS: f32 = 90.0;

const ANALYSERS: [Analyzer; 2] = [Analyzer::Malay, Analyzer::English];

/// The dimension of `term` as `analyzer` stems it.
pub fn term_id(analyzer: Analyzer, term: &str) -> u32 {
    let prefix = match analyzer {
        Analyzer::Malay => "ms:",
        Analyzer::English => "en:",
    };
    let digest = Sha256::new()
        .chain_update(prefix)
        .chain_update(term)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A sparse vector: dimensions ascending, each once.
pub type Sparse = Vec<(u32, f32)>;

fn collect(weights: BTreeMap<u32, f32>) -> Sparse {
    weights.into_iter().filter(|&(_, w)| w > 0.0).collect()
}

/// The sparse vector a chunk is stored with.
pub fn passage_vector(p: &Passage) -> Sparse {
    let text = indexed_text(p);
    let mut weights = BTreeMap::new();
    for analyzer in ANALYSERS {
        let terms = analyze(&text, analyzer);
        let length = terms.len() as f32;
        let mut tf: BTreeMap<u32, f32> = BTreeMap::new();
        for t in &terms {
            *tf.entry(term_id(analyzer, t)).or_default() += 1.0;
        }
        let norm = K1 * (1.0 - B + B * length / AVERAGE_TERMS);
        for (id, f) in tf {
            // Two analysers may (rarely) hash two terms together: their parts add up.
            *weights.entry(id).or_default() += f * (K1 + 1.0) / (f + norm);
        }
    }
    collect(weights)
}

/// The sparse vector of a question: each distinct term of either analysis, weight 1
/// (a word said twice in a question counts once, as in the tantivy query).
pub fn query_vector(query: &str) -> Sparse {
    let mut weights = BTreeMap::new();
    for analyzer in ANALYSERS {
        for t in analyze(query, analyzer) {
            weights.insert(term_id(analyzer, &t), 1.0);
        }
    }
    collect(weights)
}

/// The sparse vector of a question carried into the other language. Tantivy scores
/// each slot once, by its best alternative, a multi-word one only when all its words are
/// there; a dot product cannot, so here a slot's weight is shared among the distinct
/// words of its alternatives (a slot with one single-word alternative weighs 1, as a
/// term of [`query_vector`] does).
pub fn translated_vector(translation: &Translation) -> Sparse {
    let mut weights: BTreeMap<u32, f32> = BTreeMap::new();
    for slot in &translation.slots {
        let mut words: Vec<&str> = slot
            .alternatives
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_unstable();
        words.dedup();
        let share = 1.0 / words.len().max(1) as f32;
        for w in words {
            let weight = weights.entry(term_id(translation.to, w)).or_default();
            *weight = weight.max(share);
        }
    }
    collect(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;
    use crate::text::lexicon::Slot;

    fn with_text(text: &str) -> Passage {
        let mut p = passage("a", "v1", 0, &["public"]);
        p.heading_path = vec!["Cuti Tahunan".into()];
        p.text = text.into();
        p
    }

    #[test]
    fn a_chunk_carries_both_analyses_with_saturating_weights() {
        let v = passage_vector(&with_text("Pegawai berhak mendapat cuti. Cuti cuti cuti."));
        let ids: Vec<u32> = v.iter().map(|x| x.0).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ascending and distinct"
        );
        let weight = |a, word: &str| {
            let stem = analyze(word, a).pop()?;
            v.iter().find(|x| x.0 == term_id(a, &stem)).map(|x| x.1)
        };
        // "cuti" five times (heading included): more than once, never above k1 + 1.
        let cuti = weight(Analyzer::Malay, "cuti").unwrap();
        let pegawai = weight(Analyzer::Malay, "pegawai").unwrap();
        assert!(cuti > pegawai && cuti < K1 + 1.0, "{cuti} {pegawai}");
        assert!(weight(Analyzer::English, "cuti").is_some());
        // A stopword is not a term.
        assert!(weight(Analyzer::English, "the").is_none());
    }

    #[test]
    fn longer_chunks_weigh_a_term_less() {
        let short = passage_vector(&with_text("elaun perjalanan"));
        let long = passage_vector(&with_text(&format!(
            "elaun perjalanan {}",
            "mesyuarat jabatan pentadbiran ".repeat(60)
        )));
        let id = term_id(Analyzer::Malay, &analyze("elaun", Analyzer::Malay)[0]);
        let w = |v: &Sparse| v.iter().find(|x| x.0 == id).unwrap().1;
        assert!(w(&short) > w(&long));
    }

    #[test]
    fn a_question_weighs_each_term_once_and_a_slot_shares_its_weight() {
        let q = query_vector("cuti cuti tahunan");
        assert!(q.iter().all(|x| x.1 == 1.0));
        assert_eq!(q.len(), query_vector("cuti tahunan").len());
        let t = Translation {
            to: Analyzer::Malay,
            slots: vec![
                Slot {
                    source: "leave".into(),
                    alternatives: vec![vec!["cuti".into()]],
                },
                Slot {
                    source: "allowance".into(),
                    alternatives: vec![vec!["elaun".into()], vec!["imbuhan".into()]],
                },
            ],
        };
        let v = translated_vector(&t);
        let w = |t: &str| {
            v.iter()
                .find(|x| x.0 == term_id(Analyzer::Malay, t))
                .unwrap()
                .1
        };
        assert_eq!(w("cuti"), 1.0);
        assert_eq!(w("elaun"), 0.5);
        assert_eq!(w("imbuhan"), 0.5);
    }
}
