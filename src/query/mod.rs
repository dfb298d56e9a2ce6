//! Hybrid retrieval: dense (Qdrant) and BM25 (tantivy) candidates, each already
//! restricted to what the caller may see, fused by reciprocal-rank fusion.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::SearchConfig;
use crate::error::{Error, Result};
use crate::index::collection::Collection;
use crate::index::passage::{Access, Passage};
use crate::models::embed::Embedder;
use crate::text::analysis::Analyzer;
use crate::text::lexicon::Lexicon;
use tanya_ingest::Lang;

/// Longest question accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 2000;

/// One fused result.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub passage: Passage,
    /// Fused RRF score.
    pub score: f32,
    /// 1-based rank and cosine similarity in the dense list, if it was there.
    pub dense: Option<(usize, f32)>,
    /// 1-based rank in the BM25 list and the weight of its vote, if it was there (see
    /// [`search`]: bm25_weight, or that × the squared share of the question's words the
    /// passage contains, or dense_weight for a passage with all of them).
    pub bm25: Option<(usize, f32)>,
    /// Score from the second stage (cross-encoder or LLM judgement), if one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<f32>,
}

/// The query and what retrieval found for it.
#[derive(Debug, Clone)]
pub struct Retrieval {
    pub query_vector: Vec<f32>,
    pub hits: Vec<SearchHit>,
}

/// Rejects empty and over-long questions with a clear message.
pub fn check_query(query: &str) -> Result<&str> {
    let q = query.trim();
    if q.is_empty() {
        return Err(Error::BadRequest("the question is empty".into()));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::BadRequest(format!(
            "the question is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    Ok(q)
}

/// Hybrid search for `query` as seen by `access`; returns the top `limit` fused hits.
pub fn search(
    collection: &Collection,
    embedder: &Embedder,
    config: &SearchConfig,
    lexicon: &Lexicon,
    query: &str,
    access: &Access,
    limit: usize,
) -> Result<Retrieval> {
    let query = check_query(query)?;
    let started = std::time::Instant::now();
    let ms = |since: std::time::Instant| since.elapsed().as_secs_f64() * 1000.0;
    let query_vector = embedder.embed_query(query)?;
    let embed_ms = ms(started);
    // Can the answer be in another language than the question's? Only if enough
    // documents are. That decides how the two lists are read (docs/quality.md §9).
    let lang = tanya_ingest::detect_lang(query);
    let share = collection.language_share(lang, access);
    let one_language = share >= config.one_language_share;
    let minority = minority_factor(share, config.bm25_minority_share);
    // The two searches at once: with a Qdrant server each is a network round trip (and
    // the dense one a second, for the chunk vectors), which would otherwise add up.
    let (dense, dense_ms, lexical, bm25_ms) = std::thread::scope(|s| {
        let lexical = s.spawn(|| {
            let t = std::time::Instant::now();
            let hits = collection.bm25_search(query, access, config.bm25_candidates);
            (hits, ms(t))
        });
        let t = std::time::Instant::now();
        let dense = collection
            .dense_search(&query_vector, access, config.dense_candidates)
            .and_then(|mut dense| {
                if one_language && config.chunk_vector_weight > 0.0 {
                    rescore_dense(
                        collection,
                        &query_vector,
                        &mut dense,
                        config.chunk_vector_weight,
                    )?;
                }
                Ok(dense)
            });
        let dense_ms = ms(t);
        let (lexical, bm25_ms) = lexical
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (dense, dense_ms, lexical, bm25_ms)
    });
    let dense = dense?;
    let mut lexical = lexical?;
    // With documents in both languages, a BM25 hit votes in proportion to the squared
    // share of the question's words it contains: when the answer is in the other
    // language, BM25 can only find passages that share "days" and "employee" with the
    // question, and those must not outvote the dense match. A passage that contains every
    // word of the question (`bm25_full_vote_coverage`) votes like a dense hit. With one
    // language, every hit votes bm25_weight. When the question's language is a minority
    // of the collection, every vote shrinks further (`minority_factor`).
    let terms = crate::text::terms::QuestionTerms::new(query);
    let full_votes = one_language && config.bm25_full_vote_one_language;
    for (p, s) in lexical.iter_mut() {
        if full_votes {
            *s = config.bm25_weight;
            continue;
        }
        if minority == 0.0 {
            // No vote whatever the coverage: skip re-analysing the passage.
            *s = 0.0;
            continue;
        }
        let coverage = terms.coverage(&crate::index::bm25::indexed_text(p));
        *s = minority
            * if coverage >= config.bm25_full_vote_coverage {
                config.dense_weight
            } else {
                config.bm25_weight * coverage.powi(2)
            };
    }
    let mut lists = vec![
        RankedList {
            hits: dense,
            kind: ListKind::Dense,
            weight: config.dense_weight,
        },
        // The votes computed above already carry the BM25 weights.
        RankedList {
            hits: lexical,
            kind: ListKind::Bm25,
            weight: 1.0,
        },
    ];
    // The question in the other language, where enough documents are in it (a few
    // documents in the other language do not change how a question is read).
    if !lexicon.is_empty() && !one_language {
        lists.extend(translated_lists(
            collection, embedder, config, lexicon, query, lang, share, access,
        )?);
    }
    let hits = fuse_lists(lists, config.rrf_k, limit);
    tracing::debug!(
        embed_ms,
        dense_ms,
        bm25_ms,
        total_ms = ms(started),
        "search stages"
    );
    Ok(Retrieval { query_vector, hits })
}

/// The question carried into the other language by `lexicon`: BM25 over the carried
/// words, each hit voting by the share of them it contains (as BM25 hits do when both
/// languages are present), scaled by how much of the collection is in that language;
/// and, if weighted, the carried words embedded as a second dense query.
#[allow(clippy::too_many_arguments)]
fn translated_lists(
    collection: &Collection,
    embedder: &Embedder,
    config: &SearchConfig,
    lexicon: &Lexicon,
    query: &str,
    lang: Lang,
    share: f32,
    access: &Access,
) -> Result<Vec<RankedList>> {
    let translation = lexicon.translate(query, Analyzer::of(lang));
    let mut lists = Vec::new();
    if translation.is_empty() {
        return Ok(lists);
    }
    let minority = minority_factor(1.0 - share, config.bm25_minority_share);
    if config.translated_bm25_weight > 0.0 && minority > 0.0 {
        let mut carried =
            collection.bm25_search_translated(&translation, access, config.bm25_candidates)?;
        for (p, s) in carried.iter_mut() {
            let coverage = translation.coverage(&crate::index::bm25::indexed_text(p));
            *s = minority
                * if coverage >= config.bm25_full_vote_coverage {
                    config.dense_weight
                } else {
                    config.translated_bm25_weight * coverage.powi(2)
                };
        }
        lists.push(RankedList {
            hits: carried,
            kind: ListKind::Bm25,
            weight: 1.0,
        });
    }
    if config.translated_dense_weight > 0.0 {
        let v = embedder.embed_query(&translation.first_words())?;
        lists.push(RankedList {
            hits: collection.dense_search(&v, access, config.dense_candidates)?,
            kind: ListKind::Other,
            weight: config.translated_dense_weight,
        });
    }
    Ok(lists)
}

/// What a BM25 vote is multiplied by when `share` of the documents are in the question's
/// language: 1 from `minority_share` up, (share / minority_share)² below it. In a
/// collection mostly in the other language, most answers are where BM25 cannot see them,
/// and its matches on names, numbers and quoted words outvote the dense match
/// (docs/quality.md §9). `minority_share` 0 = always 1.
pub fn minority_factor(share: f32, minority_share: f32) -> f32 {
    if share >= minority_share {
        1.0
    } else {
        (share / minority_share).powi(2)
    }
}

/// Re-ranks dense candidates by `w` × the chunk vector's cosine + (1 − `w`) × the best
/// cosine of the chunk or one of its sentences (what the MaxSim search ranked by). The
/// chunk vector says what the passage is about as a whole, the best sentence where it
/// says it; within one language the mix ranks better than either (docs/quality.md §9). Each candidate keeps its
/// MaxSim similarity as its score: that is what the abstention threshold is calibrated on.
fn rescore_dense(
    collection: &Collection,
    query_vector: &[f32],
    dense: &mut Vec<(Passage, f32)>,
    w: f32,
) -> Result<()> {
    let ids: Vec<u64> = dense.iter().map(|(p, _)| p.point_id).collect();
    let stored = collection.vectors(&ids)?;
    let mut keyed: Vec<(f32, (Passage, f32))> = dense
        .drain(..)
        .map(|(p, best)| {
            let key = match stored.get(&p.point_id).and_then(|v| v.first()) {
                Some(chunk) => {
                    let c = crate::models::embed::dot(query_vector, chunk);
                    w * c + (1.0 - w) * best.max(c)
                }
                None => best,
            };
            (key, (p, best))
        })
        .collect();
    keyed.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1 .0.point_id.cmp(&b.1 .0.point_id))
    });
    dense.extend(keyed.into_iter().map(|(_, hit)| hit));
    Ok(())
}

/// What one ranked list of candidates is, for [`fuse_lists`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Cosines of the question's vector: recorded in [`SearchHit::dense`].
    Dense,
    /// BM25 votes: recorded in [`SearchHit::bm25`] unless an earlier list put one there.
    Bm25,
    /// Any other list (the translated question's vector): counts in the score only.
    Other,
}

/// One ranked list: each hit votes `weight` × (its score for BM25 lists, 1 otherwise) /
/// (k + rank).
pub struct RankedList {
    pub hits: Vec<(Passage, f32)>,
    pub kind: ListKind,
    pub weight: f32,
}

/// Weighted reciprocal-rank fusion of any number of lists: score = Σ weight / (k +
/// rank). Ties break on the dense score, then on the point id, so the order is
/// deterministic.
pub fn fuse_lists(lists: Vec<RankedList>, k: f32, limit: usize) -> Vec<SearchHit> {
    let mut by_id: HashMap<u64, SearchHit> = HashMap::new();
    for list in lists {
        let mut counted = std::collections::HashSet::new();
        for (rank, (p, s)) in list.hits.into_iter().enumerate() {
            let rank = rank + 1;
            // A passage counts once per list, at its best rank.
            if !counted.insert(p.point_id) {
                continue;
            }
            let hit = by_id.entry(p.point_id).or_insert_with(|| SearchHit {
                passage: p,
                score: 0.0,
                dense: None,
                bm25: None,
                rerank: None,
            });
            let vote = match list.kind {
                ListKind::Dense => {
                    hit.dense.get_or_insert((rank, s));
                    list.weight
                }
                ListKind::Bm25 => {
                    hit.bm25.get_or_insert((rank, s));
                    list.weight * s
                }
                ListKind::Other => list.weight,
            };
            hit.score += vote / (k + rank as f32);
        }
    }
    let mut hits: Vec<SearchHit> = by_id.into_values().collect();
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| {
                let da = a.dense.map(|d| d.1).unwrap_or(f32::MIN);
                let db = b.dense.map(|d| d.1).unwrap_or(f32::MIN);
                db.total_cmp(&da)
            })
            .then_with(|| a.passage.point_id.cmp(&b.passage.point_id))
    });
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;
    use proptest::prelude::*;

    fn p(i: u32) -> Passage {
        passage("d", "v", i, &["public"])
    }

    /// Plain RRF (k = 60, both weights 1) of a dense and a BM25 list.
    fn fuse(
        dense: Vec<(Passage, f32)>,
        lexical: Vec<(Passage, f32)>,
        limit: usize,
    ) -> Vec<SearchHit> {
        let list = |hits, kind| RankedList {
            hits,
            kind,
            weight: 1.0,
        };
        fuse_lists(
            vec![list(dense, ListKind::Dense), list(lexical, ListKind::Bm25)],
            60.0,
            limit,
        )
    }

    #[test]
    fn both_lists_beat_one() {
        let dense = vec![(p(1), 0.9), (p(2), 0.8)];
        let lexical = vec![(p(2), 1.0), (p(3), 0.5)];
        let hits = fuse(dense, lexical, 10);
        assert_eq!(hits[0].passage.ordinal, 2);
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].dense, Some((2, 0.8)));
        assert_eq!(hits[0].bm25, Some((1, 1.0)));
    }

    #[test]
    fn bm25_votes_shrink_only_for_a_minority_language() {
        assert_eq!(minority_factor(1.0, 0.5), 1.0);
        assert_eq!(minority_factor(0.5, 0.5), 1.0);
        assert!((minority_factor(0.25, 0.5) - 0.25).abs() < 1e-6);
        assert_eq!(minority_factor(0.0, 0.5), 0.0);
        assert!(minority_factor(0.1, 0.5) < minority_factor(0.2, 0.5));
        // 0 turns the rule off.
        assert_eq!(minority_factor(0.0, 0.0), 1.0);
    }

    #[test]
    fn query_checks() {
        assert!(check_query("  ").is_err());
        assert!(check_query(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert_eq!(check_query(" cuti ").unwrap(), "cuti");
    }

    proptest! {
        #[test]
        fn fusion_is_deterministic_and_bounded(
            d in proptest::collection::vec((0u32..30, 0.0f32..1.0), 0..20),
            l in proptest::collection::vec((0u32..30, 0.0f32..1.0), 0..20),
            limit in 1usize..15,
        ) {
            let dense: Vec<_> = d.iter().map(|(i, s)| (p(*i), *s)).collect();
            let lexical: Vec<_> = l.iter().map(|(i, s)| (p(*i), *s)).collect();
            let a = fuse(dense.clone(), lexical.clone(), limit);
            let b = fuse(dense, lexical, limit);
            let ids = |h: &Vec<SearchHit>| h.iter().map(|x| x.passage.point_id).collect::<Vec<_>>();
            prop_assert_eq!(ids(&a), ids(&b));
            prop_assert!(a.len() <= limit);
            let unique: std::collections::HashSet<_> = ids(&a).into_iter().collect();
            prop_assert_eq!(unique.len(), a.len());
            for w in a.windows(2) {
                prop_assert!(w[0].score >= w[1].score);
            }
        }
    }
}
