//! The [`Engine`]: configuration, embedder, collection and (lazily) the generator, with
//! the three things Tanya does — ingest, search, ask. The CLI and the server are thin
//! layers over it.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::answer::{
    abstain_text, best_relevance, check_citations, extractive_answer, nothing_indexed_text, prompt,
    quoted, score_sentence, Scored,
};
use crate::config::{AnswerMode, Bm25At, Config, GeneratorBackend, StoreConfig, StoreKind};
use crate::error::{Error, Result};
use crate::index::collection::Collection;
use crate::models::embed::{dot, Embedder};
use crate::models::generate::{ChatMessage, GenEvent, Generator, GeneratorConfig, RemoteConfig};
use crate::models::rerank::{self, CrossEncoder};
use crate::text::lexicon::Lexicon;
use crate::text::quantities::NumericQuestion;
use crate::text::terms::{Analysed, EitherLanguage};
use tanya_ingest::detect_lang;

// The engine's vocabulary: what the server and the CLI may name, so that they depend on
// the engine alone (scripts/layers.py checks it).
pub use crate::answer::{fallback_note, Answer, AnswerEvent, Citation};
pub use crate::index::collection::copy_dir;
pub use crate::index::manifest::{DocumentEntry, Manifest};
pub use crate::index::migrate::MigrateReport;
pub use crate::index::passage::{Access, Passage};
pub use crate::index::texts::StoredText;
pub use crate::ingest::isolate::{worker_main, WorkerArgs};
pub use crate::ingest::pipeline::{
    doc_id_for, passages_of, peak_rss_mib, IngestObserver, IngestOptions, IngestReport, Quiet,
};
pub use crate::ingest::reindex::{reindex, ReindexReport};
pub use crate::models::generate::ensure_passive_openmp;
pub use crate::query::{check_query, Retrieval, SearchHit, MAX_QUERY_CHARS};

/// Reorders the first `n` hits by `score` of their texts, recording each score.
fn second_stage(
    hits: Vec<SearchHit>,
    n: usize,
    score: impl FnOnce(&[&str]) -> Result<Vec<f32>>,
) -> Result<Vec<SearchHit>> {
    let texts: Vec<&str> = hits[..n.min(hits.len())]
        .iter()
        .map(|h| h.passage.text.as_str())
        .collect();
    let scores = score(&texts)?;
    Ok(rerank::reorder(hits, &scores, |h, s| h.rerank = Some(s)))
}

/// Everything needed to ingest, search and answer. The server and the CLI ask it; they
/// never reach into the collection or the models.
pub struct Engine {
    config: Config,
    embedder: Embedder,
    collection: Collection,
    /// The cross-encoder of `[rerank] model`, if one is configured.
    cross_encoder: Option<CrossEncoder>,
    /// The word lists that carry a question into the other language.
    lexicon: Lexicon,
    generator: Mutex<Option<Arc<Generator>>>,
    /// The relevance floor of answers ([`Config::min_relevance`]), resolved once.
    min_relevance: f32,
}

impl Engine {
    /// Loads the embedder and opens the collection in `config.paths.data_dir`.
    pub fn open(config: Config) -> Result<Self> {
        let embedder = Embedder::from_config(&config)?;
        let kind = embedder.kind();
        let collection = if config.shared.enabled() {
            Collection::open_shared(
                &config.paths.data_dir,
                &embedder.identity(),
                kind.dimension(),
                &config.store,
                &config.shared,
            )?
        } else {
            Collection::open(
                &config.paths.data_dir,
                &embedder.identity(),
                kind.dimension(),
                &config.store,
            )?
        };
        let cross_encoder = match config.reranker_dir() {
            Some(dir) => Some(CrossEncoder::load(
                &config.paths.models_dir,
                &dir,
                config.embedder.threads,
                config.rerank.max_length,
            )?),
            None => None,
        };
        let lexicon = Lexicon::load(&config.lexicon_files())?;
        Ok(Engine {
            min_relevance: config.min_relevance(),
            config,
            embedder,
            collection,
            cross_encoder,
            lexicon,
            generator: Mutex::new(None),
        })
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cosine similarity below which an answer abstains: `answer.min_relevance`, or
    /// the embedder's own calibrated floor.
    pub fn min_relevance(&self) -> f32 {
        self.min_relevance
    }

    /// The acknowledged documents. A read guard: hold it briefly.
    pub fn manifest(&self) -> std::sync::RwLockReadGuard<'_, Manifest> {
        self.collection.manifest()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.collection.dir()
    }

    /// The embedder's identity (`name/dimension`), as the index records it.
    pub fn embedder_identity(&self) -> String {
        self.embedder.identity()
    }

    /// Whether a cross-encoder reranker is loaded.
    pub fn has_cross_encoder(&self) -> bool {
        self.cross_encoder.is_some()
    }

    /// The collection, for evaluation and tests that inspect the stores directly. The
    /// server and the CLI use the methods above instead.
    pub fn collection(&self) -> &Collection {
        &self.collection
    }

    /// The embedder, for evaluation and tests.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Removes a document from both stores and the manifest.
    pub fn remove_document(&self, doc_id: &str) -> Result<()> {
        self.collection.remove_document(doc_id)?;
        self.collection.finish()
    }

    /// Copies the data directory (but its lock and the files `skip` names, relative to
    /// it) into `dest` between two writes: see [`crate::index::collection::Collection::copy_to`].
    pub fn copy_data_to(&self, dest: &Path, skip: &[&str]) -> Result<(usize, u64)> {
        self.refuse_shared("a backup of the data directory")?;
        if self.config.store.kind == StoreKind::Qdrant {
            // The folder holds only the name of the collection on the server: a copy of
            // it restored elsewhere would share the live vectors, not have its own.
            return Err(Error::BadRequest(
                "the vectors are on the Qdrant server, not in the data directory: back \
                 them up with the server's snapshots (docs/deploy.md), or `tanya migrate \
                 --to edge` first for a backup that holds everything"
                    .into(),
            ));
        }
        self.collection.copy_to(dest, skip)
    }

    /// Refuses `what` for an index whose records replicas share: it works on one data
    /// directory's files.
    fn refuse_shared(&self, what: &str) -> Result<()> {
        if self.collection.is_shared() {
            return Err(Error::BadRequest(format!(
                "{what} works on one data directory, and this index's records are shared by \
                 replicas ([shared] postgres): see docs/deploy.md"
            )));
        }
        Ok(())
    }

    /// Runs `f` as one write: with shared records, holding the writer lease throughout
    /// (taken as any write takes it, or [`Error::WriterBusy`]), so that no other replica
    /// writes meanwhile. Without shared state, just runs `f`.
    pub fn while_writing<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _writer = self.collection.hold_writer()?;
        Ok(f())
    }

    /// Whether the index's records are shared by replicas (`[shared] postgres`).
    pub fn is_shared(&self) -> bool {
        self.collection.is_shared()
    }

    /// How many acknowledged documents `access` may see (counts never tell of others).
    pub fn visible_documents(&self, access: &Access) -> usize {
        self.collection.visible_documents(access)
    }

    /// Gives a document other access groups, without parsing or embedding it again.
    pub fn set_document_groups(&self, doc_id: &str, groups: &[String]) -> Result<()> {
        self.set_groups_of(&[doc_id.to_string()], groups)
    }

    /// [`Self::set_document_groups`] for several documents, in batches.
    pub fn set_groups_of(&self, doc_ids: &[String], groups: &[String]) -> Result<()> {
        // Sorted and without duplicates, as ingest records them.
        let groups: Vec<String> = Access::for_groups(groups.iter().cloned())?
            .groups()
            .map(str::to_string)
            .collect();
        self.collection.regroup_all(doc_ids, &groups)
    }

    /// Refuses with [`Error::DiskFull`] when the data directory's disk has less than
    /// `ingest.min_free_disk_mb` free.
    pub fn check_free_space(&self) -> Result<()> {
        self.collection
            .check_free_space(self.config.ingest.min_free_disk_mb)
    }

    /// The acknowledged bytes of a document (see [`crate::index::sources::original`]):
    /// refused with [`Error::SourceChanged`] when its file is not what was indexed.
    pub fn original(&self, entry: &DocumentEntry) -> Result<Vec<u8>> {
        crate::index::sources::original(entry, self.config.ingest.max_file_mb * 1024 * 1024)
    }

    /// The text extracted from a document's acknowledged version at ingest, with its
    /// pages; `None` for a version indexed before texts were stored (the next ingest of
    /// its folder stores it).
    pub fn document_text(&self, doc_id: &str) -> Result<Option<StoredText>> {
        self.collection.text(doc_id)
    }

    /// A real (tiny) read of the BM25 index under `access`: whether the index answers.
    pub fn probe(&self, access: &Access) -> Result<()> {
        self.collection.bm25_search("tanya", access, 1).map(|_| ())
    }

    /// Moves the vectors to a store of `to` (with `[store]`'s other settings), BM25
    /// kept by `bm25`: copied as they are, resumable, verified, then swapped in (see
    /// [`crate::index::migrate`]). The engine must be dropped afterwards; open it again
    /// with `[store] kind` and `bm25` set to these.
    pub fn migrate(
        &self,
        to: StoreKind,
        bm25: Bm25At,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<MigrateReport> {
        self.refuse_shared("`tanya migrate`")?;
        if bm25 == Bm25At::Qdrant && to != StoreKind::Qdrant {
            return Err(Error::Config(
                "BM25 can be kept in Qdrant only with the vectors: --bm25 qdrant goes with \
                 --to qdrant"
                    .into(),
            ));
        }
        let target = StoreConfig {
            kind: to,
            bm25,
            ..self.config.store.clone()
        };
        self.collection
            .migrate(&target, self.embedder.kind().dimension(), progress)
    }

    /// Checks that every acknowledged document is whole in both stores (its chunk
    /// count in each equals the manifest's) and that nothing else is stored.
    /// With shared records, under the writer lease: what a writer that died mid-write
    /// left is cleaned up first (as a data directory's is when it opens), and no write is
    /// half done while this counts.
    pub fn verify(&self) -> Result<Verification> {
        let _writer = self.collection.hold_writer()?;
        let m = self.collection.manifest().clone();
        let mut documents = Vec::new();
        for (id, d) in &m.documents {
            let (vectors, bm25) = self.collection.chunk_counts(id)?;
            let source = match self.original(d) {
                Ok(_) => None,
                Err(e @ Error::SourceChanged { .. }) => Some(e.to_string()),
                Err(e) => Some(e.full_message()),
            };
            let text_stored = self.collection.has_text(id, &d.version);
            let groups_as_recorded = self.collection.groups_as_recorded(id, d)?;
            documents.push(DocumentCheck {
                id: id.clone(),
                rel_path: d.rel_path.clone(),
                chunks: d.chunks as usize,
                stored_vectors: vectors,
                stored_bm25: bm25,
                whole: vectors == d.chunks as usize && bm25 == d.chunks as usize,
                source_problem: source,
                text_stored,
                groups_as_recorded,
            });
        }
        let acknowledged_chunks = m.documents.values().map(|d| d.chunks as usize).sum();
        let (stored_vectors_total, stored_bm25_total) = self.collection.total_counts()?;
        let ok = documents.iter().all(|d| {
            d.whole && d.source_problem.is_none() && d.text_stored && d.groups_as_recorded
        }) && stored_vectors_total == acknowledged_chunks
            && stored_bm25_total == acknowledged_chunks;
        Ok(Verification {
            documents,
            acknowledged_chunks,
            stored_vectors_total,
            stored_bm25_total,
            ok,
        })
    }

    /// Reorganises the vector store for faster searches (see
    /// [`crate::index::collection::Collection::optimize`]); searches go on meanwhile.
    pub fn optimize(&self) -> Result<bool> {
        self.collection.optimize()
    }

    /// Ingests a file or folder.
    pub fn ingest(
        &self,
        path: &Path,
        options: &IngestOptions,
        observer: &dyn IngestObserver,
    ) -> Result<IngestReport> {
        crate::ingest::pipeline::ingest_path(
            &self.collection,
            &self.embedder,
            &self.config,
            path,
            options,
            observer,
        )
    }

    /// Follows `root` until `stop` is set: an ingest pass now, then one after every burst
    /// of file-system changes (creates, edits, renames, deletes; 500 ms of quiet ends a
    /// burst), and a full pass every `rescan` even without events (events can be lost:
    /// network folders, overflowing kernel queues). Each pass is an ordinary incremental
    /// ingest, so an edited document's old version stays searchable until the new one is
    /// committed. `on_pass` receives every pass's report.
    pub fn watch(
        &self,
        root: &Path,
        options: &IngestOptions,
        rescan: std::time::Duration,
        stop: &AtomicBool,
        on_pass: &mut dyn FnMut(&IngestReport),
    ) -> Result<()> {
        use notify::Watcher as _;
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)
            .map_err(|e| Error::BadRequest(format!("cannot watch {}: {e}", root.display())))?;
        watcher
            .watch(root, notify::RecursiveMode::Recursive)
            .map_err(|e| Error::BadRequest(format!("cannot watch {}: {e}", root.display())))?;
        let quiet = Duration::from_millis(500);
        let tick = Duration::from_millis(100);
        let mut last_pass = Instant::now();
        on_pass(&self.ingest(root, options, &crate::ingest::pipeline::Quiet)?);
        let mut dirty_since: Option<Instant> = None;
        let mut last_event = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(tick) {
                Ok(Ok(event)) => {
                    // Reads and metadata-only events change nothing we index.
                    if !matches!(event.kind, notify::EventKind::Access(_)) {
                        dirty_since.get_or_insert_with(Instant::now);
                        last_event = Instant::now();
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "watch error; a full pass follows");
                    dirty_since.get_or_insert_with(Instant::now);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::BadRequest(format!(
                        "stopped watching {}: the watcher went away",
                        root.display()
                    )))
                }
            }
            let burst_over = dirty_since.is_some() && last_event.elapsed() >= quiet;
            if burst_over || last_pass.elapsed() >= rescan {
                dirty_since = None;
                last_pass = Instant::now();
                on_pass(&self.ingest(root, options, &crate::ingest::pipeline::Quiet)?);
            }
        }
        Ok(())
    }

    /// Hybrid search as seen by `access`, then the configured second stage.
    pub fn search(&self, query: &str, access: &Access, limit: usize) -> Result<Retrieval> {
        self.search_with(&self.config.search, query, access, limit)
    }

    /// [`Self::search`] with other first-stage settings (the evaluation widens them).
    pub fn search_with(
        &self,
        search: &crate::config::SearchConfig,
        query: &str,
        access: &Access,
        limit: usize,
    ) -> Result<Retrieval> {
        let rr = &self.config.rerank;
        let mut depth = limit;
        if self.cross_encoder.is_some() {
            depth = depth.max(rr.candidates);
        }
        if rr.llm {
            depth = depth.max(rr.llm_candidates);
        }
        let mut retrieval = crate::query::search(
            &self.collection,
            &self.embedder,
            search,
            &self.lexicon,
            query,
            access,
            depth,
        )?;
        let query = query.trim(); // checked by query::search
        if let Some(ce) = &self.cross_encoder {
            retrieval.hits = second_stage(retrieval.hits, rr.candidates, |t| ce.score(query, t))?;
        }
        if rr.llm {
            let generator = self.generator()?;
            retrieval.hits = second_stage(retrieval.hits, rr.llm_candidates, |t| {
                rerank::llm_scores(&generator, query, t)
            })?;
        }
        retrieval.hits.truncate(limit);
        Ok(retrieval)
    }

    /// The generator, loaded on first use (a GGUF can take seconds to map), or the
    /// model server's client (which contacts the server only when asked something).
    pub fn generator(&self) -> Result<Arc<Generator>> {
        let mut slot = self.generator.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = slot.as_ref() {
            return Ok(g.clone());
        }
        let g = &self.config.generator;
        if g.backend == GeneratorBackend::Openai {
            let gen = Arc::new(Generator::remote(RemoteConfig {
                url: g.url.trim().to_string(),
                api_key: g.api_key.expose().to_string(),
                model: g.remote_model.trim().to_string(),
                connect_timeout: std::time::Duration::from_millis(g.connect_timeout_ms),
                read_timeout: std::time::Duration::from_millis(g.read_timeout_ms),
                retries: g.retries,
                max_new_tokens: g.max_new_tokens,
                temperature: g.temperature,
            })?);
            *slot = Some(gen.clone());
            return Ok(gen);
        }
        let path = self.config.gguf_path();
        if !path.is_file() {
            return Err(Error::ModelMissing { path });
        }
        let template = g.chat_template.trim();
        let gen = Arc::new(Generator::start(GeneratorConfig {
            model_path: path,
            threads: Config::resolve_threads(g.threads),
            max_new_tokens: g.max_new_tokens,
            temperature: g.temperature,
            max_context: g.max_context,
            chat_template: (!template.is_empty()).then(|| template.to_string()),
        })?);
        *slot = Some(gen.clone());
        Ok(gen)
    }

    /// Unloads the generator (its worker thread is joined and the model freed); the next
    /// generative answer loads it again.
    pub fn unload_generator(&self) {
        let taken = self
            .generator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(taken);
    }

    /// Answers `question` for `access` in `mode`, reporting progress through `on_event`
    /// (passages first, then generated tokens). `cancel` stops generation early.
    pub fn ask(
        &self,
        question: &str,
        access: &Access,
        mode: AnswerMode,
        cancel: Arc<AtomicBool>,
        on_event: &mut dyn FnMut(AnswerEvent),
    ) -> Result<Answer> {
        self.ask_follow_up(question, &[], access, mode, cancel, on_event)
    }

    /// The passages a generative answer to `question` would be given: the top
    /// `answer.prompt_passages`, each cut to its sentences nearest the question within
    /// `answer.prompt_tokens` (see `Engine::condensed`).
    pub fn prompt_passages(&self, question: &str, access: &Access) -> Result<Vec<SearchHit>> {
        let question = crate::query::check_query(question)?;
        let retrieval = self.search(question, access, self.config.answer.passages)?;
        self.condensed(
            &*self.generator()?,
            &retrieval.hits,
            &retrieval.query_vector,
        )
    }

    /// Retrieval for a turn of a conversation: an elliptical follow-up ("dan selepas 6
    /// tahun?", which names no topic) is searched together with the previous question,
    /// a complete one ("How often are fire drills held?", a new topic) alone.
    fn search_in_conversation<'q>(
        &self,
        question: &'q str,
        history: &[Turn],
        access: &Access,
    ) -> Result<(Cow<'q, str>, Retrieval)> {
        let query = follow_up_query(question, history);
        let retrieval = self.search(&query, access, self.config.answer.passages)?;
        Ok((query, retrieval))
    }

    /// [`Self::ask`] as a turn of a conversation: `history` holds the earlier turns,
    /// oldest first. An elliptical follow-up ("and after 6 years?") is searched together
    /// with the previous question, and the generative prompt sees the previous turn.
    pub fn ask_follow_up(
        &self,
        question: &str,
        history: &[Turn],
        access: &Access,
        mode: AnswerMode,
        cancel: Arc<AtomicBool>,
        on_event: &mut dyn FnMut(AnswerEvent),
    ) -> Result<Answer> {
        let started = Instant::now();
        let question = crate::query::check_query(question)?;
        let lang = detect_lang(question);
        if self.collection.visible_documents(access) == 0 {
            return Ok(Answer {
                text: nothing_indexed_text(lang).to_string(),
                citations: Vec::new(),
                abstained: false,
                nothing_indexed: true,
                mode,
                lang,
                relevance: 0.0,
                coverage: 0.0,
                passages: Vec::new(),
                retrieval_ms: started.elapsed().as_secs_f64() * 1000.0,
                answer_ms: 0.0,
                time_to_first_token_ms: None,
                tokens_per_second: None,
                fallback: None,
            });
        }
        let (query, retrieval) = self.search_in_conversation(question, history, access)?;
        let retrieval_ms = started.elapsed().as_secs_f64() * 1000.0;
        let hits = retrieval.hits;
        on_event(AnswerEvent::Passages(hits.clone()));
        let t = Instant::now();
        let mut answer = Answer {
            text: abstain_text(lang).to_string(),
            citations: Vec::new(),
            abstained: true,
            nothing_indexed: false,
            mode,
            lang,
            relevance: best_relevance(&hits),
            coverage: 0.0,
            passages: hits,
            retrieval_ms,
            answer_ms: 0.0,
            time_to_first_token_ms: None,
            tokens_per_second: None,
            fallback: None,
        };
        if answer.relevance < self.min_relevance {
            answer.answer_ms = t.elapsed().as_secs_f64() * 1000.0;
            return Ok(answer);
        }
        // A follow-up's own words pick the new fact; the previous quote is not repeated
        // unless it says them too.
        let follow_up = match (&query, history.last()) {
            (Cow::Owned(_), Some(prev)) => Some(FollowUp {
                question,
                previous_answer: &prev.answer,
            }),
            _ => None,
        };
        match mode {
            AnswerMode::Extractive => {
                self.extract(&query, follow_up, &retrieval.query_vector, &mut answer)?;
            }
            AnswerMode::Generative => {
                let mut streamed = false;
                let mut on_generated = |event: AnswerEvent| {
                    streamed |= matches!(event, AnswerEvent::Token(_));
                    on_event(event);
                };
                let generated = self.generate(
                    question,
                    history.last(),
                    &retrieval.query_vector,
                    &mut answer,
                    cancel,
                    &mut on_generated,
                );
                match generated {
                    // The model server could not start this answer (down, silent, an
                    // HTTP error): the documents are quoted instead, and the answer says
                    // why. Once text was shown, a failure stays an error: the text
                    // cannot be taken back.
                    Err(Error::Generate(e)) if e.is_server_failure() && !streamed => {
                        tracing::warn!(error = %e, "the model server failed: answering extractively");
                        answer.mode = AnswerMode::Extractive;
                        answer.fallback = Some(e.to_string());
                        self.extract(&query, follow_up, &retrieval.query_vector, &mut answer)?;
                    }
                    other => other?,
                }
            }
        }
        answer.answer_ms = t.elapsed().as_secs_f64() * 1000.0;
        Ok(answer)
    }

    /// A question's terms in its language and carried into the other one.
    fn terms_of(&self, question: &str) -> EitherLanguage {
        EitherLanguage::new(
            question,
            crate::text::analysis::Analyzer::of(detect_lang(question)),
            &self.lexicon,
        )
    }

    /// The content words of `question` that none of `hits` says, in either language
    /// (for evaluation: why an answer may be missing).
    pub fn missing_words(&self, question: &str, hits: &[SearchHit]) -> Vec<String> {
        let texts: Vec<String> = hits
            .iter()
            .map(|h| crate::index::bm25::indexed_text(&h.passage))
            .collect();
        self.terms_of(question).missing(&texts)
    }

    fn extract(
        &self,
        question: &str,
        follow_up: Option<FollowUp<'_>>,
        query_vector: &[f32],
        answer: &mut Answer,
    ) -> Result<()> {
        // The sentence vectors were stored at ingest (MaxSim multivector: the chunk's, then
        // its sentences'); re-embedding happens only for chunks stored without them.
        let ids: Vec<u64> = answer.passages.iter().map(|h| h.passage.point_id).collect();
        let stored = self.collection.vectors(&ids)?;
        // A follow-up's own numbers, if it states any ("above 10k?"), replace the
        // previous question's.
        let numeric = follow_up
            .map(|f| NumericQuestion::new(f.question))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| NumericQuestion::new(question));
        let own_terms = follow_up.map(|f| self.terms_of(f.question));
        let term_weight = self.config.answer.term_weight;
        let terms = self.terms_of(question);
        let mut scored: Vec<Scored> = Vec::new();
        for (hit, h) in answer.passages.iter().enumerate() {
            let sentences = crate::ingest::pipeline::passage_sentences(&h.passage.text);
            let vectors = self.multivector(&stored, h, sentences.len())?;
            let chunk_cos = dot(query_vector, &vectors[0]);
            let heading = h
                .passage
                .heading_path
                .last()
                .map(|s| s.trim().to_lowercase());
            for (sentence, v) in sentences.into_iter().zip(&vectors[1..]) {
                if heading.as_deref() == Some(sentence.text.trim().to_lowercase().as_str())
                    || crate::text::sentences::is_label(&sentence.text)
                {
                    continue;
                }
                let fit = numeric.fit(&sentence.text);
                // Analysed once for both the question's terms and the follow-up's.
                let analysed = Analysed::new(&sentence.text);
                let score = score_sentence(
                    dot(query_vector, v),
                    chunk_cos,
                    hit,
                    fit,
                    terms.coverage_of(&analysed),
                    term_weight,
                ) + match (follow_up, &own_terms) {
                    (Some(f), Some(own)) => {
                        let says = own.coverage_of(&analysed);
                        let repeats = f.previous_answer.contains(&quoted(sentence.text.trim()));
                        // Said before, and neither the follow-up's words nor its numbers
                        // select it again.
                        FOLLOW_UP_WEIGHT * says
                            - if repeats && says == 0.0 && fit <= 0.0 {
                                REPEAT_PENALTY
                            } else {
                                0.0
                            }
                    }
                    _ => 0.0,
                };
                scored.push(Scored {
                    hit,
                    sentence,
                    score,
                    fit,
                });
            }
        }
        if scored.is_empty() {
            return Ok(());
        }
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        for s in scored.iter().take(5) {
            // Scores and positions only: a log never holds document text.
            tracing::debug!(
                score = s.score,
                passage = s.hit,
                chars = s.sentence.text.len(),
                "candidate"
            );
        }
        let best = scored[0].score;
        // A second sentence only when it is nearly as good (one precise quote beats two
        // loose ones) and says something else (overlapping chunks hold the same one).
        // The sentence right after the best one often completes it ("… attacked Fort
        // Caroline." "The Spanish renamed it San Mateo."): it may follow within a wider
        // margin.
        let (first_hit, first_end) = (scored[0].hit, scored[0].sentence.end);
        let next = scored
            .iter()
            .enumerate()
            // Another row of a tiered rule is not a completion: its condition must not
            // contradict the question's numbers.
            .filter(|(_, s)| s.hit == first_hit && s.sentence.start >= first_end && s.fit >= 0.0)
            .min_by_key(|(_, s)| s.sentence.start)
            .filter(|(_, s)| best - s.score <= self.config.answer.next_sentence_margin)
            .map(|(i, _)| i);
        let mut chosen: Vec<Scored> = Vec::new();
        for (i, s) in scored.into_iter().enumerate() {
            if chosen.len() == self.config.answer.max_sentences {
                break;
            }
            if best - s.score > 0.015 && Some(i) != next {
                continue;
            }
            let same = |c: &Scored| c.sentence.text.trim() == s.sentence.text.trim();
            if !chosen.iter().any(same) {
                chosen.push(s);
            }
        }
        let first = &chosen[0];
        let mut said = answer.passages[first.hit].passage.heading_path.join("\n");
        said.push('\n');
        said.push_str(&first.sentence.text);
        answer.coverage = terms.coverage(&said);
        // The quote must say some of what the question asks about, in either language:
        // the best sentence of passages about something else says none of it.
        if answer.coverage < self.config.answer.min_coverage {
            return Ok(());
        }
        let (text, citations) = extractive_answer(answer.lang, &answer.passages, &chosen);
        answer.text = text;
        answer.citations = citations;
        answer.abstained = false;
        Ok(())
    }

    /// The stored vectors of a retrieved chunk (its own, then its `sentences`'), or, for
    /// a chunk stored without them, the same embedded now.
    fn multivector<'s>(
        &self,
        stored: &'s std::collections::HashMap<u64, Vec<Vec<f32>>>,
        hit: &SearchHit,
        sentences: usize,
    ) -> Result<Cow<'s, [Vec<f32>]>> {
        Ok(match stored.get(&hit.passage.point_id) {
            Some(v) if v.len() == sentences + 1 => Cow::Borrowed(v),
            _ => Cow::Owned(
                crate::ingest::pipeline::embed_chunks(&self.embedder, &[&hit.passage.text])?
                    .pop()
                    .expect("one chunk, one multivector"),
            ),
        })
    }

    /// The passages as the generative prompt gives them: the first
    /// `answer.prompt_passages` of `hits`, each cut to its sentences
    /// nearest the question (by the vectors stored at ingest) that fit in
    /// `answer.prompt_tokens` all together, in their order, a gap marked "…". Every
    /// passage keeps at least its nearest sentence, so the numbers stay those of the
    /// passages shown; one without answerable sentences is given whole. 0 = whole
    /// passages.
    fn condensed(
        &self,
        generator: &Generator,
        hits: &[SearchHit],
        query_vector: &[f32],
    ) -> Result<Vec<SearchHit>> {
        let hits = &hits[..hits.len().min(self.config.answer.prompt_passages)];
        let budget = self.config.answer.prompt_tokens;
        if budget == 0 {
            return Ok(hits.to_vec());
        }
        let ids: Vec<u64> = hits.iter().map(|h| h.passage.point_id).collect();
        let stored = self.collection.vectors(&ids)?;
        let mut per_hit = Vec::with_capacity(hits.len());
        // (similarity, hit, sentence), nearest first.
        let mut ranked: Vec<(f32, usize, usize)> = Vec::new();
        for (i, h) in hits.iter().enumerate() {
            let sentences = crate::ingest::pipeline::passage_sentences(&h.passage.text);
            let vectors = self.multivector(&stored, h, sentences.len())?;
            for (j, v) in vectors[1..].iter().enumerate() {
                ranked.push((dot(query_vector, v), i, j));
            }
            per_hit.push(sentences);
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut chosen: Vec<std::collections::BTreeSet<usize>> =
            vec![Default::default(); hits.len()];
        let mut used = 0usize;
        // Each passage's nearest sentence first, whatever it costs; then the nearest of
        // the rest while they fit.
        let firsts: Vec<(usize, usize)> = (0..hits.len())
            .filter_map(|i| ranked.iter().find(|r| r.1 == i).map(|r| (i, r.2)))
            .collect();
        let rest = ranked.iter().map(|&(_, i, j)| (i, j));
        for (n, (i, j)) in firsts.iter().copied().chain(rest).enumerate() {
            if chosen[i].contains(&j) {
                continue;
            }
            let tokens = generator.count_tokens(&per_hit[i][j].text)?;
            if n < firsts.len() || used + tokens <= budget {
                used += tokens;
                chosen[i].insert(j);
            }
        }
        Ok(hits
            .iter()
            .zip(&per_hit)
            .zip(&chosen)
            .map(|((h, sentences), chosen)| {
                let mut hit = h.clone();
                if !chosen.is_empty() {
                    let mut text = String::new();
                    let mut last: Option<usize> = None;
                    for &j in chosen {
                        if let Some(prev) = last {
                            if j == prev + 1 {
                                // Neighbours keep what stood between them (a line break).
                                let between: String = h
                                    .passage
                                    .text
                                    .chars()
                                    .skip(sentences[prev].end)
                                    .take(sentences[j].start - sentences[prev].end)
                                    .collect();
                                text.push_str(&between);
                            } else {
                                text.push_str(" … ");
                            }
                        } else if j > 0 {
                            text.push_str("… ");
                        }
                        text.push_str(&sentences[j].text);
                        last = Some(j);
                    }
                    if last.is_some_and(|l| l + 1 < sentences.len()) {
                        text.push_str(" …");
                    }
                    hit.passage.text = text;
                }
                hit
            })
            .collect())
    }

    fn generate(
        &self,
        question: &str,
        previous: Option<&Turn>,
        query_vector: &[f32],
        answer: &mut Answer,
        cancel: Arc<AtomicBool>,
        on_event: &mut dyn FnMut(AnswerEvent),
    ) -> Result<()> {
        let generator = self.generator()?;
        let g = &self.config.generator;
        let condensed = self.condensed(&generator, &answer.passages, query_vector)?;
        // Exact token accounting: drop the weakest passages until the prompt fits.
        let budget = (g.max_context as usize).saturating_sub(g.max_new_tokens);
        let mut given = condensed.len();
        let messages = loop {
            let mut messages = prompt(question, answer.lang, &condensed[..given]);
            if let Some(turn) = previous {
                // The previous turn goes between the instruction and the new question.
                messages.insert(1, ChatMessage::user(turn.question.clone()));
                messages.insert(2, ChatMessage::assistant(turn.answer.clone()));
            }
            let rendered = generator.render_prompt(&messages)?;
            let tokens = generator.count_tokens(&rendered)?;
            if tokens <= budget || given <= 1 {
                break messages;
            }
            given -= 1;
        };
        let rx = generator.generate(messages, cancel);
        let mut text = String::new();
        for event in rx {
            match event {
                GenEvent::Token(piece) => {
                    text.push_str(&piece);
                    on_event(AnswerEvent::Token(piece));
                }
                GenEvent::Done(stats) => {
                    answer.time_to_first_token_ms =
                        Some(stats.time_to_first_token.as_secs_f64() * 1000.0);
                    answer.tokens_per_second = Some(stats.tokens_per_second);
                    break;
                }
                GenEvent::Error(e) => return Err(e.into()),
            }
        }
        // Checked against what the model was given.
        let (cleaned, citations) = check_citations(text.trim(), &condensed[..given]);
        answer.abstained = cleaned.is_empty();
        answer.text = if cleaned.is_empty() {
            abstain_text(answer.lang).to_string()
        } else {
            cleaned
        };
        answer.citations = citations;
        Ok(())
    }
}

/// What [`Engine::verify`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    pub documents: Vec<DocumentCheck>,
    pub acknowledged_chunks: usize,
    pub stored_vectors_total: usize,
    pub stored_bm25_total: usize,
    pub ok: bool,
}

/// One document's chunk counts: the manifest's against each store's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DocumentCheck {
    pub id: String,
    pub rel_path: String,
    pub chunks: usize,
    pub stored_vectors: usize,
    pub stored_bm25: usize,
    pub whole: bool,
    /// Why its source file is not what was indexed (missing, changed, a symlink now);
    /// `None` when it is.
    pub source_problem: Option<String>,
    /// Whether its extracted text is stored (the source viewer shows it).
    pub text_stored: bool,
    /// Whether every stored chunk carries the groups the manifest records.
    pub groups_as_recorded: bool,
}

/// Weight, in a follow-up's sentence scores, of the share of its own words a sentence
/// says ("untuk isteri dan anak pulak?": the row about spouses and children).
const FOLLOW_UP_WEIGHT: f32 = 0.1;
/// What quoting the previous answer's sentence again costs, unless it says the
/// follow-up's own words (one sentence may hold both rates).
const REPEAT_PENALTY: f32 = 0.1;

/// A follow-up as [`Engine::extract`] sees it.
#[derive(Clone, Copy)]
struct FollowUp<'a> {
    question: &'a str,
    previous_answer: &'a str,
}

/// One earlier question and its answer in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub question: String,
    pub answer: String,
}

/// The text searched for `question` given the conversation so far: an elliptical
/// follow-up ([`crate::text::ellipsis::is_elliptical`]) together with the previous
/// question, a complete question alone.
pub fn follow_up_query<'a>(question: &'a str, history: &[Turn]) -> Cow<'a, str> {
    match history.last() {
        Some(prev)
            if crate::text::ellipsis::is_elliptical(question)
                && prev.question.chars().count() + question.chars().count()
                    < crate::query::MAX_QUERY_CHARS =>
        {
            Cow::Owned(format!("{} {}", prev.question.trim(), question))
        }
        _ => Cow::Borrowed(question),
    }
}
