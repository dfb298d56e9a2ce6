//! Configuration: compiled-in defaults, then an optional file, then `TANYA__SECTION__KEY`
//! environment variables, validated into [`Config`].
//!
//! The default file (`config/default.toml`) is the documentation of every key; a test
//! checks that it parses and validates on its own.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The compiled-in base layer.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// A `tracing` directive every log filter of Tanya's ends with, whatever the user's
/// filter says: `tokenizers` at trace level writes out the text it normalises, character
/// by character, and document text never goes to a log.
pub const NO_TEXT_LOG_DIRECTIVE: &str = "tokenizers=info";

/// The thresholds calibrated for each embedder Tanya installs (see the file).
pub const EMBEDDERS_TOML: &str = include_str!("../config/embedders.toml");

/// Thresholds that belong to an embedder.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// See `answer.min_relevance`.
    pub min_relevance: f32,
    /// The floor with `embedder.sentence_vectors = "in-context"`, whose sentence vectors
    /// run lower; `min_relevance` where it was not measured.
    #[serde(default)]
    pub in_context_min_relevance: Option<f32>,
}

/// `answer.min_relevance`: the embedder's own floor, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MinRelevance {
    Value(f32),
    Named(RelevanceName),
}

/// The one name `answer.min_relevance` takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelevanceName {
    /// The floor calibrated for `embedder.model` (config/embedders.toml).
    Embedder,
}

/// The thresholds calibrated for `model`, if it is one Tanya knows.
pub fn calibration(model: &str) -> Option<Calibration> {
    let table: std::collections::BTreeMap<String, Calibration> =
        toml::from_str(EMBEDDERS_TOML).expect("config/embedders.toml parses (a unit test checks)");
    table.get(model).copied()
}

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "TANYA__";

/// Names accepted in `embedder.model` (directory names under the models directory); each
/// is a `crate::models::embed::EmbedderKind`.
pub const EMBEDDER_NAMES: &[&str] = &[
    "multilingual-e5-small",
    "multilingual-e5-small-int8",
    "all-minilm-l6-v2",
];

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub paths: PathsConfig,
    pub embedder: EmbedderConfig,
    pub ingest: IngestConfig,
    pub search: SearchConfig,
    pub rerank: RerankConfig,
    pub answer: AnswerConfig,
    pub generator: GeneratorSettings,
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub shared: SharedConfig,
}

/// `[shared]`: state that several `tanya serve` replicas share (docs/deploy.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    /// A PostgreSQL connection URL (`postgres://user:password@host:5432/db`); empty for
    /// none (the state stays in the data directory). Never logged nor printed.
    pub postgres: Secret,
    /// Where uploads wait to be ingested; empty: `<data_dir>/uploads`. With several
    /// replicas, a directory every replica mounts.
    pub uploads_dir: String,
    /// How long a write (an ingest, an upload's ingest, a removal) waits for the writer
    /// lease another replica holds before it gives up, in seconds.
    pub lease_wait_secs: u64,
    /// How often a replica looks for documents another replica acknowledged, in ms.
    pub refresh_ms: u64,
}

impl SharedConfig {
    /// Whether the state lives in PostgreSQL.
    pub fn enabled(&self) -> bool {
        !self.postgres.expose().is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderConfig {
    pub model: String,
    pub batch_tokens: usize,
    pub threads: usize,
    pub max_length: usize,
    /// How each chunk's sentence vectors are made.
    pub sentence_vectors: SentenceVectors,
}

/// How a chunk's sentence vectors (the MaxSim multivector after the chunk's own) are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SentenceVectors {
    /// Pooled from the chunk's own encoder pass over each sentence's tokens (late
    /// chunking): one model run per chunk, each sentence read in its context.
    InContext,
    /// Each sentence encoded again on its own: a second model run per sentence.
    Alone,
}

impl SentenceVectors {
    /// The suffix this choice adds to the index's embedder identity (none for `alone`,
    /// which is what indexes built before the choice existed hold).
    pub fn identity_suffix(self) -> &'static str {
        match self {
            Self::InContext => "/in-context",
            Self::Alone => "",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub chunk_tokens: usize,
    pub overlap_tokens: usize,
    pub max_file_mb: u64,
    pub default_groups: Vec<String>,
    /// Wall-clock and CPU-time limit of parsing one file (in its worker process).
    pub parse_timeout_secs: u64,
    /// Memory (address space) limit of one parse worker, in MiB.
    pub parse_memory_mb: u64,
    /// Free space (MiB) the data directory's disk must keep: a document is not written
    /// when less is left.
    pub min_free_disk_mb: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    pub dense_candidates: usize,
    pub bm25_candidates: usize,
    pub rrf_k: f32,
    pub dense_weight: f32,
    pub bm25_weight: f32,
    pub bm25_full_vote_one_language: bool,
    pub bm25_full_vote_coverage: f32,
    pub one_language_share: f32,
    pub bm25_minority_share: f32,
    pub chunk_vector_weight: f32,
    /// English–Malay word lists (`english<TAB>malay` lines), relative to
    /// `paths.models_dir` or absolute; empty = questions are searched only as written.
    pub lexicons: Vec<String>,
    /// Weight of the BM25 list of the question carried into the other language; its
    /// hits vote like the BM25 list's under both languages (coverage of the carried
    /// words). 0 = no such list.
    pub translated_bm25_weight: f32,
    /// Weight of a second dense list, for the carried words embedded as a query. 0 = off.
    pub translated_dense_weight: f32,
    pub top_k: usize,
}

/// Optional second-stage ranking of the fused candidates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankConfig {
    /// Directory of a cross-encoder in ONNX form; empty = none.
    pub model: String,
    pub candidates: usize,
    pub max_length: usize,
    /// Score candidates with the generator (a yes/no relevance judgement).
    pub llm: bool,
    pub llm_candidates: usize,
}

/// How answers are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    Extractive,
    Generative,
}

impl AnswerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerMode::Extractive => "extractive",
            AnswerMode::Generative => "generative",
        }
    }
}

impl std::str::FromStr for AnswerMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "extractive" => Ok(AnswerMode::Extractive),
            "generative" => Ok(AnswerMode::Generative),
            other => Err(Error::BadRequest(format!(
                "unknown answer mode `{other}` (expected `extractive` or `generative`)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerConfig {
    pub mode: AnswerMode,
    pub passages: usize,
    pub prompt_passages: usize,
    /// Generative mode: the passages' sentences nearest the question that fit in this
    /// many tokens are given, not whole passages (0 = whole passages).
    pub prompt_tokens: usize,
    /// `"embedder"` (its calibrated floor), or a cosine similarity that overrides it
    /// ([`Config::min_relevance`]).
    pub min_relevance: MinRelevance,
    /// Extractive mode: abstain when the best sentence and its headings say less than
    /// this share of the question's terms, in either language.
    pub min_coverage: f32,
    pub max_sentences: usize,
    /// Extractive mode: the sentence right after the best one is quoted too when its
    /// score is within this of the best (another sentence must be within 0.015).
    pub next_sentence_margin: f32,
    /// Weight, in a sentence's score, of the share of the question's terms it says (in
    /// either language). 0 = similarity alone.
    pub term_weight: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSettings {
    /// Where generative answers come from.
    pub backend: GeneratorBackend,
    pub model: String,
    pub threads: usize,
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub max_context: u32,
    pub chat_template: String,
    /// `backend = "openai"`: the server's API base URL, with its `/v1`.
    pub url: String,
    /// `backend = "openai"`: sent as a bearer token; empty = none.
    pub api_key: Secret,
    /// `backend = "openai"`: the `model` asked for; empty = the server's first.
    pub remote_model: String,
    pub connect_timeout_ms: u64,
    /// Longest silence of the model server while it answers.
    pub read_timeout_ms: u64,
    /// Retries of a failed request to the model server, before its first token.
    pub retries: u32,
}

/// The generation backends `[generator] backend` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorBackend {
    /// The GGUF of `generator.model`, in this process through llama.cpp.
    Local,
    /// A model server that speaks the OpenAI API (llama-server, vLLM, Ollama).
    Openai,
}

impl GeneratorBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            GeneratorBackend::Local => "local",
            GeneratorBackend::Openai => "openai",
        }
    }
}

/// A setting that must not be shown: read like a string, but `Debug` and the printed
/// configuration (`tanya config`) say only whether it is set.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn shown(&self) -> &'static str {
        if self.0.is_empty() {
            ""
        } else {
            "(set)"
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// Host names (without port) a request's `Host` header may carry.
    pub allowed_hosts: Vec<String>,
    /// Largest accepted upload, in MiB.
    pub max_upload_mb: u64,
    /// PEM certificate chain for HTTPS ("" for plain HTTP).
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// Whether a reverse proxy on this machine is the only client (see default.toml).
    pub behind_proxy: bool,
    /// How long a sign-in lasts, in hours.
    pub session_hours: u64,
    /// The administrator the first start creates when there is none.
    pub first_admin: String,
    /// Questions and searches per person (and per token) per minute.
    pub requests_per_minute: u32,
    /// Answers worked on at once.
    pub max_answering: usize,
    /// HTTP worker threads. 0 = one per CPU core.
    pub workers: usize,
}

/// Which [`crate::index::store::VectorStore`] holds the vectors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// `kind = "qdrant"`: the server's gRPC address (`http://` or `https://`, where TLS
    /// checks the server's certificate against the system's roots); for a cluster,
    /// several nodes' addresses separated by commas, tried in turn when one is down.
    pub url: String,
    /// `kind = "qdrant"`: the server's API key; empty for none. Never logged nor
    /// printed (`tanya config` shows "(set)").
    pub api_key: Secret,
    /// `kind = "qdrant"`: the name the collections Tanya creates start with.
    pub collection: String,
    /// `kind = "qdrant"`: shards of a new collection, and copies of each shard.
    pub shards: u32,
    pub replication: u32,
    /// `kind = "qdrant"`: copies of a shard that must have applied a write before it is
    /// acknowledged (at most `replication`).
    pub write_consistency: u32,
    /// `kind = "qdrant"`: vectors kept on disk (memory-mapped) instead of in RAM.
    pub on_disk: bool,
    /// `kind = "qdrant"`: "none" or "int8" (scalar quantisation kept in RAM, searched
    /// first and rescored with the full vectors).
    pub quantization: Quantization,
    /// `kind = "qdrant"`: the longest one request may take, in milliseconds.
    pub timeout_ms: u64,
    /// Where BM25 is kept: a local tantivy index in the data directory, or (with
    /// `kind = "qdrant"`) sparse vectors on the server.
    pub bm25: Bm25At,
}

/// Where the BM25 side of hybrid search lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bm25At {
    Tantivy,
    Qdrant,
}

impl StoreConfig {
    /// `kind` with every other setting at its default.
    pub fn of(kind: StoreKind) -> StoreConfig {
        StoreConfig {
            kind,
            ..Config::defaults()
                .expect("the built-in defaults parse")
                .store
        }
    }
}

/// How a Qdrant server keeps the vectors it searches first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    None,
    Int8,
}

/// The vector store implementations `[store] kind` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// An embedded Qdrant edge shard in `<data_dir>/vectors` (the default).
    Edge,
    /// In memory only: nothing on disk, a restart loses every vector.
    Memory,
    /// A Qdrant server or cluster, through `qdrant-client` (`[store] url`).
    Qdrant,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Edge => "edge",
            StoreKind::Memory => "memory",
            StoreKind::Qdrant => "qdrant",
        }
    }
}

/// The SmolLM2 GGUF installed by the setup script, relative to the models directory.
pub const DEFAULT_GGUF: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The name in `[search] lexicons` of the compiled-in glossary (`text::lexicon::BUILTIN`).
pub const BUILTIN_LEXICON: &str = "builtin";

impl Config {
    /// Defaults only.
    pub fn defaults() -> Result<Config> {
        Self::load_layers(None, std::iter::empty())
    }

    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        Self::load_layers(file, std::env::vars())
    }

    /// Defaults, then `file` if given, then the given `(name, value)` environment pairs
    /// (only those starting with [`ENV_PREFIX`] are used).
    pub fn load_layers(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut merged: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| Error::Config(format!("built-in defaults do not parse: {e}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("cannot read config file {}: {e}", path.display()))
            })?;
            let layer: toml::Table = text
                .parse()
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            merge(&mut merged, layer, "")?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            if keys.len() != 2 || keys.iter().any(|k| k.is_empty()) {
                return Err(Error::Config(format!(
                    "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
                )));
            }
            let mut layer = toml::Table::new();
            let mut section = toml::Table::new();
            section.insert(keys[1].clone(), parse_env_value(&value));
            layer.insert(keys[0].clone(), toml::Value::Table(section));
            merge(&mut merged, layer, "").map_err(|e| Error::Config(format!("{name}: {e}")))?;
        }
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.message().to_string()))?;
        config.validated()
    }

    /// The cosine similarity below which an answer abstains: `answer.min_relevance` when
    /// set, else the one calibrated for `embedder.model` (config/embedders.toml), so
    /// changing the embedder never leaves answers judged by another model's threshold.
    pub fn min_relevance(&self) -> f32 {
        match self.answer.min_relevance {
            MinRelevance::Value(r) => r,
            MinRelevance::Named(RelevanceName::Embedder) => {
                let c = calibration(&self.embedder.model)
                    .expect("check_embedder admits only calibrated embedders");
                match self.embedder.sentence_vectors {
                    SentenceVectors::Alone => c.min_relevance,
                    SentenceVectors::InContext => {
                        c.in_context_min_relevance.unwrap_or(c.min_relevance)
                    }
                }
            }
        }
    }

    /// Expands `~` in the paths and checks every setting, section by section in a
    /// fixed order; the first failing check is the error.
    fn validated(mut self) -> Result<Config> {
        self.paths.data_dir = expand_home(&self.paths.data_dir);
        self.paths.models_dir = expand_home(&self.paths.models_dir);
        self.check_embedder()?;
        self.check_ingest()?;
        self.check_search()?;
        self.check_rerank()?;
        self.check_answer()?;
        self.check_generator()?;
        self.check_bind()?;
        self.check_parse_isolation()?;
        self.check_server_limits()?;
        self.check_store()?;
        self.check_shared()?;
        Ok(self)
    }

    /// `[shared]`: a PostgreSQL URL, and (with one) stores that hold nothing locally: the
    /// vectors and BM25 on a Qdrant server.
    fn check_shared(&self) -> Result<()> {
        let s = &self.shared;
        if s.refresh_ms == 0 {
            return bad("shared.refresh_ms must be at least 1".into());
        }
        if !s.enabled() {
            return Ok(());
        }
        let url = s.postgres.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return bad(
                "shared.postgres must be a URL starting with postgres:// or postgresql://".into(),
            );
        }
        if self.store.kind != StoreKind::Qdrant || self.store.bm25 != Bm25At::Qdrant {
            return bad(format!(
                "shared.postgres needs store.kind = \"qdrant\" and store.bm25 = \"qdrant\" \
                 (replicas keep no index of their own), not kind = \"{}\", bm25 = \"{}\": \
                 move an index there first with `tanya migrate --to qdrant --bm25 qdrant`",
                self.store.kind.as_str(),
                match self.store.bm25 {
                    Bm25At::Tantivy => "tantivy",
                    Bm25At::Qdrant => "qdrant",
                }
            ));
        }
        Ok(())
    }

    /// `[store]`: a Qdrant server's address, a collection name Qdrant accepts, and
    /// consistent replication.
    fn check_store(&self) -> Result<()> {
        let s = &self.store;
        if s.kind != StoreKind::Qdrant {
            if s.bm25 == Bm25At::Qdrant {
                return bad(format!(
                    "store.bm25 = \"qdrant\" needs store.kind = \"qdrant\", not \"{}\"",
                    s.kind.as_str()
                ));
            }
            return Ok(());
        }
        let urls: Vec<&str> = s.url.split(',').map(str::trim).collect();
        if urls
            .iter()
            .any(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return bad(format!(
                "store.url = `{}` must be one address, or several separated by commas, each \
                 starting with http:// or https:// (the server's gRPC port, 6334 by default)",
                s.url
            ));
        }
        let name_ok = !s.collection.is_empty()
            && s.collection.len() <= 200
            && s.collection
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return bad(format!(
                "store.collection = `{}` must be 1 to 200 letters, digits, - or _",
                s.collection
            ));
        }
        if s.shards == 0 || s.replication == 0 || s.write_consistency == 0 {
            return bad(
                "store.shards, store.replication and store.write_consistency must be at least 1"
                    .into(),
            );
        }
        if s.write_consistency > s.replication {
            return bad(format!(
                "store.write_consistency ({}) cannot exceed store.replication ({})",
                s.write_consistency, s.replication
            ));
        }
        if s.timeout_ms == 0 {
            return bad("store.timeout_ms must be at least 1".into());
        }
        Ok(())
    }

    /// `[embedder]`: a known model and sane token limits.
    fn check_embedder(&self) -> Result<()> {
        if !EMBEDDER_NAMES.contains(&self.embedder.model.as_str()) {
            return bad(format!(
                "embedder.model = `{}` is not one of {:?}",
                self.embedder.model, EMBEDDER_NAMES
            ));
        }
        if calibration(&self.embedder.model).is_none() {
            return bad(format!(
                "embedder.model = `{}` has no calibrated thresholds in config/embedders.toml",
                self.embedder.model
            ));
        }
        if !(16..=65_536).contains(&self.embedder.batch_tokens) {
            return bad("embedder.batch_tokens must be between 16 and 65536".into());
        }
        if !(16..=8192).contains(&self.embedder.max_length) {
            return bad("embedder.max_length must be between 16 and 8192".into());
        }
        Ok(())
    }

    /// `[ingest]`: chunk sizes, file size limit and default groups.
    fn check_ingest(&self) -> Result<()> {
        if self.ingest.chunk_tokens < 32 || self.ingest.chunk_tokens > self.embedder.max_length {
            return bad(format!(
                "ingest.chunk_tokens must be between 32 and embedder.max_length ({})",
                self.embedder.max_length
            ));
        }
        if self.ingest.overlap_tokens >= self.ingest.chunk_tokens / 2 {
            return bad("ingest.overlap_tokens must be less than half of chunk_tokens".into());
        }
        if self.ingest.max_file_mb == 0 {
            return bad("ingest.max_file_mb must be at least 1".into());
        }
        if self.ingest.default_groups.is_empty()
            || self.ingest.default_groups.iter().any(|g| !valid_group(g))
        {
            return bad(
                "ingest.default_groups must be a non-empty list of group names: 1 to 64 \
                 characters, no comma, no control characters, no surrounding spaces"
                    .into(),
            );
        }
        Ok(())
    }

    /// `[search]`: candidate counts, fusion weights and shares.
    fn check_search(&self) -> Result<()> {
        if self.search.dense_candidates == 0 || self.search.bm25_candidates == 0 {
            return bad("search.*_candidates must be at least 1".into());
        }
        if self.search.top_k == 0 || self.search.top_k > 100 {
            return bad("search.top_k must be between 1 and 100".into());
        }
        let (d, b) = (self.search.dense_weight, self.search.bm25_weight);
        if d.is_nan() || b.is_nan() || d < 0.0 || b < 0.0 || d + b <= 0.0 {
            return bad("search.dense_weight and bm25_weight must be >= 0, not both 0".into());
        }
        if self.search.bm25_full_vote_coverage.is_nan()
            || self.search.bm25_full_vote_coverage <= 0.0
        {
            return bad("search.bm25_full_vote_coverage must be above 0".into());
        }
        if !(self.search.one_language_share > 0.0 && self.search.one_language_share <= 1.0) {
            return bad("search.one_language_share must be above 0 and at most 1".into());
        }
        if !(0.0..=1.0).contains(&self.search.bm25_minority_share) {
            return bad("search.bm25_minority_share must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.search.chunk_vector_weight) {
            return bad("search.chunk_vector_weight must be between 0 and 1".into());
        }
        if self.search.rrf_k.is_nan() || self.search.rrf_k < 1.0 {
            return bad("search.rrf_k must be at least 1".into());
        }
        Ok(())
    }

    /// `[rerank]`: candidate counts and input length.
    fn check_rerank(&self) -> Result<()> {
        if self.rerank.candidates == 0 || self.rerank.candidates > 200 {
            return bad("rerank.candidates must be between 1 and 200".into());
        }
        if self.rerank.llm_candidates == 0 || self.rerank.llm_candidates > 50 {
            return bad("rerank.llm_candidates must be between 1 and 50".into());
        }
        if !(16..=8192).contains(&self.rerank.max_length) {
            return bad("rerank.max_length must be between 16 and 8192".into());
        }
        Ok(())
    }

    /// `[answer]`: passage counts, relevance floor and length.
    fn check_answer(&self) -> Result<()> {
        if self.answer.passages == 0 || self.answer.passages > 50 {
            return bad("answer.passages must be between 1 and 50".into());
        }
        if self.answer.prompt_passages == 0 || self.answer.prompt_passages > 20 {
            return bad("answer.prompt_passages must be between 1 and 20".into());
        }
        if matches!(self.answer.min_relevance, MinRelevance::Value(r) if !(-1.0..=1.0).contains(&r))
        {
            return bad("answer.min_relevance must be a cosine similarity in [-1, 1]".into());
        }
        if self.answer.max_sentences == 0 {
            return bad("answer.max_sentences must be at least 1".into());
        }
        Ok(())
    }

    /// `[generator]`: output length, temperature and context.
    fn check_generator(&self) -> Result<()> {
        if self.generator.max_new_tokens == 0 {
            return bad("generator.max_new_tokens must be at least 1".into());
        }
        if !(0.0..=2.0).contains(&self.generator.temperature) {
            return bad("generator.temperature must be between 0 and 2".into());
        }
        if self.generator.max_context < 256 {
            return bad("generator.max_context must be at least 256".into());
        }
        let g = &self.generator;
        if g.connect_timeout_ms == 0 || g.read_timeout_ms == 0 {
            return bad(
                "generator.connect_timeout_ms and read_timeout_ms must be at least 1".into(),
            );
        }
        if g.retries > 10 {
            return bad("generator.retries must be at most 10".into());
        }
        let url = g.url.trim();
        if g.backend == GeneratorBackend::Openai
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad(format!(
                "generator.backend = \"openai\" needs generator.url, the model server's API \
                 base like http://127.0.0.1:8081/v1 (it is `{url}`)"
            ));
        }
        Ok(())
    }

    /// `server.bind` is a socket address.
    fn check_bind(&self) -> Result<()> {
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!(
                "server.bind = `{}` is not an address like 127.0.0.1:8080",
                self.server.bind
            ));
        }
        Ok(())
    }

    /// `ingest.parse_*`: limits of the isolated parser process.
    fn check_parse_isolation(&self) -> Result<()> {
        if self.ingest.parse_timeout_secs == 0 {
            return bad("ingest.parse_timeout_secs must be at least 1".into());
        }
        if self.ingest.parse_memory_mb < 256 {
            return bad("ingest.parse_memory_mb must be at least 256".into());
        }
        Ok(())
    }

    /// `[server]`: allowed hosts, upload size and groups.
    fn check_server_limits(&self) -> Result<()> {
        if self.server.allowed_hosts.is_empty() {
            return bad("server.allowed_hosts must name at least one host".into());
        }
        if self.server.max_upload_mb == 0 {
            return bad("server.max_upload_mb must be at least 1".into());
        }
        if self.server.tls_cert.trim().is_empty() != self.server.tls_key.trim().is_empty() {
            return bad(
                "server.tls_cert and server.tls_key go together: set both, or neither".into(),
            );
        }
        if self.server.requests_per_minute == 0 || self.server.max_answering == 0 {
            return bad(
                "server.requests_per_minute and server.max_answering must be at least 1".into(),
            );
        }
        if self.server.session_hours == 0 || self.server.session_hours > 24 * 90 {
            return bad("server.session_hours must be between 1 and 2160 (90 days)".into());
        }
        Ok(())
    }

    /// The certificate and key files for HTTPS, when both are set.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        let (cert, key) = (self.server.tls_cert.trim(), self.server.tls_key.trim());
        (!cert.is_empty() && !key.is_empty())
            .then(|| (expand_home(Path::new(cert)), expand_home(Path::new(key))))
    }

    /// Whether generative answers can be asked for: the GGUF is installed, or a model
    /// server is configured (whether it is up shows when it is asked: an answer it cannot
    /// give is quoted from the documents instead).
    pub fn generative_available(&self) -> bool {
        match self.generator.backend {
            GeneratorBackend::Local => self.gguf_path().is_file(),
            GeneratorBackend::Openai => true,
        }
    }

    /// The GGUF file generative mode loads.
    pub fn gguf_path(&self) -> PathBuf {
        if self.generator.model.trim().is_empty() {
            self.paths.models_dir.join(DEFAULT_GGUF)
        } else {
            expand_home(Path::new(self.generator.model.trim()))
        }
    }

    /// The chunker settings of `[ingest]`.
    pub fn chunker(&self) -> tanya_ingest::ChunkerConfig {
        tanya_ingest::ChunkerConfig {
            max_tokens: self.ingest.chunk_tokens,
            overlap_tokens: self.ingest.overlap_tokens,
        }
    }

    /// The word lists of `[search] lexicons`, as paths ([`BUILTIN_LEXICON`] as it is).
    pub fn lexicon_files(&self) -> Vec<PathBuf> {
        self.search
            .lexicons
            .iter()
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
            .map(|f| {
                if f == BUILTIN_LEXICON {
                    PathBuf::from(f)
                } else {
                    self.paths.models_dir.join(expand_home(Path::new(f)))
                }
            })
            .collect()
    }

    /// The cross-encoder directory, if one is configured.
    pub fn reranker_dir(&self) -> Option<PathBuf> {
        let m = self.rerank.model.trim();
        (!m.is_empty()).then(|| expand_home(Path::new(m)))
    }

    /// Number of threads to use where the config says 0 ("one per core").
    pub fn resolve_threads(n: usize) -> usize {
        if n > 0 {
            n
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }
}

/// The error of a failed setting check in [`Config::validated`]'s helpers.
fn bad(msg: String) -> Result<()> {
    Err(Error::Config(msg))
}

/// A group name: 1–64 characters, no control characters, no comma (lists of groups are
/// comma-separated), no surrounding spaces. Groups are compared byte for byte everywhere
/// (the stores match them as exact keywords): "HR-1", "hr-1", "HR-10" and a Cyrillic
/// "НR-1" are four groups.
pub fn valid_group(g: &str) -> bool {
    !g.is_empty()
        && g.chars().count() <= 64
        && g.trim() == g
        && !g.chars().any(|c| c.is_control() || c == ',')
}

fn parse_env_value(value: &str) -> toml::Value {
    // Try the value as a TOML value (numbers, booleans, arrays, quoted strings); anything
    // else is taken literally as a string, so paths need no quoting.
    let wrapped = format!("v = {value}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.to_string()),
    }
}

/// Overlays `layer` on `base`; keys unknown to the base are errors (typos must not be
/// silently ignored), and a value may not change type between table and scalar.
fn merge(base: &mut toml::Table, layer: toml::Table, prefix: &str) -> Result<()> {
    for (key, value) in layer {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (base.get_mut(&key), value) {
            (None, _) => return Err(Error::Config(format!("unknown configuration key `{path}`"))),
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l, &path)?,
            (Some(toml::Value::Table(_)), _) => {
                return Err(Error::Config(format!("`{path}` must be a section")))
            }
            (Some(_), toml::Value::Table(_)) => {
                return Err(Error::Config(format!(
                    "`{path}` must be a value, not a section"
                )))
            }
            (Some(slot), v) => {
                // Integers are accepted where floats are expected (rrf_k = 60).
                let v = match (&*slot, v) {
                    (toml::Value::Float(_), toml::Value::Integer(i)) => {
                        toml::Value::Float(i as f64)
                    }
                    (_, v) => v,
                };
                *slot = v;
            }
        }
    }
    Ok(())
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(p: &Path) -> PathBuf {
    match p.to_str() {
        Some(s) if s == "~" || s.starts_with("~/") => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(s.trim_start_matches('~').trim_start_matches('/'))
        }
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_parse_and_validate() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.answer.mode, AnswerMode::Extractive);
        assert_eq!(c.embedder.model, "multilingual-e5-small");
        assert!(c.paths.models_dir.is_absolute() || std::env::var_os("HOME").is_none());
    }

    #[test]
    fn env_overrides_and_types() {
        let c = Config::load_layers(
            None,
            env(&[
                ("TANYA__ANSWER__MODE", "generative"),
                ("TANYA__SEARCH__TOP_K", "3"),
                ("TANYA__SEARCH__RRF_K", "10"),
                ("TANYA__PATHS__DATA_DIR", "/tmp/x y"),
                ("TANYA__INGEST__DEFAULT_GROUPS", r#"["hr", "finance"]"#),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.answer.mode, AnswerMode::Generative);
        assert_eq!(c.search.top_k, 3);
        assert_eq!(c.search.rrf_k, 10.0);
        assert_eq!(c.paths.data_dir, PathBuf::from("/tmp/x y"));
        assert_eq!(c.ingest.default_groups, vec!["hr", "finance"]);
    }

    #[test]
    fn file_layer_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[answer]\nmode = \"generative\"\n").unwrap();
        let c = Config::load_layers(Some(&f), Vec::new()).unwrap();
        assert_eq!(c.answer.mode, AnswerMode::Generative);

        std::fs::write(&f, "[answer]\nmood = 1\n").unwrap();
        let e = Config::load_layers(Some(&f), Vec::new()).unwrap_err();
        assert!(e.to_string().contains("answer.mood"), "{e}");

        let e = Config::load_layers(None, env(&[("TANYA__ANSWER__MODE", "poetry")])).unwrap_err();
        assert!(e.to_string().contains("poetry"), "{e}");

        let e = Config::load_layers(None, env(&[("TANYA__SEARCH__TOP_K", "0")])).unwrap_err();
        assert!(e.to_string().contains("top_k"), "{e}");

        let e = Config::load_layers(None, env(&[("TANYA__EMBEDDER__MODEL", "bert")])).unwrap_err();
        assert!(e.to_string().contains("bert"), "{e}");

        let e =
            Config::load_layers(Some(&dir.path().join("missing.toml")), Vec::new()).unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }

    #[test]
    fn store_kind() {
        assert_eq!(Config::defaults().unwrap().store.kind, StoreKind::Edge);
        let c = Config::load_layers(None, env(&[("TANYA__STORE__KIND", "memory")])).unwrap();
        assert_eq!(c.store.kind, StoreKind::Memory);
        assert_eq!(c.store.kind.as_str(), "memory");
        let e = Config::load_layers(None, env(&[("TANYA__STORE__KIND", "sqlite")])).unwrap_err();
        assert!(e.to_string().contains("sqlite"), "{e}");
        let e = Config::load_layers(None, env(&[("TANYA__STORE__PATH", "x")])).unwrap_err();
        assert!(e.to_string().contains("store.path"), "{e}");
    }

    #[test]
    fn a_qdrant_store_is_checked_and_its_key_never_shown() {
        let c = Config::load_layers(
            None,
            env(&[
                ("TANYA__STORE__KIND", "qdrant"),
                ("TANYA__STORE__URL", "http://q1:6334, https://q2:6334"),
                ("TANYA__STORE__API_KEY", "qdrant-secret-456"),
                ("TANYA__STORE__REPLICATION", "2"),
                ("TANYA__STORE__WRITE_CONSISTENCY", "2"),
                ("TANYA__STORE__BM25", "qdrant"),
            ]),
        )
        .unwrap();
        assert_eq!(c.store.kind, StoreKind::Qdrant);
        assert_eq!(c.store.bm25, Bm25At::Qdrant);
        assert_eq!(c.store.api_key.expose(), "qdrant-secret-456");
        assert!(!format!("{c:?}").contains("qdrant-secret-456"));
        let printed = toml::to_string_pretty(&c).unwrap();
        assert!(!printed.contains("qdrant-secret-456"), "{printed}");
        for (key, value, says) in [
            ("TANYA__STORE__URL", "q1:6334", "store.url"),
            ("TANYA__STORE__WRITE_CONSISTENCY", "3", "write_consistency"),
            ("TANYA__STORE__COLLECTION", "tanya docs", "store.collection"),
            ("TANYA__STORE__SHARDS", "0", "store.shards"),
        ] {
            let e = Config::load_layers(
                None,
                env(&[
                    ("TANYA__STORE__KIND", "qdrant"),
                    ("TANYA__STORE__REPLICATION", "2"),
                    (key, value),
                ]),
            )
            .unwrap_err();
            assert!(e.to_string().contains(says), "{key}: {e}");
        }
        // BM25 on the server needs the vectors there.
        let e = Config::load_layers(None, env(&[("TANYA__STORE__BM25", "qdrant")])).unwrap_err();
        assert!(e.to_string().contains("store.bm25"), "{e}");
    }

    #[test]
    fn the_relevance_floor_belongs_to_the_embedder_unless_configured() {
        for name in EMBEDDER_NAMES {
            let c = calibration(name).unwrap_or_else(|| panic!("{name} is not calibrated"));
            assert!((-1.0..=1.0).contains(&c.min_relevance), "{name}");
        }
        let e5 = Config::defaults().unwrap();
        assert_eq!(
            e5.answer.min_relevance,
            MinRelevance::Named(RelevanceName::Embedder)
        );
        assert_eq!(e5.min_relevance(), 0.82);
        let mini =
            Config::load_layers(None, env(&[("TANYA__EMBEDDER__MODEL", "all-minilm-l6-v2")]))
                .unwrap();
        assert_eq!(
            mini.min_relevance(),
            calibration("all-minilm-l6-v2").unwrap().min_relevance
        );
        assert_ne!(mini.min_relevance(), e5.min_relevance());
        let in_context = Config::load_layers(
            None,
            env(&[("TANYA__EMBEDDER__SENTENCE_VECTORS", "in-context")]),
        )
        .unwrap();
        assert_eq!(in_context.min_relevance(), 0.81);
        let set = Config::load_layers(
            None,
            env(&[
                ("TANYA__EMBEDDER__MODEL", "all-minilm-l6-v2"),
                ("TANYA__ANSWER__MIN_RELEVANCE", "0.5"),
            ]),
        )
        .unwrap();
        assert_eq!(set.min_relevance(), 0.5);
        let e =
            Config::load_layers(None, env(&[("TANYA__ANSWER__MIN_RELEVANCE", "2")])).unwrap_err();
        assert!(e.to_string().contains("min_relevance"), "{e}");
    }

    #[test]
    fn the_generator_backend_and_its_server() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.generator.backend, GeneratorBackend::Local);
        assert_eq!(c.generator.api_key.expose(), "");
        let e =
            Config::load_layers(None, env(&[("TANYA__GENERATOR__BACKEND", "openai")])).unwrap_err();
        assert!(e.to_string().contains("generator.url"), "{e}");
        let c = Config::load_layers(
            None,
            env(&[
                ("TANYA__GENERATOR__BACKEND", "openai"),
                ("TANYA__GENERATOR__URL", "http://127.0.0.1:8081/v1"),
                ("TANYA__GENERATOR__API_KEY", "sk-secret-123"),
                ("TANYA__GENERATOR__RETRIES", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.generator.backend.as_str(), "openai");
        assert_eq!(c.generator.retries, 1);
        assert!(c.generative_available());
        assert_eq!(c.generator.api_key.expose(), "sk-secret-123");
        // The key is never shown: not by Debug, not by `tanya config`.
        assert!(!format!("{c:?}").contains("sk-secret-123"));
        let printed = toml::to_string_pretty(&c).unwrap();
        assert!(!printed.contains("sk-secret-123"), "{printed}");
        assert!(printed.contains("api_key = \"(set)\""), "{printed}");
        let e =
            Config::load_layers(None, env(&[("TANYA__GENERATOR__BACKEND", "ollama")])).unwrap_err();
        assert!(e.to_string().contains("ollama"), "{e}");
        let e = Config::load_layers(None, env(&[("TANYA__GENERATOR__READ_TIMEOUT_MS", "0")]))
            .unwrap_err();
        assert!(e.to_string().contains("read_timeout_ms"), "{e}");
    }

    #[test]
    fn group_names() {
        assert!(valid_group("hr-team.kl_2"));
        assert!(!valid_group(""));
        assert!(valid_group("Sumber Manusia"));
        assert!(valid_group("НR-1"));
        assert!(!valid_group(" hr"));
        assert!(!valid_group("a,b"));
        assert!(!valid_group("a\nb"));
        assert!(!valid_group(&"x".repeat(65)));
    }
}
