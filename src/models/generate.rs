//! Text generation: a [`Generator`] is either the local GGUF language model, run through
//! llama.cpp (`llama-cpp-2`) below, or a client of an OpenAI-compatible model server
//! ([`super::remote`], `[generator] backend = "openai"`). Callers see one type and one
//! stream of events; the rest of this module is the local backend.
//!
//! Locally, a [`Generator`] is a handle to one dedicated worker thread that owns the loaded
//! [`LlamaModel`]. Requests (count tokens, render a chat prompt, generate) travel to it over a
//! channel and are served one at a time, in order. This follows the mistral.rs / llama-cpp-rs
//! habit: a llama context borrows the model and is not `Sync`, so it is created on the worker for
//! each request and never leaves it; the async server only ever sees channels.
//!
//! Generation streams [`GenEvent`]s: text pieces ([`GenEvent::Token`], always whole UTF-8
//! characters), then exactly one [`GenEvent::Done`] with [`GenStats`] or one
//! [`GenEvent::Error`]. Each request carries its own cancel flag; the worker checks it between
//! tokens and between prompt chunks (sized to take well under a second), and notices a dropped
//! receiver at the next token, so it is soon free for the next request.
//!
//! OpenMP: llama.cpp's CPU threads come from libgomp, which reads `OMP_WAIT_POLICY` when it is
//! loaded, before `main`. Unset, its threads spin after every step and a shared 2-core box drops
//! from ≈33 to ≈5 tok/s; so the binary should call [`ensure_passive_openmp`] first thing.
//!
//! What is deliberately absent: no prompt truncation (a prompt that does not fit fails with
//! [`GenerateError::PromptTooLong`], the caller decides what to drop) and no Jinja (llama.cpp's
//! built-in templates are matched against the GGUF's template or the configured name).
//!
//! KV-cache reuse: the worker keeps one context of [`REUSED_CTX`] tokens between requests,
//! with the tokens its cache holds; a prompt that fits is decoded only from where it differs
//! from them (the system text and the template's start are the same for every question, so
//! they are evaluated once). A longer prompt gets a context of its own, freed afterwards.

use std::num::NonZeroU32;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::LlamaModelLoadError;
use tanya_ingest::panic_message;

pub use super::chat::{ChatMessage, GenEvent, GenStats, Role, StopReason};
pub use super::remote::RemoteConfig;
pub use crate::error::GenerateError;

use super::remote::Remote;

/// Built-in llama.cpp template used when the GGUF carries none (base models such as gemma-270M).
const FALLBACK_TEMPLATE: &str = "chatml";

/// llama.cpp pads the KV cache to this granularity anyway; sizing to it avoids odd sizes.
const CTX_GRANULARITY: usize = 256;

/// Size of the context kept between requests for KV-cache reuse: room for a prompt of cut
/// passages (`answer.prompt_tokens`) and its answer. Its cache costs ~24 MB with SmolLM2-135M.
const REUSED_CTX: usize = 1024;

/// The context kept between requests and the tokens its KV cache holds, in position order.
struct Reused<'m> {
    ctx: LlamaContext<'m>,
    chunk: usize,
    n_ctx: usize,
    tokens: Vec<LlamaToken>,
}

/// Upper bound for one prompt decode call (llama.cpp `n_batch`); see [`prompt_chunk`].
const MAX_PROMPT_BATCH: u32 = 512;

/// Target wall time for one prompt chunk: llama.cpp cannot be interrupted inside `decode`, so
/// this bounds how long a cancel waits during prompt processing.
const PROMPT_CHUNK_TARGET: Duration = Duration::from_millis(400);

/// Assumed CPU speed for sizing prompt chunks: a Q4 model costs ≈2 FLOP per parameter per
/// token, and one AVX2 core of a shared box managed ≈20-30 GFLOP/s (SmolLM2-135M: ≈200 prompt
/// tok/s on 2 threads). The chunk size is derived from the model and thread count rather than
/// from timings so that greedy output stays deterministic: a different batch split changes
/// floating-point rounding and hence, at near ties, the chosen token.
const ASSUMED_FLOPS_PER_THREAD: f64 = 20e9;
const MIN_PROMPT_CHUNK: usize = 8;

/// Markers that end an assistant turn or begin the next one in llama.cpp's built-in templates.
/// The ones a template really uses are found by rendering a probe conversation (see
/// [`stop_strings_for`]); they matter when the model writes them as plain text or as special
/// tokens that the GGUF does not flag as end-of-generation.
const TURN_MARKERS: &[&str] = &[
    "<|im_end|>",
    "<|im_start|>",
    "<end_of_turn>",
    "<start_of_turn>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end|>",
    "<|user|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "</s>",
    "[INST]",
    "<｜end▁of▁sentence｜>",
    "<｜User｜>",
];

/// Everything needed to load a model and run it.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// CPU threads for prompt processing and generation. Default 2: the box is shared with
    /// retrieval, and more threads than free cores makes llama.cpp slower, not faster.
    pub threads: usize,
    /// Upper bound on generated tokens per request. Default 256.
    pub max_new_tokens: usize,
    /// 0 = greedy (deterministic); above 0 = temperature sampling with top-k/top-p/min-p.
    pub temperature: f32,
    /// Upper bound on the per-request context (prompt + answer), in tokens. Default 4096. The
    /// model's training context caps it further.
    pub max_context: u32,
    /// Name of a llama.cpp built-in template ("chatml", "gemma", "llama3", ...) to use instead
    /// of the model's own. `None`: the GGUF's template, or ChatML when it has none.
    pub chat_template: Option<String>,
}

impl GeneratorConfig {
    /// Defaults for everything but the model file.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            threads: 2,
            max_new_tokens: 256,
            temperature: 0.0,
            max_context: 4096,
            chat_template: None,
        }
    }

    fn validate(&self) -> Result<(), GenerateError> {
        let bad = |why: &str| Err(GenerateError::InvalidConfig(why.to_string()));
        if self.threads == 0 || i32::try_from(self.threads).is_err() {
            return bad("threads must be at least 1");
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1");
        }
        if self.max_context < 2 {
            return bad("max_context must be at least 2 tokens");
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature must be a finite number >= 0");
        }
        Ok(())
    }
}

/// A language model to generate with: the local GGUF on its worker thread, or a model
/// server spoken to over the OpenAI API ([`Generator::remote`]). Both take the same chat
/// messages and stream the same [`GenEvent`]s, so callers never ask which. Cheap to share
/// behind an `Arc`; dropping the last handle cancels any running generation.
#[derive(Debug)]
pub struct Generator {
    backend: Backend,
}

/// The closed set of generation backends (enum dispatch: nothing else implements them).
#[derive(Debug)]
enum Backend {
    Local(Local),
    Remote(Remote),
}

/// Handle to the worker thread that owns the model; dropping it cancels any running
/// generation and joins the worker.
struct Local {
    requests: Option<Sender<Request>>,
    worker: Option<JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
    model_name: String,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("model_name", &self.model_name)
            .finish_non_exhaustive()
    }
}

enum Request {
    CountTokens {
        text: String,
        reply: Sender<Result<usize, GenerateError>>,
    },
    Render {
        messages: Vec<ChatMessage>,
        reply: Sender<Result<String, GenerateError>>,
    },
    Generate {
        messages: Vec<ChatMessage>,
        cancel: Arc<AtomicBool>,
        reply: Sender<GenEvent>,
    },
    Judge {
        messages: Vec<ChatMessage>,
        choices: Vec<String>,
        reply: Sender<Result<Vec<f32>, GenerateError>>,
    },
}

impl Generator {
    /// Spawns the worker, which loads the model; returns once loading succeeded or failed.
    pub fn start(cfg: GeneratorConfig) -> Result<Generator, GenerateError> {
        Ok(Generator {
            backend: Backend::Local(Local::start(cfg)?),
        })
    }

    /// A client of the OpenAI-compatible model server `cfg` names. Nothing is sent yet: a
    /// server that is down fails the first request (see
    /// [`GenerateError::is_server_failure`]), not the start, so that the engine can answer
    /// without it.
    pub fn remote(cfg: RemoteConfig) -> Result<Generator, GenerateError> {
        Ok(Generator {
            backend: Backend::Remote(Remote::new(cfg)?),
        })
    }

    /// The GGUF's `general.name` (or its file name); for a model server, the model
    /// asked for (`generator.remote_model`, or the server's first once it was asked).
    pub fn model_name(&self) -> String {
        match &self.backend {
            Backend::Local(l) => l.model_name.clone(),
            Backend::Remote(r) => r.model_name(),
        }
    }

    /// Number of tokens `text` takes as message content (no BOS, special-token text
    /// counted as plain text, as [`Generator::generate`] tokenises message contents):
    /// exact locally (queued behind any running generation) and from a server's
    /// `/tokenize`; an estimate from a server without one ([`super::remote::estimate_tokens`]).
    pub fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        match &self.backend {
            Backend::Local(l) => l.count_tokens(text),
            Backend::Remote(r) => r.count_tokens(text),
        }
    }

    /// The prompt text the model will see, for counting its tokens: the chat template
    /// applied with the assistant turn opened (a server's `/apply-template`, or the
    /// messages one after another where it has none).
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        match &self.backend {
            Backend::Local(l) => l.render_prompt(messages),
            Backend::Remote(r) => r.render_prompt(messages),
        }
    }

    /// Starts a generation and returns its event stream at once. Setting `cancel` or
    /// dropping the receiver stops it (between tokens locally; a server's connection is
    /// closed, which stops the server too). The receiver is unbounded, so a slow reader
    /// never slows the model down.
    pub fn generate(
        &self,
        messages: Vec<ChatMessage>,
        cancel: Arc<AtomicBool>,
    ) -> Receiver<GenEvent> {
        match &self.backend {
            Backend::Local(l) => l.generate(messages, cancel),
            Backend::Remote(r) => r.generate(messages, cancel),
        }
    }

    /// Scores each of `choices` as the start of the model's reply to `messages`, by its
    /// first token: the logit locally, the log-probability from a server (the same
    /// differences between choices; see [`super::remote`]). Blocks until the prompt ran.
    pub fn judge(
        &self,
        messages: Vec<ChatMessage>,
        choices: Vec<String>,
    ) -> Result<Vec<f32>, GenerateError> {
        match &self.backend {
            Backend::Local(l) => l.judge(messages, choices),
            Backend::Remote(r) => r.judge(messages, choices),
        }
    }
}

impl Local {
    fn start(cfg: GeneratorConfig) -> Result<Local, GenerateError> {
        cfg.validate()?;
        // Checked here as well as by llama.cpp because llama.cpp only logs "failed to open" and
        // returns null, which would surface as a vague load error.
        if !cfg.model_path.is_file() {
            return Err(GenerateError::ModelNotFound {
                path: cfg.model_path,
            });
        }
        let (req_tx, req_rx) = crossbeam_channel::unbounded::<Request>();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<String, GenerateError>>(1);
        let shutdown = Arc::new(AtomicBool::new(false));
        let worker_shutdown = Arc::clone(&shutdown);
        let worker = std::thread::Builder::new()
            .name("tanya-llm".to_string())
            .spawn(move || worker_main(cfg, req_rx, ready_tx, worker_shutdown))
            .map_err(|e| GenerateError::Backend(format!("cannot spawn worker thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(model_name)) => Ok(Local {
                requests: Some(req_tx),
                worker: Some(worker),
                shutdown,
                model_name,
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => {
                // The worker died before reporting: a panic during load.
                let reason = match worker.join() {
                    Err(payload) => panic_message(payload.as_ref()),
                    Ok(()) => "worker exited during load".to_string(),
                };
                Err(GenerateError::Panicked(reason))
            }
        }
    }

    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(Request::CountTokens {
            text: text.to_string(),
            reply,
        })?;
        rx.recv().map_err(|_| GenerateError::WorkerGone)?
    }

    /// The chat template applied with the assistant turn opened (`add_ass = true`).
    fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(Request::Render {
            messages: messages.to_vec(),
            reply,
        })?;
        rx.recv().map_err(|_| GenerateError::WorkerGone)?
    }

    /// Queues a generation; the worker checks `cancel` and the receiver between tokens.
    fn generate(&self, messages: Vec<ChatMessage>, cancel: Arc<AtomicBool>) -> Receiver<GenEvent> {
        let (reply, rx) = crossbeam_channel::unbounded();
        let request = Request::Generate {
            messages,
            cancel,
            reply: reply.clone(),
        };
        if let Err(e) = self.send(request) {
            let _ = reply.send(GenEvent::Error(e));
        }
        rx
    }

    /// The logit of each choice's first token (e.g. `["yes", "no"]` for a relevance
    /// judgement) after the prompt.
    fn judge(
        &self,
        messages: Vec<ChatMessage>,
        choices: Vec<String>,
    ) -> Result<Vec<f32>, GenerateError> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.send(Request::Judge {
            messages,
            choices,
            reply,
        })?;
        rx.recv().map_err(|_| GenerateError::WorkerGone)?
    }

    fn send(&self, request: Request) -> Result<(), GenerateError> {
        self.requests
            .as_ref()
            .ok_or(GenerateError::WorkerGone)?
            .send(request)
            .map_err(|_| GenerateError::WorkerGone)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // The flag stops a running generation at the next token; closing the request channel
        // ends the worker's loop once it is idle, so the join below is short.
        self.shutdown.store(true, Ordering::SeqCst);
        self.requests.take();
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                tracing::error!("generation worker panicked while shutting down");
            }
        }
    }
}

/// Makes sure libgomp runs with `OMP_WAIT_POLICY=PASSIVE`, by re-executing the current binary
/// with it set (same pid, arguments and stdio) when it is missing. Call it first thing in
/// `main`, before starting threads or touching files.
///
/// Why a re-exec: libgomp parses its environment in a library constructor, before `main` runs,
/// so `std::env::set_var` later on changes nothing (`OMP_DISPLAY_ENV=verbose` shows
/// `GOMP_SPINCOUNT = '300000'` instead of `'0'`). An explicit value, e.g. `ACTIVE` on a
/// dedicated machine, is respected. Returns `Ok(())` when nothing had to be done; on success
/// the re-exec does not return, and an error means the process goes on with spinning threads.
#[cfg(unix)]
pub fn ensure_passive_openmp() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;

    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    Err(command.args(args).env("OMP_WAIT_POLICY", "PASSIVE").exec())
}

/// Whether `OMP_WAIT_POLICY` was already set when the backend started (tests relax their
/// latency bounds when it was not: spinning threads make a single token take seconds).
static OMP_POLICY_SET_AT_START: OnceLock<bool> = OnceLock::new();

/// The backend is process-global in llama.cpp, and `LlamaBackend::init` refuses a second call
/// while one is alive. Keeping one for the life of the process lets several generators coexist
/// (a model swap, parallel tests); freeing it at exit would buy nothing.
fn backend() -> Result<&'static LlamaBackend, GenerateError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let omp_set = std::env::var_os("OMP_WAIT_POLICY").is_some();
            OMP_POLICY_SET_AT_START.get_or_init(|| omp_set);
            if !omp_set {
                // Set for any OpenMP runtime that reads it lazily and for child processes, but
                // libgomp has normally read its environment already (see
                // `ensure_passive_openmp`), hence the warning.
                std::env::set_var("OMP_WAIT_POLICY", "PASSIVE");
                tracing::warn!(
                    "OMP_WAIT_POLICY was not set at process start: llama.cpp threads will \
                     spin-wait and generation may be several times slower on a busy machine; \
                     set OMP_WAIT_POLICY=PASSIVE or call ensure_passive_openmp() in main"
                );
            }
            // ≈2,300 lines per load otherwise go straight to stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| GenerateError::Backend(e.clone()))
}

/// Model-wide state the worker keeps between requests.
struct Loaded {
    model: LlamaModel,
    template: LlamaChatTemplate,
    /// Where the template came from, for the load log line (a GGUF template is pages long).
    template_source: String,
    stop_strings: Vec<String>,
    cfg: GeneratorConfig,
}

fn worker_main(
    cfg: GeneratorConfig,
    requests: Receiver<Request>,
    ready: Sender<Result<String, GenerateError>>,
    shutdown: Arc<AtomicBool>,
) {
    let loaded = match load(cfg) {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let name = model_name(&loaded.model, &loaded.cfg.model_path);
    tracing::info!(
        model = %name,
        path = %loaded.cfg.model_path.display(),
        template = %loaded.template_source,
        stop_strings = ?loaded.stop_strings,
        "language model loaded"
    );
    if ready.send(Ok(name)).is_err() {
        return;
    }
    // Requests are served strictly one after another: two contexts would halve the speed of
    // both on a 2-core machine, and sequential service keeps latency predictable.
    let mut reused: Option<Reused<'_>> = None;
    for request in requests {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            serve(&loaded, request, &shutdown, &mut reused)
        }));
        if let Err(payload) = outcome {
            // What the kept context holds is unknown after a panic.
            reused = None;
            // Only count/render get here (generation catches its own); their caller sees the
            // reply channel close, i.e. `WorkerGone`. The model is read-only and stays usable.
            tracing::error!(
                panic = %panic_message(payload.as_ref()),
                "generation request panicked"
            );
        }
    }
}

fn serve<'m>(
    loaded: &'m Loaded,
    request: Request,
    shutdown: &AtomicBool,
    reused: &mut Option<Reused<'m>>,
) {
    match request {
        Request::CountTokens { text, reply } => {
            let count = loaded
                .model
                .vocab()
                .tokenize(text.as_bytes(), false, false)
                .len();
            let _ = reply.send(Ok(count));
        }
        Request::Render { messages, reply } => {
            let _ = reply.send(render(loaded, &messages));
        }
        Request::Judge {
            messages,
            choices,
            reply,
        } => {
            let _ = reply.send(judge(loaded, &messages, &choices, shutdown));
        }
        Request::Generate {
            messages,
            cancel,
            reply,
        } => {
            // Caught here rather than only in the loop so that the client gets an Error event
            // instead of a stream that just ends.
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                generate(loaded, &messages, &cancel, shutdown, &reply, reused)
            }))
            .unwrap_or_else(|payload| {
                *reused = None;
                Err(GenerateError::Panicked(panic_message(payload.as_ref())))
            });
            let _ = reply.send(GenEvent::last(result));
        }
    }
}

fn load(cfg: GeneratorConfig) -> Result<Loaded, GenerateError> {
    let backend = backend()?;
    let model = LlamaModel::load_from_file(backend, &cfg.model_path, &LlamaModelParams::default())
        .map_err(|e| GenerateError::ModelLoad {
            path: cfg.model_path.clone(),
            reason: match e {
                LlamaModelLoadError::NullResult => "llama.cpp rejected it: not a GGUF file, an \
                    unsupported architecture, or a truncated download (details in the llama.cpp \
                    log)"
                    .to_string(),
                other => other.to_string(),
            },
        })?;

    let (template, template_source) = match &cfg.chat_template {
        Some(name) => {
            let template = LlamaChatTemplate::new(name)
                .map_err(|_| GenerateError::Template(format!("bad template name {name:?}")))?;
            // A typo in the configuration should fail at start-up, not on the first question.
            probe(&model, &template).map_err(|e| {
                GenerateError::Template(format!(
                    "{name:?} is not a llama.cpp built-in template ({e})"
                ))
            })?;
            (template, format!("configured {name:?}"))
        }
        None => model_template(&model)?,
    };
    let stop_strings = stop_strings_for(&model, &template);
    Ok(Loaded {
        model,
        template,
        template_source,
        stop_strings,
        cfg,
    })
}

/// The GGUF's own template if llama.cpp can apply it, otherwise ChatML.
fn model_template(model: &LlamaModel) -> Result<(LlamaChatTemplate, String), GenerateError> {
    let fallback = || {
        LlamaChatTemplate::new(FALLBACK_TEMPLATE)
            .map(|t| (t, format!("built-in {FALLBACK_TEMPLATE:?} (fallback)")))
            .map_err(|e| GenerateError::Template(e.to_string()))
    };
    match model.chat_template(None) {
        Ok(template) => match probe(model, &template) {
            Ok(_) => Ok((template, "the model's own".to_string())),
            Err(e) => {
                // llama.cpp recognises templates by heuristics, not Jinja; an exotic template
                // is better served by ChatML than by refusing to start.
                tracing::warn!(error = %e, "model's chat template is not supported by llama.cpp; using ChatML");
                fallback()
            }
        },
        Err(_) => {
            tracing::info!("model has no chat template; using ChatML");
            fallback()
        }
    }
}

const PROBE_A: &str = "TANYAPROBEA";
const PROBE_B: &str = "TANYAPROBEB";
const PROBE_C: &str = "TANYAPROBEC";

/// Renders user/assistant/user with recognisable contents.
fn probe(model: &LlamaModel, template: &LlamaChatTemplate) -> Result<String, GenerateError> {
    let chat = [
        ChatMessage::user(PROBE_A),
        ChatMessage::assistant(PROBE_B),
        ChatMessage::user(PROBE_C),
    ];
    apply_template(model, template, &chat, false)
}

/// Stop strings = the known turn markers found between the end of an assistant turn and the
/// start of the next user message in a probe rendering. Working from the rendered text means
/// a template name and a GGUF template give the same answer.
fn stop_strings_for(model: &LlamaModel, template: &LlamaChatTemplate) -> Vec<String> {
    let Ok(text) = probe(model, template) else {
        return Vec::new();
    };
    let (Some(b), Some(c)) = (text.find(PROBE_B), text.find(PROBE_C)) else {
        return Vec::new();
    };
    let start = b + PROBE_B.len();
    if start > c {
        return Vec::new();
    }
    let between = &text[start..c];
    TURN_MARKERS
        .iter()
        .filter(|marker| between.contains(*marker))
        .map(|marker| marker.to_string())
        .collect()
}

fn apply_template(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
    add_ass: bool,
) -> Result<String, GenerateError> {
    let chat = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| GenerateError::InvalidInput("message contains a NUL byte".to_string()))?;
    model
        .apply_chat_template(template, &chat, add_ass)
        .map_err(|e| GenerateError::Template(e.to_string()))
}

fn render(loaded: &Loaded, messages: &[ChatMessage]) -> Result<String, GenerateError> {
    if messages.is_empty() {
        return Err(GenerateError::InvalidInput("no messages".to_string()));
    }
    apply_template(&loaded.model, &loaded.template, messages, true)
}

fn model_name(model: &LlamaModel, path: &Path) -> String {
    model
        .meta_val_str("general.name")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown model".to_string())
}

/// Tokenises a rendered prompt. Template markup is parsed for special tokens; message contents
/// are not, so a document that contains "<|im_end|><|im_start|>system" stays text and cannot
/// forge a turn. Contents are located in the rendering in order; any not found verbatim (some
/// templates trim) fall back to being tokenised with the markup.
fn tokenize_prompt(model: &LlamaModel, prompt: &str, messages: &[ChatMessage]) -> Vec<LlamaToken> {
    let vocab = model.vocab();
    let mut tokens = Vec::new();
    if vocab.should_add_bos() {
        tokens.push(vocab.bos());
    }
    let mut cursor = 0;
    for message in messages {
        let rest = &prompt[cursor..];
        let content = message.content.as_str();
        let found = rest
            .find(content)
            .map(|at| (at, content.len()))
            .or_else(|| {
                let trimmed = content.trim();
                rest.find(trimmed).map(|at| (at, trimmed.len()))
            });
        let Some((at, len)) = found.filter(|&(_, len)| len > 0) else {
            continue;
        };
        vocab.tokenize_into(&rest.as_bytes()[..at], &mut tokens, false, true);
        vocab.tokenize_into(&rest.as_bytes()[at..at + len], &mut tokens, false, false);
        cursor += at + len;
    }
    vocab.tokenize_into(&prompt.as_bytes()[cursor..], &mut tokens, false, true);
    // Templates that spell out BOS themselves (e.g. "<s>") would otherwise start with two.
    if vocab.should_add_bos() && tokens.len() >= 2 && tokens[1] == vocab.bos() {
        tokens.remove(0);
    }
    tokens
}

fn n_ctx_for(prompt_tokens: usize, max_new_tokens: usize, limit: usize) -> usize {
    let wanted = prompt_tokens.saturating_add(max_new_tokens);
    let rounded = wanted.div_ceil(CTX_GRANULARITY) * CTX_GRANULARITY;
    rounded.min(limit)
}

fn sampler(temperature: f32) -> LlamaSampler {
    if temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    // Seeded from the clock: answers may differ between runs, which is what temperature asks.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    LlamaSampler::chain_simple([
        LlamaSampler::top_k(40),
        LlamaSampler::top_p(0.95, 1),
        LlamaSampler::min_p(0.05, 1),
        LlamaSampler::temp(temperature),
        LlamaSampler::dist(seed),
    ])
}

fn decode_err(e: impl std::fmt::Display) -> GenerateError {
    GenerateError::Decode(e.to_string())
}

/// Why the loop should end early, checked between tokens and prompt chunks.
fn interrupted(cancel: &AtomicBool, shutdown: &AtomicBool) -> bool {
    cancel.load(Ordering::Relaxed) || shutdown.load(Ordering::Relaxed)
}

fn generate<'m>(
    loaded: &'m Loaded,
    messages: &[ChatMessage],
    cancel: &AtomicBool,
    shutdown: &AtomicBool,
    reply: &Sender<GenEvent>,
    reused: &mut Option<Reused<'m>>,
) -> Result<GenStats, GenerateError> {
    let started = Instant::now();
    let cfg = &loaded.cfg;
    let (tokens, limit) = tokenized_prompt(loaded, messages)?;
    let needed = n_ctx_for(tokens.len(), cfg.max_new_tokens, limit);
    if interrupted(cancel, shutdown) {
        return Ok(GenStats::cancelled(tokens.len()));
    }
    let keep = REUSED_CTX.min(limit);
    if needed > keep {
        // Too long for the kept context: one of its own, freed afterwards.
        let (ctx, chunk) = new_context(loaded, needed)?;
        let mut own = Reused {
            ctx,
            chunk,
            n_ctx: needed,
            tokens: Vec::new(),
        };
        return run(loaded, &mut own, &tokens, cancel, shutdown, reply, started);
    }
    let mut kept = match reused.take() {
        Some(kept) => kept,
        None => {
            let (ctx, chunk) = new_context(loaded, keep)?;
            Reused {
                ctx,
                chunk,
                n_ctx: keep,
                tokens: Vec::new(),
            }
        }
    };
    let result = run(loaded, &mut kept, &tokens, cancel, shutdown, reply, started);
    // After an error the cache may hold what `tokens` does not record: start afresh.
    if result.is_ok() {
        *reused = Some(kept);
    }
    result
}

/// Generates from `tokens` in `kv`, decoding only the prompt's tokens after those the
/// cache holds already, and records every token decoded in `kv.tokens`.
fn run(
    loaded: &Loaded,
    kv: &mut Reused<'_>,
    tokens: &[LlamaToken],
    cancel: &AtomicBool,
    shutdown: &AtomicBool,
    reply: &Sender<GenEvent>,
    started: Instant,
) -> Result<GenStats, GenerateError> {
    let cfg = &loaded.cfg;
    let model = &loaded.model;
    let prompt_tokens = tokens.len();
    let n_ctx = kv.n_ctx;
    // At least the prompt's last token is decoded again: its logits start the answer.
    let mut common = kv
        .tokens
        .iter()
        .zip(tokens)
        .take_while(|(a, b)| a == b)
        .count()
        .min(prompt_tokens - 1);
    let removed = kv
        .ctx
        .clear_kv_cache_seq(Some(0), u32::try_from(common).ok(), None)
        .unwrap_or(false);
    if !removed {
        // A cache that cannot drop a tail (some architectures) starts empty.
        kv.ctx.clear_kv_cache();
        common = 0;
    }
    kv.tokens.truncate(common);
    tracing::debug!(
        prompt_tokens,
        reused = common,
        "prompt tokens from the KV cache"
    );
    let mut stats = GenStats::cancelled(prompt_tokens);
    let chunk = kv.chunk;
    let mut batch = LlamaBatch::new(chunk, 1);
    let stop = || interrupted(cancel, shutdown);
    let Some(logits_index) = decode_prompt(
        &mut kv.ctx,
        &mut batch,
        tokens,
        common,
        chunk,
        &mut kv.tokens,
        stop,
    )?
    else {
        return Ok(stats);
    };
    let ctx = &mut kv.ctx;

    let mut sampler = sampler(cfg.temperature);
    let mut text = TextOut::new(loaded.stop_strings.clone(), reply);
    let mut pos = prompt_tokens;
    let mut logits_index = logits_index;
    let vocab = model.vocab();
    let mut piece = Vec::with_capacity(16);

    stats.stop = loop {
        if interrupted(cancel, shutdown) {
            break StopReason::Cancelled;
        }
        // Only the index of a token that asked for logits is valid; anything else trips a C
        // assert in llama.cpp and aborts the whole process.
        let token = sampler.sample(ctx, logits_index);
        if vocab.is_eog(token) {
            break StopReason::Eos;
        }
        stats.generated_tokens += 1;
        piece.clear();
        // special = true so that template markers the GGUF does not flag as EOG still come out
        // as text and are caught by the stop strings below.
        vocab.token_to_piece_into(token, &mut piece, true, None);
        let (sent, hit_stop) = text.push(&piece);
        if !sent {
            break StopReason::Cancelled;
        }
        if hit_stop {
            break StopReason::StopString;
        }
        // The next decode needs a free KV slot at `pos`.
        if stats.generated_tokens >= cfg.max_new_tokens || pos >= n_ctx {
            break StopReason::MaxTokens;
        }
        decode_next(ctx, &mut batch, token, pos)?;
        kv.tokens.push(token);
        pos += 1;
        logits_index = 0;
    };

    if stats.stop != StopReason::StopString {
        text.flush();
    }
    set_timings(&mut stats, started, text.first_token_at);
    Ok(stats)
}

/// The templated, tokenised prompt of `messages`, and the context limit it must fit:
/// an empty prompt, or one with no room for a single new token, is refused.
fn tokenized_prompt(
    loaded: &Loaded,
    messages: &[ChatMessage],
) -> Result<(Vec<LlamaToken>, usize), GenerateError> {
    let cfg = &loaded.cfg;
    let model = &loaded.model;
    let prompt = render(loaded, messages)?;
    let tokens = tokenize_prompt(model, &prompt, messages);
    let prompt_tokens = tokens.len();
    if prompt_tokens == 0 {
        return Err(GenerateError::InvalidInput(
            "the prompt is empty".to_string(),
        ));
    }
    let limit = (cfg.max_context as usize).min(model.n_ctx_train() as usize);
    if prompt_tokens + 1 > limit {
        return Err(GenerateError::PromptTooLong {
            prompt_tokens,
            max_context: u32::try_from(limit).unwrap_or(u32::MAX),
        });
    }
    Ok((tokens, limit))
}

/// Decodes the sampled `token` at `pos`, so that the next sample follows it.
fn decode_next(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    token: LlamaToken,
    pos: usize,
) -> Result<(), GenerateError> {
    batch.clear();
    let pos_i32 = i32::try_from(pos).map_err(decode_err)?;
    batch.add(token, pos_i32, &[0], true).map_err(decode_err)?;
    ctx.decode(batch).map_err(decode_err)?;
    Ok(())
}

/// Fills in the time to the first text and the decode speed after it.
fn set_timings(stats: &mut GenStats, started: Instant, first_token_at: Option<Instant>) {
    let finished = Instant::now();
    // With no text at all (immediate EOG) the "first token" is the end of the answer.
    let first = first_token_at.unwrap_or(finished);
    stats.time_to_first_token = first - started;
    let decode_time = (finished - first).as_secs_f64();
    if stats.generated_tokens > 1 && decode_time > 0.0 {
        stats.tokens_per_second = (stats.generated_tokens - 1) as f64 / decode_time;
    }
}

/// The generated text on its way to the client: token bytes become whole characters
/// ([`Utf8Stream`]), text that may start a stop string is held back ([`StopFilter`]),
/// and the time the first text went out is kept.
struct TextOut<'a> {
    utf8: Utf8Stream,
    stops: StopFilter,
    first_token_at: Option<Instant>,
    reply: &'a Sender<GenEvent>,
}

impl<'a> TextOut<'a> {
    fn new(stop_strings: Vec<String>, reply: &'a Sender<GenEvent>) -> Self {
        TextOut {
            utf8: Utf8Stream::default(),
            stops: StopFilter::new(stop_strings),
            first_token_at: None,
            reply,
        }
    }

    /// Sends text; `false` means the client hung up.
    fn emit(&mut self, text: String) -> bool {
        if text.is_empty() {
            return true;
        }
        self.first_token_at.get_or_insert_with(Instant::now);
        self.reply.send(GenEvent::Token(text)).is_ok()
    }

    /// Takes one token's bytes and sends what is safe to send: whether the client is
    /// still there, and whether a stop string was reached.
    fn push(&mut self, piece: &[u8]) -> (bool, bool) {
        let (text, hit_stop) = self.stops.push(&self.utf8.push(piece));
        (self.emit(text), hit_stop)
    }

    /// Sends the text held back as a possible stop-string prefix, and the bytes of an
    /// unfinished character.
    fn flush(&mut self) {
        let rest = self.stops.push(&self.utf8.finish()).0 + &self.stops.finish();
        let _ = self.emit(rest);
    }
}

/// A context of `n_ctx` tokens, and the prompt chunk size it accepts.
fn new_context(loaded: &Loaded, n_ctx: usize) -> Result<(LlamaContext<'_>, usize), GenerateError> {
    let cfg = &loaded.cfg;
    let n_ctx_u32 = u32::try_from(n_ctx).unwrap_or(u32::MAX);
    let threads = i32::try_from(cfg.threads).unwrap_or(1);
    let chunk = prompt_chunk(
        loaded.model.n_params(),
        cfg.threads,
        MAX_PROMPT_BATCH.min(n_ctx_u32) as usize,
    );
    // n_batch = n_ubatch = the chunk: llama.cpp sizes its compute buffers by them.
    let chunk_u32 = u32::try_from(chunk).unwrap_or(MAX_PROMPT_BATCH);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx_u32))
        .with_n_batch(chunk_u32)
        .with_n_ubatch(chunk_u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let ctx = loaded
        .model
        .new_context(backend()?, params)
        .map_err(|_| GenerateError::Context { n_ctx: n_ctx_u32 })?;
    // llama.cpp may adjust n_batch; a batch larger than it would fail to decode.
    let chunk = chunk.min(ctx.n_batch() as usize).max(1);
    Ok((ctx, chunk))
}

/// The logits of the first token of each of `choices` as the next token after the
/// templated prompt (with the assistant turn opened): how strongly the model would start
/// its answer with each. Nothing is sampled.
fn judge(
    loaded: &Loaded,
    messages: &[ChatMessage],
    choices: &[String],
    shutdown: &AtomicBool,
) -> Result<Vec<f32>, GenerateError> {
    let prompt = render(loaded, messages)?;
    let tokens = tokenize_prompt(&loaded.model, &prompt, messages);
    if tokens.is_empty() {
        return Err(GenerateError::InvalidInput(
            "the prompt is empty".to_string(),
        ));
    }
    let limit = (loaded.cfg.max_context as usize).min(loaded.model.n_ctx_train() as usize);
    if tokens.len() + 1 > limit {
        return Err(GenerateError::PromptTooLong {
            prompt_tokens: tokens.len(),
            max_context: u32::try_from(limit).unwrap_or(u32::MAX),
        });
    }
    let vocab = loaded.model.vocab();
    let ids: Vec<LlamaToken> = choices
        .iter()
        .map(|c| {
            vocab
                .tokenize(c.as_bytes(), false, false)
                .first()
                .copied()
                .ok_or_else(|| GenerateError::InvalidInput(format!("empty choice `{c}`")))
        })
        .collect::<Result<_, _>>()?;
    let (mut ctx, chunk) = new_context(loaded, tokens.len() + 1)?;
    let mut batch = LlamaBatch::new(chunk, 1);
    let stop = || shutdown.load(Ordering::SeqCst);
    let Some(index) = decode_prompt(
        &mut ctx,
        &mut batch,
        &tokens,
        0,
        chunk,
        &mut Vec::new(),
        stop,
    )?
    else {
        return Err(GenerateError::WorkerGone);
    };
    let logits = ctx.get_logits_ith(index);
    ids.iter()
        .map(|t| {
            usize::try_from(t.0)
                .ok()
                .and_then(|i| logits.get(i).copied())
                .ok_or_else(|| GenerateError::Decode(format!("token {} has no logit", t.0)))
        })
        .collect()
}

/// Tokens per prompt decode: as many as fit in [`PROMPT_CHUNK_TARGET`] at the assumed speed.
/// Large chunks add little throughput on CPU, small ones keep a cancel responsive.
fn prompt_chunk(n_params: u64, threads: usize, n_batch: usize) -> usize {
    let seconds_per_token =
        2.0 * n_params as f64 / (ASSUMED_FLOPS_PER_THREAD * threads.max(1) as f64);
    let fit = if seconds_per_token > 0.0 {
        (PROMPT_CHUNK_TARGET.as_secs_f64() / seconds_per_token) as usize
    } else {
        n_batch
    };
    fit.clamp(MIN_PROMPT_CHUNK.min(n_batch), n_batch)
}

/// Feeds the prompt from position `from` on (the cache holds the tokens before it) through
/// the model in chunks of `chunk` tokens, recording each decoded chunk in `decoded`, and
/// returns the batch index of the last prompt token (the only one with logits), or `None` if
/// interrupted.
fn decode_prompt(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    tokens: &[LlamaToken],
    from: usize,
    chunk: usize,
    decoded: &mut Vec<LlamaToken>,
    stop: impl Fn() -> bool,
) -> Result<Option<i32>, GenerateError> {
    let chunk = chunk.max(1);
    let last = tokens.len() - 1;
    for (n, chunk_tokens) in tokens[from..].chunks(chunk).enumerate() {
        if stop() {
            return Ok(None);
        }
        batch.clear();
        for (i, &token) in (from + n * chunk..).zip(chunk_tokens) {
            let pos = i32::try_from(i).map_err(decode_err)?;
            batch.add(token, pos, &[0], i == last).map_err(decode_err)?;
        }
        ctx.decode(batch).map_err(decode_err)?;
        decoded.extend_from_slice(chunk_tokens);
    }
    Ok(Some(batch.n_tokens() - 1))
}

/// Turns token bytes into text without ever splitting a UTF-8 character: a token may end in
/// the middle of a multi-byte character (common for Malay/Chinese/emoji with byte-level BPE),
/// so incomplete trailing bytes wait for the next token.
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete character at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never become valid: replace, as a lossy decoder would.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Holds back text that might be the start of a stop string, and cuts the stream at the first
/// complete one.
struct StopFilter {
    stops: Vec<String>,
    pending: String,
}

impl StopFilter {
    fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
        }
    }

    /// Returns the text that is safe to emit, and whether a stop string was reached (the stop
    /// string and anything after it are dropped).
    fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(at) = self.stops.iter().filter_map(|s| self.pending.find(s)).min() {
            self.pending.truncate(at);
            return (std::mem::take(&mut self.pending), true);
        }
        let hold = self.held_suffix_len();
        let emit_len = self.pending.len() - hold;
        let rest = self.pending.split_off(emit_len);
        (std::mem::replace(&mut self.pending, rest), false)
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of a stop string.
    fn held_suffix_len(&self) -> usize {
        self.pending
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let suffix = &self.pending[i..];
                self.stops
                    .iter()
                    .any(|s| s.len() > suffix.len() && s.starts_with(suffix))
            })
            .map_or(0, |i| self.pending.len() - i)
    }

    fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    //! Pure helpers are tested everywhere. The rest needs the real SmolLM2 GGUF (ChatML
    //! template) installed by `scripts/install_models.py`: those tests are `#[ignore]`d for a
    //! plain `cargo test`, `scripts/test.sh` runs them with `--include-ignored`, and they fail
    //! with the path and the install command when the model is missing.

    use super::*;
    use std::sync::{Mutex, MutexGuard};

    const SMOLLM2: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

    /// The test GGUF: `TANYA_TEST_GGUF`, else `SMOLLM2` under `TANYA_MODELS_DIR`, else under
    /// `~/.cache/tanya/models`. Panics when it is not there.
    fn model_path() -> PathBuf {
        let path = match std::env::var_os("TANYA_TEST_GGUF") {
            Some(file) => PathBuf::from(file),
            None => {
                let dir = std::env::var_os("TANYA_MODELS_DIR")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME")
                            .map(|home| Path::new(&home).join(".cache/tanya/models"))
                    })
                    .expect("neither TANYA_MODELS_DIR nor HOME is set");
                dir.join(SMOLLM2)
            }
        };
        assert!(
            path.is_file(),
            "the test GGUF is missing: no file at {}; install it with \
             `python3 scripts/install_models.py` (into TANYA_MODELS_DIR, default \
             ~/.cache/tanya/models) or point TANYA_TEST_GGUF at a ChatML GGUF",
            path.display()
        );
        path
    }

    /// Timing assertions need the two cores to themselves: model tests run one at a time.
    fn serial() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn start(path: &Path, tweak: impl FnOnce(&mut GeneratorConfig)) -> Generator {
        let mut cfg = GeneratorConfig::new(path);
        tweak(&mut cfg);
        Generator::start(cfg).expect("model loads")
    }

    /// The promised latency of a cancel. Without `OMP_WAIT_POLICY` in the environment at start
    /// libgomp threads spin, and on a busy 2-core box one token can take seconds: the bound is
    /// then relaxed with a note (run the tests with `OMP_WAIT_POLICY=PASSIVE`).
    fn cancel_bound() -> Duration {
        if OMP_POLICY_SET_AT_START.get().copied().unwrap_or(false) {
            Duration::from_secs(1)
        } else {
            eprintln!("note: OMP_WAIT_POLICY unset at start: cancel latency bound relaxed to 10 s");
            Duration::from_secs(10)
        }
    }

    fn no_cancel() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    fn long_answer() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("You are a helpful assistant."),
            ChatMessage::user("Count from 1 to 500, one number per line, without stopping."),
        ]
    }

    /// Collects the stream: all text, then the final event.
    fn collect(rx: &Receiver<GenEvent>) -> (String, Result<GenStats, GenerateError>) {
        let mut text = String::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(GenEvent::Token(piece)) => text.push_str(&piece),
                Ok(GenEvent::Done(stats)) => return (text, Ok(stats)),
                Ok(GenEvent::Error(e)) => return (text, Err(e)),
                Err(e) => panic!("stream ended without Done/Error: {e}"),
            }
        }
    }

    fn first_token(rx: &Receiver<GenEvent>) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(GenEvent::Token(_)) => {}
            other => panic!("expected a token first, got {other:?}"),
        }
    }

    #[test]
    fn utf8_stream_never_splits_characters() {
        let text = "Selamat pagi ☕ 你好 😀!";
        let bytes = text.as_bytes();
        let mut stream = Utf8Stream::default();
        let mut out = String::new();
        for byte in bytes {
            let piece = stream.push(std::slice::from_ref(byte));
            // Every emitted piece is whole characters (it is a String, so this is about not
            // losing or replacing bytes).
            assert!(!piece.contains(char::REPLACEMENT_CHARACTER));
            out.push_str(&piece);
        }
        out.push_str(&stream.finish());
        assert_eq!(out, text);
    }

    #[test]
    fn utf8_stream_replaces_invalid_bytes_and_flushes_incomplete_tail() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(stream.push(&"é".as_bytes()[..1]), "");
        assert_eq!(stream.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_filter_holds_prefixes_and_cuts_at_stop() {
        let mut filter = StopFilter::new(vec!["<|im_end|>".to_string()]);
        assert_eq!(filter.push("Hello <|im"), ("Hello ".to_string(), false));
        assert_eq!(filter.push("_en"), (String::new(), false));
        assert_eq!(filter.push("d|> ignored"), (String::new(), true));

        let mut filter = StopFilter::new(vec!["<|im_end|>".to_string()]);
        assert_eq!(filter.push("a <|i"), ("a ".to_string(), false));
        // Not a stop string after all: the held text comes out.
        assert_eq!(filter.push("dea"), ("<|idea".to_string(), false));
        assert_eq!(filter.push("x<"), ("x".to_string(), false));
        assert_eq!(filter.finish(), "<");
    }

    #[test]
    fn context_is_sized_to_the_prompt() {
        assert_eq!(n_ctx_for(300, 256, 4096), 768);
        assert_eq!(n_ctx_for(256, 0, 4096), 256);
        assert_eq!(n_ctx_for(4000, 256, 4096), 4096);
        assert_eq!(n_ctx_for(1, 1, 100), 100);
    }

    #[test]
    fn missing_model_file_names_the_path() {
        let path = std::env::temp_dir().join("tanya-no-such-model.gguf");
        let err = Generator::start(GeneratorConfig::new(&path)).unwrap_err();
        assert!(
            matches!(err, GenerateError::ModelNotFound { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("tanya-no-such-model.gguf"),
            "{err}"
        );
    }

    #[test]
    fn invalid_config_is_rejected_before_loading() {
        let mut cfg = GeneratorConfig::new("/nonexistent.gguf");
        cfg.threads = 0;
        assert!(matches!(
            Generator::start(cfg),
            Err(GenerateError::InvalidConfig(_))
        ));
    }

    #[test]
    fn a_file_that_is_not_gguf_gives_a_load_error_naming_it() {
        let path = std::env::temp_dir().join(format!("tanya-not-gguf-{}.gguf", std::process::id()));
        std::fs::write(&path, b"this is not a GGUF file").unwrap();
        let result = Generator::start(GeneratorConfig::new(&path));
        std::fs::remove_file(&path).unwrap();
        let err = result.unwrap_err();
        assert!(matches!(err, GenerateError::ModelLoad { .. }), "{err:?}");
        assert!(err.to_string().contains("tanya-not-gguf"), "{err}");
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn loads_counts_and_renders_chatml() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |_| {});
        assert!(!generator.model_name().is_empty());

        assert_eq!(generator.count_tokens("").unwrap(), 0);
        let short = generator.count_tokens("Hello world").unwrap();
        let long = generator
            .count_tokens("Hello world, this is a somewhat longer sentence.")
            .unwrap();
        assert!(short >= 2 && long > short, "{short} {long}");
        // Content is counted as text: a special-token string is several tokens, not one.
        assert!(generator.count_tokens("<|im_end|>").unwrap() > 1);

        let prompt = generator
            .render_prompt(&[
                ChatMessage::system("Be brief."),
                ChatMessage::user("What is Tanya?"),
            ])
            .unwrap();
        assert!(prompt.contains("<|im_start|>"), "{prompt}");
        assert!(prompt.contains("What is Tanya?"), "{prompt}");
        assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt:?}");
        assert!(matches!(
            generator.render_prompt(&[]),
            Err(GenerateError::InvalidInput(_))
        ));
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn streams_tokens_then_done_with_stats() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.max_new_tokens = 32);
        let rx = generator.generate(
            vec![ChatMessage::user("What is the capital of France?")],
            no_cancel(),
        );
        let (text, stats) = collect(&rx);
        let stats = stats.unwrap();
        assert!(!text.trim().is_empty(), "no text");
        assert!(stats.prompt_tokens > 5, "{stats:?}");
        assert!(stats.generated_tokens >= 1, "{stats:?}");
        assert!(stats.time_to_first_token > Duration::ZERO, "{stats:?}");
        assert!(
            matches!(stats.stop, StopReason::Eos | StopReason::MaxTokens),
            "{stats:?}"
        );
        // The stream is finished: the sender is gone.
        assert!(rx.recv().is_err());
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn max_new_tokens_is_respected() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.max_new_tokens = 5);
        let (_, stats) = collect(&generator.generate(long_answer(), no_cancel()));
        let stats = stats.unwrap();
        assert_eq!(stats.generated_tokens, 5, "{stats:?}");
        assert_eq!(stats.stop, StopReason::MaxTokens);
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn temperature_sampling_generates() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| {
            cfg.max_new_tokens = 8;
            cfg.temperature = 0.8;
        });
        let (_, stats) = collect(&generator.generate(long_answer(), no_cancel()));
        assert!(stats.unwrap().generated_tokens >= 1);
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn cancel_stops_within_a_second() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.max_new_tokens = 2000);
        let cancel = no_cancel();
        let rx = generator.generate(long_answer(), Arc::clone(&cancel));
        first_token(&rx);
        let cancelled_at = Instant::now();
        cancel.store(true, Ordering::SeqCst);
        let (_, stats) = collect(&rx);
        let bound = cancel_bound();
        assert!(
            cancelled_at.elapsed() < bound,
            "{:?}",
            cancelled_at.elapsed()
        );
        assert_eq!(stats.unwrap().stop, StopReason::Cancelled);
        // And the worker takes the next request at once.
        assert!(generator.count_tokens("next").unwrap() > 0);
        assert!(cancelled_at.elapsed() < bound);
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn a_request_cancelled_before_it_starts_does_nothing() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |_| {});
        let cancel = Arc::new(AtomicBool::new(true));
        let (text, stats) = collect(&generator.generate(long_answer(), cancel));
        assert!(text.is_empty());
        let stats = stats.unwrap();
        assert_eq!(stats.stop, StopReason::Cancelled);
        assert_eq!(stats.generated_tokens, 0);
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn dropping_the_receiver_frees_the_worker() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.max_new_tokens = 2000);
        let rx = generator.generate(long_answer(), no_cancel());
        first_token(&rx);
        let left_at = Instant::now();
        drop(rx);
        assert!(generator.count_tokens("next").unwrap() > 0);
        assert!(
            left_at.elapsed() < cancel_bound(),
            "{:?}",
            left_at.elapsed()
        );
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn dropping_the_generator_stops_a_running_generation() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.max_new_tokens = 2000);
        let rx = generator.generate(long_answer(), no_cancel());
        first_token(&rx);
        let dropped_at = Instant::now();
        drop(generator);
        assert!(
            dropped_at.elapsed() < cancel_bound(),
            "{:?}",
            dropped_at.elapsed()
        );
        let (_, stats) = collect(&rx);
        assert_eq!(stats.unwrap().stop, StopReason::Cancelled);
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn prompt_longer_than_max_context_is_refused() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.max_context = 64);
        let question = "Tell me about the documents. ".repeat(40);
        let (text, result) =
            collect(&generator.generate(vec![ChatMessage::user(question)], no_cancel()));
        assert!(text.is_empty());
        match result {
            Err(GenerateError::PromptTooLong {
                prompt_tokens,
                max_context,
            }) => {
                assert_eq!(max_context, 64);
                assert!(prompt_tokens > 64, "{prompt_tokens}");
            }
            other => panic!("expected PromptTooLong, got {other:?}"),
        }
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn a_full_context_ends_with_max_tokens() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| {
            cfg.max_context = 48;
            cfg.max_new_tokens = 1000;
        });
        let (_, stats) = collect(&generator.generate(long_answer(), no_cancel()));
        let stats = stats.unwrap();
        assert_eq!(stats.stop, StopReason::MaxTokens, "{stats:?}");
        // Every KV slot after the prompt is used, plus the token sampled from the last one.
        assert_eq!(
            stats.prompt_tokens + stats.generated_tokens,
            49,
            "{stats:?}"
        );
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn unknown_template_name_fails_at_start() {
        let path = model_path();
        let _serial = serial();
        let mut cfg = GeneratorConfig::new(&path);
        cfg.chat_template = Some("no-such-template".to_string());
        let err = Generator::start(cfg).unwrap_err();
        assert!(matches!(err, GenerateError::Template(_)), "{err:?}");
    }

    #[test]
    #[ignore = "needs the SmolLM2 GGUF installed by scripts/install_models.py"]
    fn a_configured_template_overrides_the_models_own() {
        let path = model_path();
        let _serial = serial();
        let generator = start(&path, |cfg| cfg.chat_template = Some("gemma".to_string()));
        let prompt = generator.render_prompt(&[ChatMessage::user("Hi")]).unwrap();
        assert!(prompt.contains("<start_of_turn>user"), "{prompt}");
        assert!(!prompt.contains("<|im_start|>"), "{prompt}");
    }
}
