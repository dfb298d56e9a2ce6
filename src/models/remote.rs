//! Generation by a model server that speaks the OpenAI API (llama.cpp's `llama-server`,
//! vLLM, Ollama): `[generator] backend = "openai"`. The engine sees the same
//! [`super::generate::Generator`] as with the local GGUF: the same chat messages in, the
//! same [`GenEvent`] stream out, so the prompt, the citation check and the abstention are
//! the same for both.
//!
//! An answer is one `POST {url}/chat/completions` with `"stream": true`, read on a thread
//! of its own (blocking `ureq`, as the local worker blocks on llama.cpp): the server-sent
//! events' `data:` lines carry `choices[0].delta.content` pieces until `data: [DONE]`.
//!
//! - **Timeouts**: a connect must succeed within `connect_timeout`, and the server may stay
//!   silent for at most `read_timeout` between two reads (a per-read timeout, so a long
//!   answer that keeps streaming never times out; the server's `:` keep-alive comments
//!   count as life).
//! - **Retries**: a transient failure ([`GenerateError::is_transient`]: unreachable,
//!   silent, 5xx, 429) is retried up to `retries` times with doubling pauses, but only
//!   before the first token: text already shown is never repeated.
//! - **Cancellation**: each answer has its own `ureq::Agent`, and a watcher thread shuts
//!   it down as soon as the cancel flag is set (or the generator is dropped): a read
//!   blocked on a silent server returns at once, the connection is closed, and
//!   llama-server stops generating when it sees it closed. A dropped receiver is noticed
//!   at the next token, as with the local worker.
//! - **Token counts** come from the server's `POST /tokenize` (llama-server, vLLM; next to
//!   `/v1`), and the rendered prompt from llama-server's `POST /apply-template`; a server
//!   without them gets [`estimate_tokens`] and the messages one after another.
//!
//! The API key goes only into the `Authorization` header: it is never logged, and the
//! configuration's `Debug` hides it. Request bodies (they hold document text) are never
//! logged either.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Value};

use super::chat::{ChatMessage, GenEvent, GenStats, StopReason};
use crate::error::GenerateError;

/// How often the watcher looks at the cancel flag, and the step of a pause between
/// retries: the latency of a cancel.
const POLL: Duration = Duration::from_millis(25);

/// The pause before the first retry; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Longest server-sent-event line accepted: an answer's pieces are a few bytes each, so
/// a longer line is a server gone wrong, not one to buffer without end.
const MAX_LINE: u64 = 1 << 20;

/// Longest JSON reply read (a model list, tokens, a judgement): a server gone wrong
/// cannot fill the memory.
const MAX_JSON: u64 = 16 << 20;

/// Longest error body read, and the characters of it kept in an error message.
const MAX_ERROR_BODY: u64 = 64 * 1024;
const ERROR_CHARS: usize = 300;

/// Alternatives asked for per judged token (the OpenAI API allows up to 20).
const TOP_LOGPROBS: usize = 20;

/// Where a model server is and what it is asked for.
#[derive(Clone, PartialEq)]
pub struct RemoteConfig {
    /// The API's base URL, with its version: `http://127.0.0.1:8081/v1`.
    pub url: String,
    /// Sent as `Authorization: Bearer …`; empty = no header.
    pub api_key: String,
    /// The `model` field of each request; empty = the first of the server's `GET /models`.
    pub model: String,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest silence between two reads of a reply (including the wait for its first
    /// byte, i.e. the server's prompt processing).
    pub read_timeout: Duration,
    /// Retries of a transient failure before the first token.
    pub retries: u32,
    /// `max_tokens` of each answer.
    pub max_new_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("url", &self.url)
            .field(
                "api_key",
                &if self.api_key.is_empty() { "" } else { "<set>" },
            )
            .field("model", &self.model)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retries", &self.retries)
            .field("max_new_tokens", &self.max_new_tokens)
            .field("temperature", &self.temperature)
            .finish()
    }
}

impl RemoteConfig {
    /// Defaults for everything but the URL (those of `config/default.toml`).
    pub fn new(url: impl Into<String>) -> Self {
        RemoteConfig {
            url: url.into(),
            api_key: String::new(),
            model: String::new(),
            connect_timeout: Duration::from_millis(2000),
            read_timeout: Duration::from_millis(60_000),
            retries: 2,
            max_new_tokens: 256,
            temperature: 0.0,
        }
    }

    fn validate(&self) -> Result<(), GenerateError> {
        let bad = |why: String| Err(GenerateError::InvalidConfig(why));
        let url = self.url.trim();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => {
                return bad(format!(
                    "generator.url = `{url}` is not an http:// or https:// URL with a host, \
                     like http://127.0.0.1:8081/v1"
                ))
            }
        }
        if self.connect_timeout.is_zero() || self.read_timeout.is_zero() {
            return bad(
                "generator.connect_timeout_ms and read_timeout_ms must be at least 1".into(),
            );
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature must be a finite number >= 0".into());
        }
        Ok(())
    }

    /// An agent with this configuration's timeouts. No proxy from the environment: the
    /// model server is this machine's or the local network's, and a proxy meant for the
    /// internet would only stand in between (or see the documents).
    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .timeout_per_write(Some(self.read_timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("tanya/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent()
    }
}

/// The client of one model server. Dropping it stops the answers it is streaming.
pub(crate) struct Remote {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("config", &self.shared.cfg)
            .finish_non_exhaustive()
    }
}

/// What the client and its answers' threads share.
struct Shared {
    cfg: RemoteConfig,
    /// `url` without a trailing `/`.
    base: String,
    /// `base` without its `/v1`: where llama-server and vLLM serve `/tokenize`.
    root: String,
    /// For the short requests (models, tokens, template, judgements): kept connections.
    agent: ureq::Agent,
    /// The server's first model, once asked (when `model` is empty).
    resolved: OnceLock<String>,
    tokenize: Probe,
    apply_template: Probe,
    /// Set when the [`Remote`] is dropped: its answers stop.
    shutdown: AtomicBool,
}

/// Whether the server has an optional endpoint: unknown until its first use.
#[derive(Default)]
struct Probe(AtomicU8);

impl Probe {
    // 0, the default: not known yet.
    const YES: u8 = 1;
    const NO: u8 = 2;

    fn absent(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::NO
    }

    fn set(&self, present: bool) {
        self.0.store(
            if present { Self::YES } else { Self::NO },
            Ordering::Relaxed,
        );
    }

    /// Records the answer of a call to the endpoint: an HTTP status that says the server
    /// does not have it (or not in this form) marks it absent and gives `None`; any other
    /// failure is an error.
    fn record<T>(
        &self,
        what: &str,
        result: Result<T, GenerateError>,
    ) -> Result<Option<T>, GenerateError> {
        match result {
            Ok(v) => {
                self.set(true);
                Ok(Some(v))
            }
            Err(GenerateError::ServerStatus { status, body }) if is_unsupported(status) => {
                if self.0.swap(Self::NO, Ordering::Relaxed) != Self::NO {
                    tracing::warn!(status, reason = %body, "the model server has no usable {what}");
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// Statuses with which a server says it has no such endpoint or does not take this
/// request form (vLLM validates with 422) — not that it failed.
fn is_unsupported(status: u16) -> bool {
    matches!(status, 400 | 404 | 405 | 422 | 501)
}

/// Tokens of `text` where the server cannot count them: one per 3 characters, rounded up.
/// BPE tokenizers average 3.5–4.5 characters per token on English and Malay prose, so this
/// overestimates, and a prompt it passes fits (a few passages fewer than an exact count
/// would allow).
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(3)
}

impl Remote {
    /// A client for `cfg`; contacts nothing yet.
    pub(crate) fn new(cfg: RemoteConfig) -> Result<Remote, GenerateError> {
        cfg.validate()?;
        let base = cfg.url.trim().trim_end_matches('/').to_string();
        let root = base.strip_suffix("/v1").unwrap_or(&base).to_string();
        tracing::info!(url = %base, model = %cfg.model, "generation by a model server");
        Ok(Remote {
            shared: Arc::new(Shared {
                agent: cfg.agent(),
                cfg,
                base,
                root,
                resolved: OnceLock::new(),
                tokenize: Probe::default(),
                apply_template: Probe::default(),
                shutdown: AtomicBool::new(false),
            }),
        })
    }

    /// The model asked for: the configured one, or the server's first once it was asked.
    pub(crate) fn model_name(&self) -> String {
        let s = &self.shared;
        if !s.cfg.model.is_empty() {
            return s.cfg.model.clone();
        }
        match s.resolved.get() {
            Some(name) => name.clone(),
            None => format!("the first model of {}", s.base),
        }
    }

    /// Tokens of `text` as message content: the server's count (`/tokenize`, special-token
    /// text counted as text), or [`estimate_tokens`] when it cannot count.
    pub(crate) fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        let s = &self.shared;
        if text.is_empty() {
            return Ok(0);
        }
        if s.tokenize.absent() {
            return Ok(estimate_tokens(text));
        }
        let tokens = s
            .tokenize
            .record("/tokenize", s.tokenize_text(text, false))?;
        Ok(tokens.map_or_else(|| estimate_tokens(text), |t| t.len()))
    }

    /// The prompt the server's chat template makes of `messages` (llama-server's
    /// `/apply-template`), or, from a server without that, each message's role and
    /// content one after another: only ever used to count tokens.
    pub(crate) fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        let s = &self.shared;
        if messages.is_empty() {
            return Err(GenerateError::InvalidInput("no messages".to_string()));
        }
        if !s.apply_template.absent() {
            let url = format!("{}/apply-template", s.root);
            let body = json!({ "messages": messages_json(messages) });
            let rendered = s.with_retries(&|| false, || s.post_json(&s.agent, &url, &body));
            let prompt = s.apply_template.record("/apply-template", rendered)?;
            if let Some(v) = prompt {
                return v["prompt"].as_str().map(str::to_string).ok_or_else(|| {
                    GenerateError::ServerProtocol("/apply-template returned no `prompt`".into())
                });
            }
        }
        let mut text = String::new();
        for m in messages {
            text.push_str(m.role.as_str());
            text.push_str(": ");
            text.push_str(&m.content);
            text.push_str("\n\n");
        }
        text.push_str("assistant: ");
        Ok(text)
    }

    /// Streams the server's answer to `messages` on a thread of its own.
    pub(crate) fn generate(
        &self,
        messages: Vec<ChatMessage>,
        cancel: Arc<AtomicBool>,
    ) -> Receiver<GenEvent> {
        let (reply, rx) = crossbeam_channel::unbounded();
        let shared = Arc::clone(&self.shared);
        let on_thread = reply.clone();
        let spawned = std::thread::Builder::new()
            .name("tanya-llm-remote".to_string())
            .spawn(move || {
                let result = stream_answer(&shared, &messages, &cancel, &on_thread);
                let _ = on_thread.send(GenEvent::last(result));
            });
        if let Err(e) = spawned {
            let _ = reply.send(GenEvent::Error(GenerateError::Backend(format!(
                "cannot spawn a thread for the model server: {e}"
            ))));
        }
        rx
    }

    /// The log-probability of each choice's first token as the first token of the reply
    /// to `messages` (one token generated, with its top alternatives). Differences
    /// between choices are those of the local backend's logits (the softmax's normaliser
    /// cancels out); a choice outside the server's top [`TOP_LOGPROBS`] gets the lowest
    /// listed value, an upper bound of its own. A server that returns no log-probabilities
    /// (Ollama) cannot judge: the LLM reranker then needs the local backend.
    pub(crate) fn judge(
        &self,
        messages: Vec<ChatMessage>,
        choices: Vec<String>,
    ) -> Result<Vec<f32>, GenerateError> {
        let s = &self.shared;
        if choices.is_empty() {
            return Ok(Vec::new());
        }
        let never = || false;
        let model = s.model(&never)?;
        let firsts = choices
            .iter()
            .map(|c| s.first_token(c))
            .collect::<Result<Vec<_>, _>>()?;
        let body = json!({
            "model": model,
            "messages": messages_json(&messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": true,
            "top_logprobs": TOP_LOGPROBS,
            "stream": false,
        });
        let url = format!("{}/chat/completions", s.base);
        let v = s.with_retries(&never, || s.post_json(&s.agent, &url, &body))?;
        let top = v
            .pointer("/choices/0/logprobs/content/0/top_logprobs")
            .and_then(Value::as_array)
            .filter(|top| !top.is_empty())
            .ok_or_else(|| {
                GenerateError::ServerProtocol(
                    "the reply has no `top_logprobs`: the LLM reranker ([rerank] llm) needs a \
                     server that returns them (llama-server, vLLM) or [generator] backend = \
                     \"local\""
                        .into(),
                )
            })?;
        judge_scores(&firsts, top)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // The watchers of running answers see it within POLL and close their connections.
        self.shared.shutdown.store(true, Ordering::SeqCst);
    }
}

/// A choice's first token as the server tokenises it.
#[derive(Debug, Clone, PartialEq)]
struct FirstToken {
    id: Option<i64>,
    piece: String,
}

impl Shared {
    /// `request` with the API key, when there is one.
    fn authorised<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if self.cfg.api_key.is_empty() {
            request
        } else {
            request.header("Authorization", format!("Bearer {}", self.cfg.api_key))
        }
    }

    /// `POST url` with a JSON body; the JSON reply of a 2xx status.
    fn post_json(
        &self,
        agent: &ureq::Agent,
        url: &str,
        body: &Value,
    ) -> Result<Value, GenerateError> {
        let response = self
            .authorised(agent.post(url))
            .header("Accept", "application/json")
            .send_json(body);
        self.read_json(self.checked(response)?)
    }

    /// `GET url`; the JSON reply of a 2xx status.
    fn get_json(&self, url: &str) -> Result<Value, GenerateError> {
        let response = self
            .authorised(self.agent.get(url))
            .header("Accept", "application/json")
            .call();
        self.read_json(self.checked(response)?)
    }

    /// The response of a 2xx status; any other is [`GenerateError::ServerStatus`] with
    /// the server's message.
    fn checked(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, GenerateError> {
        let response = response.map_err(|e| self.failure(e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let mut text = String::new();
        let _ = response
            .into_body()
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_string(&mut text);
        Err(GenerateError::ServerStatus {
            status,
            body: error_message(&text),
        })
    }

    /// The JSON body of a reply.
    fn read_json(
        &self,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<Value, GenerateError> {
        let mut text = String::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_JSON)
            .read_to_string(&mut text)
            .map_err(|e| self.failure(ureq::Error::from(e)))?;
        serde_json::from_str(&text)
            .map_err(|e| GenerateError::ServerProtocol(format!("a reply is not JSON: {e}")))
    }

    /// What a failed request means for Tanya.
    fn failure(&self, e: ureq::Error) -> GenerateError {
        classify(e, &self.base, self.cfg.read_timeout)
    }

    /// `call` again after a transient failure, up to `retries` times, with doubling
    /// pauses (cut short when `stop` says so).
    fn with_retries<T>(
        &self,
        stop: &dyn Fn() -> bool,
        mut call: impl FnMut() -> Result<T, GenerateError>,
    ) -> Result<T, GenerateError> {
        let mut attempt = 0;
        loop {
            match call() {
                Err(e) if e.is_transient() && attempt < self.cfg.retries && !stop() => {
                    tracing::warn!(attempt = attempt + 1, error = %e, "model server: retrying");
                    if !pause(backoff(attempt), stop) {
                        return Err(e);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The `model` to send: the configured one, or the first the server lists.
    fn model(&self, stop: &dyn Fn() -> bool) -> Result<String, GenerateError> {
        if !self.cfg.model.is_empty() {
            return Ok(self.cfg.model.clone());
        }
        if let Some(name) = self.resolved.get() {
            return Ok(name.clone());
        }
        let url = format!("{}/models", self.base);
        let list = self.with_retries(stop, || self.get_json(&url))?;
        let name = list
            .pointer("/data/0/id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                GenerateError::ServerProtocol(
                    "GET /models lists no model: set generator.remote_model".into(),
                )
            })?;
        tracing::info!(model = name, "the model server's first model");
        Ok(self.resolved.get_or_init(|| name.to_string()).clone())
    }

    /// `POST /tokenize`: the tokens of `text`, special-token text as text; with their
    /// pieces when `with_pieces`. Fields for llama-server (`content`) and vLLM (`prompt`)
    /// both: each ignores the other's.
    fn tokenize_text(&self, text: &str, with_pieces: bool) -> Result<Vec<Value>, GenerateError> {
        let url = format!("{}/tokenize", self.root);
        let body = json!({
            "content": text,
            "prompt": text,
            "add_special": false,
            "add_special_tokens": false,
            "parse_special": false,
            "with_pieces": with_pieces,
        });
        let v = self.with_retries(&|| false, || self.post_json(&self.agent, &url, &body))?;
        v["tokens"]
            .as_array()
            .cloned()
            .ok_or_else(|| GenerateError::ServerProtocol("/tokenize returned no `tokens`".into()))
    }

    /// The first token of `choice` (its id and piece), or the choice itself where the
    /// server cannot tokenise.
    fn first_token(&self, choice: &str) -> Result<FirstToken, GenerateError> {
        let whole = || FirstToken {
            id: None,
            piece: choice.to_string(),
        };
        if choice.is_empty() {
            return Err(GenerateError::InvalidInput("an empty choice".into()));
        }
        if self.tokenize.absent() {
            return Ok(whole());
        }
        let Some(tokens) = self
            .tokenize
            .record("/tokenize", self.tokenize_text(choice, true))?
        else {
            return Ok(whole());
        };
        let first = tokens
            .first()
            .ok_or_else(|| GenerateError::InvalidInput(format!("`{choice}` has no tokens")))?;
        let piece = match &first["piece"] {
            Value::String(s) => s.clone(),
            // Bytes that are not UTF-8 on their own.
            Value::Array(bytes) => String::from_utf8_lossy(
                &bytes
                    .iter()
                    .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Vec<u8>>(),
            )
            .into_owned(),
            _ => choice.to_string(),
        };
        Ok(FirstToken {
            id: first["id"].as_i64().or_else(|| first.as_i64()),
            piece,
        })
    }
}

/// The OpenAI form of chat messages.
fn messages_json(messages: &[ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect(),
    )
}

/// The message of an error body: the OpenAI form's `error.message` (or `error`, or
/// `message`), else the text itself, on one line and shortened.
fn error_message(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let message = v.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
    });
    let text = message
        .unwrap_or(body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() <= ERROR_CHARS {
        return if text.is_empty() {
            "(no message)".into()
        } else {
            text
        };
    }
    let mut cut: String = text.chars().take(ERROR_CHARS).collect();
    cut.push('…');
    cut
}

/// What a failed request means: no connection, silence, or a connection that ended.
fn classify(e: ureq::Error, url: &str, read_timeout: Duration) -> GenerateError {
    use std::io::ErrorKind;
    use ureq::Timeout;
    let unreachable = |reason: String| GenerateError::ServerUnreachable {
        url: url.to_string(),
        reason,
    };
    match e {
        ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => {
            unreachable("no connection within generator.connect_timeout_ms".into())
        }
        ureq::Error::Timeout(_) => GenerateError::Timeout {
            waited_ms: u64::try_from(read_timeout.as_millis()).unwrap_or(u64::MAX),
        },
        ureq::Error::HostNotFound => unreachable("unknown host".into()),
        ureq::Error::ConnectionFailed => unreachable("the connection failed".into()),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::NetworkDown
            | ErrorKind::AddrNotAvailable => unreachable(io.to_string()),
            ErrorKind::TimedOut | ErrorKind::WouldBlock => GenerateError::Timeout {
                waited_ms: u64::try_from(read_timeout.as_millis()).unwrap_or(u64::MAX),
            },
            _ => GenerateError::ServerClosed(io.to_string()),
        },
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            unreachable(format!("TLS: {e}"))
        }
        ureq::Error::BadUri(uri) => GenerateError::InvalidConfig(format!("generator.url: {uri}")),
        ureq::Error::Protocol(p) => GenerateError::ServerClosed(p.to_string()),
        other => GenerateError::ServerProtocol(other.to_string()),
    }
}

/// The pause before retry number `attempt + 1`.
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF)
}

/// Sleeps `d` in steps of [`POLL`]; `false` when `stop` cut it short.
fn pause(d: Duration, stop: &dyn Fn() -> bool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(POLL.min(until - now));
    }
}

/// Scores of each choice from the first generated token's `top_logprobs`
/// (`[{token, logprob, id?}]`): matched by id where both have one, else by text.
fn judge_scores(firsts: &[FirstToken], top: &[Value]) -> Result<Vec<f32>, GenerateError> {
    let listed: Vec<(Option<i64>, &str, f64)> = top
        .iter()
        .filter_map(|t| {
            let logprob = t["logprob"].as_f64()?;
            Some((t["id"].as_i64(), t["token"].as_str().unwrap_or(""), logprob))
        })
        .collect();
    let floor = listed
        .iter()
        .map(|l| l.2)
        .min_by(f64::total_cmp)
        .ok_or_else(|| GenerateError::ServerProtocol("`top_logprobs` holds no `logprob`".into()))?;
    Ok(firsts
        .iter()
        .map(|first| {
            listed
                .iter()
                .find(|(id, token, _)| match (first.id, id) {
                    (Some(a), Some(b)) => a == *b,
                    _ => *token == first.piece,
                })
                .map_or(floor, |l| l.2) as f32
        })
        .collect())
}

/// Joins the lines of server-sent events into their `data`: `data:` lines accumulate
/// (several are joined with a line break), a blank line ends the event, `:` lines are
/// comments (llama-server's keep-alive pings), other fields (`event:`, `id:`, `retry:`)
/// carry nothing the OpenAI stream needs.
#[derive(Debug, Default)]
struct SseParser {
    data: Option<String>,
}

impl SseParser {
    /// Takes one line, with or without its `\n` or `\r\n`; returns the data of the event
    /// it ends.
    fn push_line(&mut self, line: &str) -> Option<String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return self.data.take();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
        None
    }

    /// The data of an event the stream ended in without a blank line.
    fn finish(&mut self) -> Option<String> {
        self.data.take()
    }
}

/// One event of a streamed chat completion.
#[derive(Debug, PartialEq)]
enum StreamEvent {
    /// `data: [DONE]`.
    Done,
    Chunk {
        /// `choices[0].delta.content`, when not empty.
        content: Option<String>,
        /// `choices[0].finish_reason`.
        finish: Option<StopReason>,
        /// `usage`: prompt and completion tokens.
        usage: Option<(usize, usize)>,
    },
}

/// Reads one event's data: `[DONE]`, a `chat.completion.chunk`, or an `error` object
/// (a failure the server reports mid-stream).
fn parse_event(data: &str) -> Result<StreamEvent, GenerateError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(StreamEvent::Done);
    }
    let v: Value = serde_json::from_str(data)
        .map_err(|e| GenerateError::ServerProtocol(format!("a stream event is not JSON: {e}")))?;
    if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
        let status = error["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c))
            .unwrap_or(500);
        return Err(GenerateError::ServerStatus {
            status,
            body: error_message(&json!({ "error": error }).to_string()),
        });
    }
    let choice = &v["choices"][0];
    let content = choice["delta"]["content"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let finish = choice["finish_reason"].as_str().map(|r| match r {
        "length" => StopReason::MaxTokens,
        _ => StopReason::Eos,
    });
    let count = |key: &str| {
        v["usage"][key]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
    };
    let usage = count("prompt_tokens").zip(count("completion_tokens"));
    Ok(StreamEvent::Chunk {
        content,
        finish,
        usage,
    })
}

/// The answer's text on its way to the receiver, and what is measured of it.
struct Streamed<'a> {
    reply: &'a Sender<GenEvent>,
    started: Instant,
    first_at: Option<Instant>,
    pieces: usize,
    finish: Option<StopReason>,
    usage: Option<(usize, usize)>,
}

impl<'a> Streamed<'a> {
    fn new(reply: &'a Sender<GenEvent>) -> Self {
        Streamed {
            reply,
            started: Instant::now(),
            first_at: None,
            pieces: 0,
            finish: None,
            usage: None,
        }
    }

    /// Sends a piece of text; `false` when the receiver is gone.
    fn send(&mut self, text: String) -> bool {
        self.first_at.get_or_insert_with(Instant::now);
        self.pieces += 1;
        self.reply.send(GenEvent::Token(text)).is_ok()
    }

    fn stats(&self, stop: StopReason) -> GenStats {
        let finished = Instant::now();
        let first = self.first_at.unwrap_or(finished);
        let (prompt_tokens, generated_tokens) = self.usage.unwrap_or((0, self.pieces));
        let decode = (finished - first).as_secs_f64();
        GenStats {
            prompt_tokens,
            generated_tokens,
            time_to_first_token: first - self.started,
            tokens_per_second: if generated_tokens > 1 && decode > 0.0 {
                (generated_tokens - 1) as f64 / decode
            } else {
                0.0
            },
            stop,
        }
    }
}

/// Shuts an answer's agent down when its cancel flag is set or its client is dropped,
/// which interrupts a read blocked on the server; ends when dropped.
struct Watcher {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    fn start(agent: ureq::Agent, cancel: Arc<AtomicBool>, shared: Arc<Shared>) -> Watcher {
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("tanya-llm-watch".to_string())
            .spawn(move || loop {
                if finished.load(Ordering::Relaxed) {
                    return;
                }
                if cancel.load(Ordering::Relaxed) || shared.shutdown.load(Ordering::Relaxed) {
                    agent.shutdown();
                    return;
                }
                std::thread::sleep(POLL);
            })
            // Without a watcher a cancel waits for the next token or the read timeout;
            // the answer itself still works.
            .map_err(|e| tracing::warn!(error = %e, "no watcher thread for a cancel"))
            .ok();
        Watcher { done, thread }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One answer: the model's name, then the streamed request, sent again after a
/// transient failure as long as no text was sent.
fn stream_answer(
    shared: &Arc<Shared>,
    messages: &[ChatMessage],
    cancel: &Arc<AtomicBool>,
    reply: &Sender<GenEvent>,
) -> Result<GenStats, GenerateError> {
    let mut out = Streamed::new(reply);
    let stop = || cancel.load(Ordering::Relaxed) || shared.shutdown.load(Ordering::Relaxed);
    if stop() {
        return Ok(out.stats(StopReason::Cancelled));
    }
    // Its own agent, so that the watcher's shutdown closes this answer's connection only.
    let agent = shared.cfg.agent();
    let _watcher = Watcher::start(agent.clone(), Arc::clone(cancel), Arc::clone(shared));
    let model = match shared.model(&stop) {
        Err(_) if stop() => return Ok(out.stats(StopReason::Cancelled)),
        other => other?,
    };
    let body = json!({
        "model": model,
        "messages": messages_json(messages),
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": shared.cfg.max_new_tokens,
        "temperature": shared.cfg.temperature,
    });
    let mut attempt = 0;
    loop {
        match read_stream(shared, &agent, &body, &mut out, &stop) {
            Ok(stop_reason) => return Ok(out.stats(stop_reason)),
            // The watcher's shutdown surfaces as a failed read.
            Err(_) if stop() => return Ok(out.stats(StopReason::Cancelled)),
            Err(e) if out.pieces == 0 && e.is_transient() && attempt < shared.cfg.retries => {
                tracing::warn!(attempt = attempt + 1, error = %e, "model server: retrying");
                if !pause(backoff(attempt), &stop) {
                    return Ok(out.stats(StopReason::Cancelled));
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends the request and passes the streamed text on until `[DONE]`; returns why it
/// stopped. `stop` is looked at between events too, so that a cancel holds even
/// without the watcher.
fn read_stream(
    shared: &Shared,
    agent: &ureq::Agent,
    body: &Value,
    out: &mut Streamed<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<StopReason, GenerateError> {
    let url = format!("{}/chat/completions", shared.base);
    let response = shared
        .authorised(agent.post(&url))
        .header("Accept", "text/event-stream")
        .send_json(body);
    let response = shared.checked(response)?;
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut sse = SseParser::default();
    let mut line = Vec::new();
    loop {
        if stop() {
            return Ok(StopReason::Cancelled);
        }
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| shared.failure(ureq::Error::from(e)))?;
        let data = if n == 0 {
            match sse.finish() {
                Some(data) => data,
                // A stream that said how it finished but not `[DONE]` is whole.
                None => {
                    return out.finish.ok_or_else(|| {
                        GenerateError::ServerClosed(
                            "the stream ended without `data: [DONE]`".into(),
                        )
                    })
                }
            }
        } else {
            if !line.ends_with(b"\n") && n as u64 == MAX_LINE {
                return Err(GenerateError::ServerProtocol(format!(
                    "a stream line is longer than {MAX_LINE} bytes"
                )));
            }
            let text = std::str::from_utf8(&line)
                .map_err(|_| GenerateError::ServerProtocol("a stream line is not UTF-8".into()))?;
            match sse.push_line(text) {
                Some(data) => data,
                None => continue,
            }
        };
        match parse_event(&data)? {
            StreamEvent::Done => return Ok(out.finish.unwrap_or(StopReason::Eos)),
            StreamEvent::Chunk {
                content,
                finish,
                usage,
            } => {
                if let Some(text) = content {
                    if !out.send(text) {
                        // Dropping the reader closes the connection: the server stops.
                        return Ok(StopReason::Cancelled);
                    }
                }
                if finish.is_some() {
                    out.finish = finish;
                }
                if usage.is_some() {
                    out.usage = usage;
                }
            }
        }
        if n == 0 {
            return out.finish.ok_or_else(|| {
                GenerateError::ServerClosed("the stream ended without `data: [DONE]`".into())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The parts that need no server: event parsing, errors, pauses, judgement matching,
    //! configuration. The client against a real llama-server is tested in
    //! tests/model_server.rs.

    use super::*;

    fn events(stream: &str) -> Vec<String> {
        let mut sse = SseParser::default();
        let mut out: Vec<String> = stream
            .split_inclusive('\n')
            .filter_map(|line| sse.push_line(line))
            .collect();
        out.extend(sse.finish());
        out
    }

    #[test]
    fn sse_events_are_joined_from_data_lines() {
        let stream = "data: {\"a\":1}\n\n: ping\n\ndata: [DONE]\n\n";
        assert_eq!(events(stream), ["{\"a\":1}", "[DONE]"]);
        // CRLF line ends, no space after the colon, fields other than data, and a data
        // spread over two lines.
        let stream = "event: message\r\nid: 7\r\ndata:one\r\ndata: two\r\n\r\nretry: 10\r\n\r\n";
        assert_eq!(events(stream), ["one\ntwo"]);
        // A last event without its blank line.
        assert_eq!(events("data: [DONE]"), ["[DONE]"]);
        // Comments alone make no event.
        assert!(events(":\n\n:\n\n").is_empty());
    }

    #[test]
    fn sse_lines_split_across_reads_make_the_same_events() {
        // The reader hands whole lines; a line cut by a read still arrives whole because
        // `read_until` waits for its end. What matters here: an event whose lines arrive
        // one by one is returned once, at its blank line.
        let mut sse = SseParser::default();
        assert_eq!(sse.push_line("data: {\"choices\":[]}\n"), None);
        assert_eq!(sse.push_line("\n"), Some("{\"choices\":[]}".to_string()));
        assert_eq!(sse.push_line("\n"), None, "a second blank line is no event");
    }

    #[test]
    fn chunks_carry_text_finish_and_usage() {
        let chunk = r#"{"choices":[{"index":0,"delta":{"content":"Hari [1]"},"finish_reason":null}],"object":"chat.completion.chunk"}"#;
        assert_eq!(
            parse_event(chunk).unwrap(),
            StreamEvent::Chunk {
                content: Some("Hari [1]".into()),
                finish: None,
                usage: None
            }
        );
        let role = r#"{"choices":[{"delta":{"role":"assistant","content":null}}]}"#;
        assert_eq!(
            parse_event(role).unwrap(),
            StreamEvent::Chunk {
                content: None,
                finish: None,
                usage: None
            }
        );
        let last = r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":31,"completion_tokens":8,"total_tokens":39}}"#;
        assert_eq!(
            parse_event(last).unwrap(),
            StreamEvent::Chunk {
                content: None,
                finish: Some(StopReason::MaxTokens),
                usage: Some((31, 8))
            }
        );
        let stop = r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}"#;
        assert!(matches!(
            parse_event(stop).unwrap(),
            StreamEvent::Chunk {
                finish: Some(StopReason::Eos),
                ..
            }
        ));
        // Ollama's usage chunk has no choices at all.
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        assert!(matches!(
            parse_event(usage).unwrap(),
            StreamEvent::Chunk {
                usage: Some((5, 2)),
                ..
            }
        ));
        assert_eq!(parse_event(" [DONE] ").unwrap(), StreamEvent::Done);
    }

    #[test]
    fn errors_in_the_stream_and_bad_events_are_typed() {
        let error = r#"{"error":{"code":500,"message":"the model crashed","type":"server_error"}}"#;
        match parse_event(error) {
            Err(GenerateError::ServerStatus { status, body }) => {
                assert_eq!(status, 500);
                assert_eq!(body, "the model crashed");
            }
            other => panic!("{other:?}"),
        }
        let no_code = r#"{"error":{"message":"context full"}}"#;
        assert!(matches!(
            parse_event(no_code),
            Err(GenerateError::ServerStatus { status: 500, .. })
        ));
        assert!(matches!(
            parse_event("{not json"),
            Err(GenerateError::ServerProtocol(_))
        ));
    }

    #[test]
    fn error_bodies_become_short_messages() {
        assert_eq!(
            error_message(
                r#"{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}"#
            ),
            "Invalid API Key"
        );
        assert_eq!(
            error_message(r#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(error_message("Not Found\n\n  here"), "Not Found here");
        assert_eq!(error_message(""), "(no message)");
        let long = error_message(&"word ".repeat(200));
        assert_eq!(long.chars().count(), ERROR_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn failures_are_classified() {
        let url = "http://127.0.0.1:9/v1";
        let t = Duration::from_millis(1500);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = classify(ureq::Error::Io(refused), url, t);
        assert!(
            matches!(&e, GenerateError::ServerUnreachable { url: u, .. } if u == url),
            "{e:?}"
        );
        assert!(e.is_transient() && e.is_server_failure() && !e.is_user_error());
        let e = classify(ureq::Error::Timeout(ureq::Timeout::PerRead), url, t);
        assert!(
            matches!(e, GenerateError::Timeout { waited_ms: 1500 }),
            "{e:?}"
        );
        assert!(e.to_string().contains("1500 ms"), "{e}");
        let e = classify(ureq::Error::Timeout(ureq::Timeout::Connect), url, t);
        assert!(
            matches!(e, GenerateError::ServerUnreachable { .. }),
            "{e:?}"
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = classify(ureq::Error::Io(reset), url, t);
        assert!(matches!(e, GenerateError::ServerClosed(_)), "{e:?}");

        let status = |status| GenerateError::ServerStatus {
            status,
            body: String::new(),
        };
        assert!(status(503).is_transient() && !status(503).is_user_error());
        assert!(!status(400).is_transient());
        assert!(status(401).is_user_error() && status(404).is_user_error());
        assert!(status(401).is_server_failure());
        assert!(!GenerateError::InvalidInput(String::new()).is_server_failure());
    }

    #[test]
    fn pauses_double_and_stop_early() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
        let started = Instant::now();
        assert!(!pause(Duration::from_secs(5), &|| true));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(pause(Duration::from_millis(30), &|| false));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn judged_choices_are_matched_by_id_or_text() {
        let top: Vec<Value> = serde_json::from_str(
            r#"[{"id":9,"token":"Yes","logprob":-0.2},{"id":4,"token":"No","logprob":-1.9},
                {"id":11,"token":"yes","logprob":-3.0}]"#,
        )
        .unwrap();
        let first = |id, piece: &str| FirstToken {
            id,
            piece: piece.into(),
        };
        let scores = judge_scores(
            &[
                first(Some(9), "Yes"),
                first(None, "yes"),
                first(Some(4), "ignored"),
                first(Some(99), "no"),
            ],
            &top,
        )
        .unwrap();
        // An unlisted choice gets the lowest listed log-probability.
        assert_eq!(scores, vec![-0.2, -3.0, -1.9, -3.0]);
        assert!(judge_scores(&[first(None, "Yes")], &[]).is_err());
    }

    #[test]
    fn token_estimates_round_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("ab"), 1);
        assert_eq!(estimate_tokens("abcd"), 2);
        // Characters, not bytes.
        assert_eq!(estimate_tokens("cuti ☕"), 2);
    }

    #[test]
    fn configurations_are_checked_and_the_key_is_never_shown() {
        for bad in [
            "",
            "127.0.0.1:8081/v1",
            "ftp://host/v1",
            "http://",
            "http:///v1",
        ] {
            assert!(
                matches!(
                    Remote::new(RemoteConfig::new(bad)),
                    Err(GenerateError::InvalidConfig(_))
                ),
                "{bad:?}"
            );
        }
        let mut cfg = RemoteConfig::new("http://127.0.0.1:8081/v1/");
        cfg.read_timeout = Duration::ZERO;
        assert!(Remote::new(cfg.clone()).is_err());
        cfg.read_timeout = Duration::from_secs(1);
        cfg.api_key = "sk-secret-123".into();
        let remote = Remote::new(cfg.clone()).unwrap();
        assert!(!format!("{remote:?}").contains("sk-secret-123"));
        assert!(format!("{cfg:?}").contains("<set>"));
        assert_eq!(remote.shared.base, "http://127.0.0.1:8081/v1");
        assert_eq!(remote.shared.root, "http://127.0.0.1:8081");
        assert_eq!(
            remote.model_name(),
            "the first model of http://127.0.0.1:8081/v1"
        );
        cfg.model = "smollm2".into();
        assert_eq!(Remote::new(cfg).unwrap().model_name(), "smollm2");
    }

    #[test]
    fn without_a_server_a_prompt_is_rendered_for_counting() {
        // A port just given back: nothing listens there. The render and the count fall
        // back only for "no such endpoint", so a refused connection is an error, not a
        // silent estimate.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = RemoteConfig::new(format!("http://127.0.0.1:{port}/v1"));
        cfg.retries = 0;
        let remote = Remote::new(cfg).unwrap();
        let messages = [ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
        assert!(matches!(
            remote.render_prompt(&messages),
            Err(GenerateError::ServerUnreachable { .. })
        ));
        assert!(matches!(
            remote.count_tokens("hello"),
            Err(GenerateError::ServerUnreachable { .. })
        ));
        remote.shared.apply_template.set(false);
        remote.shared.tokenize.set(false);
        assert_eq!(
            remote.render_prompt(&messages).unwrap(),
            "system: Be brief.\n\nuser: Hi\n\nassistant: "
        );
        assert_eq!(remote.count_tokens("hello").unwrap(), 2);
        assert!(matches!(
            remote.render_prompt(&[]),
            Err(GenerateError::InvalidInput(_))
        ));
    }
}
