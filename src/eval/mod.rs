//! `tanya eval`: retrieval and answer quality on data sets in BEIR layout
//! (`corpus.jsonl` of `{"_id","title","text"}`, `queries.jsonl` of `{"_id","text"}`,
//! `qrels/*.tsv` of `query-id  corpus-id  score` with a header line).
//!
//! The corpus goes through the real product: each document is written as a file into a
//! scratch folder and ingested by the normal pipeline (chunking, sentence vectors, both
//! stores), so the figures measure what users get. Chunks are mapped back to their
//! corpus document; a document ranks where its best chunk ranks.

pub mod questions;
pub mod scale;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{AnswerMode, Config, SearchConfig};
use crate::error::{Error, Result};
use crate::index::bm25::Bm25Index;
use crate::index::passage::{Access, Passage};
use crate::ingest::pipeline::{IngestObserver, IngestOptions, IngestReport};
use crate::models::embed::Embedder;
use crate::Engine;

/// One corpus document.
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusDoc {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
}

/// One query.
#[derive(Debug, Clone, Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
}

/// Gold answers of one question (`answers.jsonl`).
#[derive(Debug, Clone, Deserialize)]
pub struct Gold {
    pub qid: String,
    pub answers: Vec<String>,
    pub gold_doc: String,
}

/// Relevance judgements: query id → corpus id → grade.
pub type Qrels = HashMap<String, HashMap<String, u32>>;

fn open(path: &Path) -> Result<std::io::BufReader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::PathNotFound(path.to_path_buf())
        } else {
            Error::io(format!("opening {}", path.display()), e)
        }
    })?;
    Ok(std::io::BufReader::new(f))
}

/// Reads a JSON-lines file.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|e| {
                Error::BadRequest(format!("{} line {}: {e}", path.display(), i + 1))
            })?,
        );
    }
    Ok(out)
}

/// Reads a qrels TSV (with its header line).
pub fn read_qrels(path: &Path) -> Result<Qrels> {
    let mut qrels: Qrels = HashMap::new();
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let cols: Vec<&str> = line.split('\t').collect();
        if i == 0 && cols.first().is_some_and(|c| c.contains("query")) {
            continue;
        }
        if cols.len() < 3 {
            continue;
        }
        let grade: u32 = cols[2].trim().parse().map_err(|_| {
            Error::BadRequest(format!("{} line {}: bad score", path.display(), i + 1))
        })?;
        qrels
            .entry(cols[0].to_string())
            .or_default()
            .insert(cols[1].to_string(), grade);
    }
    Ok(qrels)
}

/// The scratch copy of a corpus: one file per document, and the map back to ids.
pub struct Materialized {
    pub dir: PathBuf,
    /// rel_path → corpus id.
    pub ids: HashMap<String, String>,
}

/// Writes each document as Markdown (`# title` then the text) into `dir`, named by its
/// position; unchanged files are left alone so that re-ingesting is a no-op.
pub fn materialize(corpus: &[CorpusDoc], dir: &Path) -> Result<Materialized> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut ids = HashMap::new();
    for (i, doc) in corpus.iter().enumerate() {
        let name = format!("d{i:06}.md");
        let content = if doc.title.trim().is_empty() {
            format!("{}\n", doc.text.trim())
        } else {
            format!("# {}\n\n{}\n", doc.title.trim(), doc.text.trim())
        };
        let path = dir.join(&name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            std::fs::write(&path, content)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        ids.insert(name, doc.id.clone());
    }
    Ok(Materialized {
        dir: dir.to_path_buf(),
        ids,
    })
}

/// Which ranking to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetrievalMode {
    Bm25,
    Dense,
    Hybrid,
}

impl RetrievalMode {
    pub const ALL: [RetrievalMode; 3] = [
        RetrievalMode::Bm25,
        RetrievalMode::Dense,
        RetrievalMode::Hybrid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetrievalMode::Bm25 => "bm25",
            RetrievalMode::Dense => "dense",
            RetrievalMode::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for RetrievalMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "bm25" => Ok(RetrievalMode::Bm25),
            "dense" => Ok(RetrievalMode::Dense),
            "hybrid" => Ok(RetrievalMode::Hybrid),
            other => Err(Error::BadRequest(format!(
                "unknown retrieval mode `{other}` (expected bm25, dense or hybrid)"
            ))),
        }
    }
}

/// Documents (corpus ids) for `query`, best first, at most `depth`.
pub fn rank_documents(
    engine: &Engine,
    mode: RetrievalMode,
    search: &SearchConfig,
    query: &str,
    access: &Access,
    ids: &HashMap<String, String>,
    depth: usize,
) -> Result<Vec<String>> {
    // Chunks, not documents, are ranked: ask for enough chunks to fill `depth` documents.
    let chunks = depth * 3;
    let passages: Vec<String> = match mode {
        RetrievalMode::Bm25 => engine
            .collection()
            .bm25_search(query, access, chunks)?
            .into_iter()
            .map(|(p, _)| p.rel_path)
            .collect(),
        RetrievalMode::Dense => {
            let v = engine.embedder().embed_query(query)?;
            engine
                .collection()
                .dense_search(&v, access, chunks)?
                .into_iter()
                .map(|(p, _)| p.rel_path)
                .collect()
        }
        RetrievalMode::Hybrid => {
            let cfg = SearchConfig {
                dense_candidates: search.dense_candidates.max(chunks),
                bm25_candidates: search.bm25_candidates.max(chunks),
                ..search.clone()
            };
            engine
                .search_with(&cfg, query, access, chunks)?
                .hits
                .into_iter()
                .map(|h| h.passage.rel_path)
                .collect()
        }
    };
    Ok(documents_of(passages.into_iter(), ids, depth))
}

/// nDCG@k with linear gains (as trec_eval and BEIR compute it).
pub fn ndcg_at(k: usize, ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| rels.get(d).copied().unwrap_or(0) as f64 / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u32> = rels.values().copied().filter(|g| *g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| *g as f64 / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

/// Share of the relevant documents found in the first `k`.
pub fn recall_at(k: usize, ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    let relevant = rels.values().filter(|g| **g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| rels.get(*d).is_some_and(|g| *g > 0))
        .count();
    found as f64 / relevant as f64
}

/// Reciprocal rank of the first relevant document within `k`.
pub fn mrr_at(k: usize, ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| rels.get(d).is_some_and(|g| *g > 0))
        .map(|i| 1.0 / (i + 1) as f64)
        .unwrap_or(0.0)
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Latency {
    pub fn of(mut ms: Vec<f64>) -> Latency {
        ms.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| {
            if ms.is_empty() {
                return f64::NAN;
            }
            let i = ((ms.len() as f64 - 1.0) * q).round() as usize;
            ms[i.min(ms.len() - 1)]
        };
        Latency {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// Retrieval quality of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalScores {
    pub mode: RetrievalMode,
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    pub latency_ms: Latency,
    /// nDCG@10 of each query by id, for paired comparisons between settings.
    pub per_query_ndcg_at_10: BTreeMap<String, f64>,
}

/// The queries that have judgements, the first `limit` of them if given.
pub fn judged_queries(queries: Vec<Query>, qrels: &Qrels, limit: Option<usize>) -> Vec<Query> {
    queries
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

/// Scores `mode` of `engine` over every judged query.
pub fn evaluate_retrieval(
    engine: &Engine,
    mode: RetrievalMode,
    queries: &[Query],
    qrels: &Qrels,
    ids: &HashMap<String, String>,
    access: &Access,
) -> Result<RetrievalScores> {
    let search = &engine.config().search;
    score_rankings(mode, queries, qrels, |q| {
        rank_documents(engine, mode, search, q, access, ids, 100)
    })
}

/// BM25 alone needs no vectors: an in-memory BM25 index over exactly the passages the
/// pipeline writes (same parser, chunker and analyser), built in seconds instead of the
/// hours that embedding a large corpus takes on a small machine.
pub fn bm25_index(
    corpus: &Materialized,
    embedder: &Embedder,
    config: &crate::config::Config,
) -> Result<LexicalIndex> {
    let passages = corpus_passages(corpus, embedder, config)?;
    if config.store.bm25 == crate::config::Bm25At::Qdrant {
        return LexicalIndex::in_qdrant(&config.store, &passages);
    }
    let bm25 = Bm25Index::in_memory()?;
    bm25.add(&passages)?;
    bm25.commit()?;
    Ok(LexicalIndex::Tantivy(bm25))
}

/// A corpus's BM25 index for [`evaluate_bm25_only`]: tantivy's in memory, or BM25's
/// sparse vectors in a scratch collection on the Qdrant server (`[store] bm25 =
/// "qdrant"`, deleted when this is dropped).
pub enum LexicalIndex {
    Tantivy(Bm25Index),
    Qdrant(ScratchCollection),
}

/// A Qdrant collection for one evaluation, deleted when dropped.
pub struct ScratchCollection {
    store: crate::index::store::qdrant::QdrantStore,
    config: crate::config::StoreConfig,
    _dir: tempfile::TempDir,
}

impl Drop for ScratchCollection {
    fn drop(&mut self) {
        let binding = self.store.binding().clone();
        if let Err(e) = crate::index::store::qdrant::QdrantStore::delete(&self.config, &binding) {
            tracing::warn!(error = %e, "could not delete the scratch collection {}", binding.collection);
        }
    }
}

impl LexicalIndex {
    fn in_qdrant(config: &crate::config::StoreConfig, passages: &[Passage]) -> Result<Self> {
        use crate::index::store::VectorStore;
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating a scratch folder", e))?;
        let config = crate::config::StoreConfig {
            collection: format!("{}-eval", config.collection),
            ..config.clone()
        };
        // BM25 alone: every chunk has the same one-dimensional dense vector.
        let store =
            crate::index::store::qdrant::QdrantStore::open(&config, &dir.path().join("v"), 1)?;
        let scratch = ScratchCollection {
            store,
            config,
            _dir: dir,
        };
        let items: Vec<(Passage, Vec<Vec<f32>>)> = passages
            .iter()
            .map(|p| (p.clone(), vec![vec![1.0]]))
            .collect();
        scratch.store.upsert(&items)?;
        Ok(LexicalIndex::Qdrant(scratch))
    }

    /// The best `limit` chunks for `query`, as the hybrid search's BM25 side finds them.
    pub fn search(
        &self,
        query: &str,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        use crate::index::store::VectorStore;
        match self {
            LexicalIndex::Tantivy(bm25) => bm25.search(query, access, limit),
            LexicalIndex::Qdrant(s) => {
                s.store
                    .lexical_search(&crate::index::sparse::query_vector(query), access, limit)
            }
        }
    }

    /// Chunks indexed.
    pub fn count(&self) -> Result<usize> {
        use crate::index::store::VectorStore;
        match self {
            LexicalIndex::Tantivy(bm25) => Ok(bm25.count() as usize),
            LexicalIndex::Qdrant(s) => s.store.count(),
        }
    }
}

/// Every chunk of a materialised corpus, as ingest makes them.
fn corpus_passages(
    corpus: &Materialized,
    embedder: &Embedder,
    config: &crate::config::Config,
) -> Result<Vec<Passage>> {
    let mut passages = Vec::new();
    let limits = tanya_ingest::ParseLimits::default();
    let chunker = config.chunker();
    let walk = tanya_ingest::walk(&corpus.dir, &tanya_ingest::WalkOptions::default())
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let groups = config.ingest.default_groups.clone();
    for file in &walk.files {
        let doc = tanya_ingest::read_document(file, &limits, &chunker, embedder)
            .map_err(|e| Error::BadRequest(format!("{}: {e}", file.rel_path)))?;
        let doc_id = crate::ingest::pipeline::doc_id_for(&file.path);
        passages.extend(crate::ingest::pipeline::passages_of(&doc_id, &doc, &groups));
    }
    Ok(passages)
}

/// [`bm25_index`] with the configured embedder's tokenizer (chunks are sized in its
/// tokens); loads no ONNX session beyond the embedder's.
pub fn bm25_index_for(m: &Materialized, config: &Config) -> Result<LexicalIndex> {
    let embedder = Embedder::from_config(config)?;
    bm25_index(m, &embedder, config)
}

/// Scores BM25 alone over an index from [`bm25_index`].
pub fn evaluate_bm25_only(
    bm25: &LexicalIndex,
    queries: &[Query],
    qrels: &Qrels,
    ids: &HashMap<String, String>,
    access: &Access,
) -> Result<RetrievalScores> {
    score_rankings(RetrievalMode::Bm25, queries, qrels, |q| {
        let passages = bm25.search(q, access, 300)?;
        Ok(documents_of(
            passages.into_iter().map(|(p, _)| p.rel_path),
            ids,
            100,
        ))
    })
}

/// Corpus ids of ranked chunks (by rel_path), each document at its best chunk's rank.
fn documents_of(
    rel_paths: impl Iterator<Item = String>,
    ids: &HashMap<String, String>,
    depth: usize,
) -> Vec<String> {
    let mut seen = HashSet::new();
    rel_paths
        .filter_map(|rel| ids.get(&rel).cloned())
        .filter(|id| seen.insert(id.clone()))
        .take(depth)
        .collect()
}

/// Runs `rank` (query text → corpus ids, best first) over every judged query and
/// averages the metrics.
fn score_rankings(
    mode: RetrievalMode,
    queries: &[Query],
    qrels: &Qrels,
    mut rank: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<RetrievalScores> {
    let mut sums = [0.0f64; 4];
    let mut ms = Vec::new();
    let mut n = 0;
    let mut per_query = BTreeMap::new();
    for q in queries {
        let Some(rels) = qrels.get(&q.id) else {
            continue;
        };
        let t = Instant::now();
        let ranked = rank(&q.text)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let ndcg = ndcg_at(10, &ranked, rels);
        per_query.insert(q.id.clone(), ndcg);
        sums[0] += ndcg;
        sums[1] += recall_at(10, &ranked, rels);
        sums[2] += recall_at(100, &ranked, rels);
        sums[3] += mrr_at(10, &ranked, rels);
        n += 1;
    }
    let avg = |s: f64| if n == 0 { 0.0 } else { s / n as f64 };
    Ok(RetrievalScores {
        mode,
        queries: n,
        ndcg_at_10: avg(sums[0]),
        recall_at_10: avg(sums[1]),
        recall_at_100: avg(sums[2]),
        mrr_at_10: avg(sums[3]),
        latency_ms: Latency::of(ms),
        per_query_ndcg_at_10: per_query,
    })
}

/// SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces.
pub fn squad_normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    no_punct
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// SQuAD F1 between a prediction and one gold answer (token overlap).
pub fn squad_f1(prediction: &str, gold: &str) -> f64 {
    let p: Vec<String> = squad_normalize(prediction)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let g: Vec<String> = squad_normalize(gold)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if p.is_empty() || g.is_empty() {
        return if p == g { 1.0 } else { 0.0 };
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for w in &g {
        *counts.entry(w).or_default() += 1;
    }
    let mut common = 0i64;
    for w in &p {
        if let Some(c) = counts.get_mut(w.as_str()) {
            if *c > 0 {
                *c -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / p.len() as f64;
    let recall = common as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// The words an answer claims, without Tanya's framing: the lead-in ("According to the
/// documents:"), quotation marks and `[n]` markers.
pub fn answer_span(text: &str) -> String {
    let body = match text.split_once(": ") {
        Some((lead, rest)) if lead.split_whitespace().count() <= 4 => rest,
        _ => text,
    };
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '[' {
            let mut inner = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() {
                    inner.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            if chars.peek() == Some(&']') && !inner.is_empty() {
                chars.next();
                continue;
            }
            out.push('[');
            out.push_str(&inner);
            continue;
        }
        if !matches!(c, '“' | '”') {
            out.push(c);
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Answer quality of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerScores {
    pub mode: AnswerMode,
    pub questions: usize,
    /// SQuAD exact match of the answer span against the best gold answer.
    pub exact_match: f64,
    /// SQuAD token F1 against the best gold answer.
    pub f1: f64,
    /// The answer contains a gold answer (normalised).
    pub contains: f64,
    /// A citation names the gold passage.
    pub citation_accuracy: f64,
    /// The first citation names the gold passage.
    pub first_citation_accuracy: f64,
    /// The gold passage was among the retrieved passages.
    pub gold_retrieved: f64,
    /// Share of (answerable) questions on which Tanya abstained.
    pub abstained: f64,
    pub latency_ms: Latency,
    /// Answer rates by abstention threshold (see [`AbstentionPoint`]).
    pub abstention: Vec<AbstentionPoint>,
}

/// Running totals of the per-question scores of [`evaluate_answers`].
#[derive(Default)]
struct AnswerSums {
    exact_match: f64,
    f1: f64,
    contains: f64,
    cited: f64,
    cited_first: f64,
    abstained: f64,
    gold_retrieved: f64,
}

impl AnswerSums {
    /// Adds the scores of one `answer` against its gold `g`; `doc_of` maps a
    /// passage's relative path to its corpus id.
    fn add(&mut self, answer: &crate::answer::Answer, g: &Gold, doc_of: &dyn Fn(&str) -> String) {
        if answer.abstained {
            self.abstained += 1.0;
        } else {
            let span = answer_span(&answer.text);
            let norm = squad_normalize(&span);
            let cited = |c: &crate::answer::Citation| doc_of(&c.rel_path) == g.gold_doc;
            self.exact_match += g.answers.iter().any(|a| squad_normalize(a) == norm) as u8 as f64;
            self.f1 += g
                .answers
                .iter()
                .map(|a| squad_f1(&span, a))
                .fold(0.0, f64::max);
            self.contains += g.answers.iter().any(|a| {
                let a = squad_normalize(a);
                !a.is_empty() && format!(" {norm} ").contains(&format!(" {a} "))
            }) as u8 as f64;
            self.cited += answer.citations.iter().any(cited) as u8 as f64;
            self.cited_first += answer.citations.first().is_some_and(cited) as u8 as f64;
        }
        self.gold_retrieved += answer
            .passages
            .iter()
            .any(|h| doc_of(&h.passage.rel_path) == g.gold_doc) as u8
            as f64;
    }
}

/// Asks every question (at most `limit`) in `mode` and scores the answers.
pub fn evaluate_answers(
    engine: &Engine,
    mode: AnswerMode,
    queries: &[Query],
    gold: &HashMap<String, Gold>,
    ids: &HashMap<String, String>,
    access: &Access,
    limit: Option<usize>,
) -> Result<AnswerScores> {
    let mut sum = AnswerSums::default();
    let mut ms = Vec::new();
    // Per question: the best dense similarity of what was retrieved, and the same
    // without the gold document's passages (as if the documents did not hold the answer).
    let mut relevance: Vec<(f32, f32)> = Vec::new();
    let doc_of = |rel: &str| ids.get(rel).cloned().unwrap_or_default();
    for q in queries
        .iter()
        .filter(|q| gold.contains_key(&q.id))
        .take(limit.unwrap_or(usize::MAX))
    {
        let g = &gold[&q.id];
        let t = Instant::now();
        let answer = engine.ask(
            &q.text,
            access,
            mode,
            Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let without_gold = answer
            .passages
            .iter()
            .filter(|h| doc_of(&h.passage.rel_path) != g.gold_doc)
            .filter_map(|h| h.dense.map(|d| d.1))
            .fold(f32::MIN, f32::max);
        relevance.push((answer.relevance, without_gold));
        sum.add(&answer, g, &doc_of);
    }
    let n = relevance.len();
    let avg = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
    Ok(AnswerScores {
        mode,
        questions: n,
        exact_match: avg(sum.exact_match),
        f1: avg(sum.f1),
        contains: avg(sum.contains),
        citation_accuracy: avg(sum.cited),
        first_citation_accuracy: avg(sum.cited_first),
        abstained: avg(sum.abstained),
        gold_retrieved: avg(sum.gold_retrieved),
        latency_ms: Latency::of(ms),
        abstention: abstention_curve(&relevance, engine.min_relevance()),
    })
}

/// How often Tanya would answer at each abstention threshold (`answer.min_relevance`):
/// with the documents as they are, and with the gold document's passages taken away
/// (the same question when the documents do not hold the answer, with near-topic
/// passages still there: the case where it should abstain).
#[derive(Debug, Clone, Serialize)]
pub struct AbstentionPoint {
    pub threshold: f32,
    /// Share of questions answered (not abstained) with the gold document present.
    pub answered: f64,
    /// Share answered with the gold document's passages removed: answers that should
    /// have been abstentions.
    pub answered_without_gold: f64,
}

fn abstention_curve(relevance: &[(f32, f32)], configured: f32) -> Vec<AbstentionPoint> {
    let mut thresholds: Vec<f32> = (0..=14).map(|i| 0.76 + 0.01 * i as f32).collect();
    thresholds.push(configured);
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup_by(|a, b| (*a - *b).abs() < 1e-4);
    let n = relevance.len().max(1) as f64;
    thresholds
        .into_iter()
        .map(|t| AbstentionPoint {
            threshold: t,
            answered: relevance.iter().filter(|r| r.0 >= t).count() as f64 / n,
            answered_without_gold: relevance.iter().filter(|r| r.1 >= t).count() as f64 / n,
        })
        .collect()
}

/// Ingests a materialized corpus (incremental: a second run embeds nothing).
pub fn ingest(
    engine: &Engine,
    corpus: &Materialized,
    observer: &dyn IngestObserver,
) -> Result<IngestReport> {
    engine.ingest(
        &corpus.dir,
        &IngestOptions::with_groups(engine.config().ingest.default_groups.clone()),
        observer,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    fn ranked(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let r = rels(&[("a", 1), ("b", 1)]);
        let run = ranked(&["x", "a", "y", "b"]);
        // DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3).
        let expected = (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(10, &run, &r) - expected).abs() < 1e-12);
        assert_eq!(recall_at(10, &run, &r), 1.0);
        assert_eq!(recall_at(2, &run, &r), 0.5);
        assert_eq!(mrr_at(10, &run, &r), 0.5);
        assert_eq!(mrr_at(1, &run, &r), 0.0);
        assert_eq!(ndcg_at(10, &ranked(&["a", "b"]), &r), 1.0);
        assert_eq!(ndcg_at(10, &ranked(&["x"]), &r), 0.0);
    }

    #[test]
    fn squad_scoring() {
        assert_eq!(squad_normalize("The  Panthers!"), "panthers");
        assert_eq!(squad_f1("the Panthers", "Panthers"), 1.0);
        assert!((squad_f1("Carolina Panthers defense", "Panthers") - 0.5).abs() < 1e-9);
        assert_eq!(squad_f1("Broncos", "Panthers"), 0.0);
    }

    #[test]
    fn answer_spans_drop_the_framing() {
        assert_eq!(
            answer_span("According to the documents: “Gave up 308 points.” [1] “More.” [2]"),
            "Gave up 308 points. More."
        );
        assert_eq!(
            answer_span("Text with [a] bracket"),
            "Text with [a] bracket"
        );
    }

    #[test]
    fn qrels_and_jsonl_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q.tsv");
        std::fs::write(
            &q,
            "query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n2\td3\t1\n",
        )
        .unwrap();
        let qrels = read_qrels(&q).unwrap();
        assert_eq!(qrels["1"]["d2"], 2);
        assert_eq!(qrels.len(), 2);
        let c = dir.path().join("c.jsonl");
        std::fs::write(
            &c,
            "{\"_id\":\"d1\",\"title\":\"T\",\"text\":\"x\"}\n\n{\"_id\":\"d2\",\"text\":\"y\"}\n",
        )
        .unwrap();
        let docs: Vec<CorpusDoc> = read_jsonl(&c).unwrap();
        assert_eq!(docs.len(), 2);
        let m = materialize(&docs, &dir.path().join("docs")).unwrap();
        assert_eq!(m.ids["d000000.md"], "d1");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("docs/d000000.md")).unwrap(),
            "# T\n\nx\n"
        );
    }
}
