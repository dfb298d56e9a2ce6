//! Second-stage ranking: a cross-encoder the user brings (ONNX, through fastembed's
//! user-defined reranking model) and a yes/no relevance judgement by the generator.
//! Both reorder the best fused candidates; neither is on by default (docs/quality.md §7).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fastembed::{RerankInitOptionsUserDefined, TextRerank, UserDefinedRerankingModel};

use super::embed::{init_ort, read_model_files};
use super::generate::{ChatMessage, Generator};
use crate::error::{Error, Result};

/// A loaded cross-encoder: scores (question, passage) pairs jointly.
pub struct CrossEncoder {
    dir: PathBuf,
    model: Mutex<TextRerank>,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("dir", &self.dir)
            .finish()
    }
}

impl CrossEncoder {
    /// Loads the cross-encoder in `dir` (see `[rerank] model` in the default config for the
    /// files it must hold), with ONNX Runtime from `models_dir`.
    pub fn load(models_dir: &Path, dir: &Path, threads: usize, max_length: usize) -> Result<Self> {
        let (onnx, tokenizer) = read_model_files(dir)?;
        init_ort(models_dir)?;
        let model = UserDefinedRerankingModel::new(onnx, tokenizer);
        let options = RerankInitOptionsUserDefined::new()
            .with_max_length(max_length)
            .with_intra_threads(crate::config::Config::resolve_threads(threads));
        let model = TextRerank::try_new_from_user_defined(model, options)
            .map_err(|e| Error::embed(format!("loading the reranker in {}", dir.display()), e))?;
        Ok(CrossEncoder {
            dir: dir.to_path_buf(),
            model: Mutex::new(model),
        })
    }

    /// Relevance of each passage to `query`, in the order of `passages` (higher is better).
    pub fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let mut model = self
            .model
            .lock()
            .map_err(|_| Error::embed_msg("reranker poisoned by an earlier panic"))?;
        let results = model
            .rerank(query, passages, false, Some(8))
            .map_err(|e| Error::embed(format!("reranking {} passages", passages.len()), e))?;
        let mut scores = vec![f32::NAN; passages.len()];
        for r in results {
            if let Some(s) = scores.get_mut(r.index) {
                *s = r.score;
            }
        }
        Ok(scores)
    }
}

/// The generator's relevance judgement of each passage: logit("yes") − logit("no") for
/// the reply to a short yes/no prompt (nothing is generated; one prompt run per passage).
pub fn llm_scores(generator: &Generator, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
    let choices: Vec<String> = ["Yes", "yes", "No", "no"].map(String::from).to_vec();
    passages
        .iter()
        .map(|p| {
            let messages = judge_prompt(query, p);
            let l = generator.judge(messages, choices.clone())?;
            Ok(l[0].max(l[1]) - l[2].max(l[3]))
        })
        .collect()
}

/// The relevance prompt: the passage first, so that a cache of it could be reused.
pub fn judge_prompt(query: &str, passage: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(
            "You judge search results. Answer only yes or no: does the passage contain \
             information that answers the question?",
        ),
        ChatMessage::user(format!(
            "Passage: {passage}\n\nQuestion: {query}\n\nAnswer yes or no."
        )),
    ]
}

/// Reorders the first `scores.len()` hits by `scores` (best first; ties and NaN keep the
/// fused order), records each score with `set_score`, and leaves the rest after them.
pub fn reorder<T>(hits: Vec<T>, scores: &[f32], mut set_score: impl FnMut(&mut T, f32)) -> Vec<T> {
    let n = scores.len().min(hits.len());
    let key = |i: usize| {
        if scores[i].is_nan() {
            f32::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    let mut slots: Vec<Option<T>> = hits.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    for &i in &order {
        let mut h = slots[i].take().expect("each index once");
        set_score(&mut h, scores[i]);
        out.push(h);
    }
    out.extend(slots.into_iter().skip(n).flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_sorts_the_prefix_and_keeps_the_rest() {
        let hits = vec![("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0), ("e", 0.0)];
        let hits = reorder(hits, &[0.1, 0.9, f32::NAN, 0.5], |h, s| h.1 = s);
        let names: Vec<&str> = hits.iter().map(|h| h.0).collect();
        assert_eq!(names, ["b", "d", "a", "c", "e"]);
        assert_eq!(hits[0].1, 0.9);
        let hits = reorder(vec![1, 2, 3], &[0.5, 0.5, 0.5], |_, _| {});
        assert_eq!(hits, [1, 2, 3], "ties keep the fused order");
    }
}
