//! The vocabulary of generation that every backend shares: chat messages in, a stream of
//! [`GenEvent`]s out. The local llama.cpp worker (`generate`) and the model-server client
//! (`remote`) both speak it, so the engine cannot tell them apart.

use std::time::Duration;

use crate::error::GenerateError;

/// Who speaks in a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name chat templates expect.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What a generation stream carries.
#[derive(Debug)]
pub enum GenEvent {
    /// Detokenised text; never splits a UTF-8 character across events.
    Token(String),
    /// The last event of a successful (or cancelled) generation.
    Done(GenStats),
    /// The last event of a failed generation.
    Error(GenerateError),
}

impl GenEvent {
    /// The last event of a generation that ended with `result` (logged: stats at debug,
    /// a failure as a warning).
    pub fn last(result: Result<GenStats, GenerateError>) -> Self {
        match result {
            Ok(stats) => {
                tracing::debug!(?stats, "generation finished");
                GenEvent::Done(stats)
            }
            Err(e) => {
                tracing::warn!(error = %e, "generation failed");
                GenEvent::Error(e)
            }
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token (a server's `finish_reason: stop`).
    Eos,
    /// `max_new_tokens` reached, or the context window is full (`finish_reason: length`).
    MaxTokens,
    /// The cancel flag was set, the receiver was dropped, or the generator is shutting down.
    Cancelled,
    /// The model wrote a turn marker of the chat template as text (not passed on).
    StopString,
}

/// Measurements of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenStats {
    /// Prompt length after templating, including BOS (as the model server reports it;
    /// 0 when it does not).
    pub prompt_tokens: usize,
    /// Sampled tokens, not counting the end-of-generation token.
    pub generated_tokens: usize,
    /// From the worker picking up the request (queue wait excluded) to the first text sent,
    /// i.e. tokenisation + context creation + prompt processing + first sample; for a
    /// model server, from the request's start (retries included) to its first text.
    pub time_to_first_token: Duration,
    /// Decode speed after the first token: (generated - 1) / time since the first token.
    /// 0 when fewer than two tokens were generated.
    pub tokens_per_second: f64,
    pub stop: StopReason,
}

impl GenStats {
    /// A request cancelled before anything was decoded.
    pub(crate) fn cancelled(prompt_tokens: usize) -> Self {
        GenStats {
            prompt_tokens,
            generated_tokens: 0,
            time_to_first_token: Duration::ZERO,
            tokens_per_second: 0.0,
            stop: StopReason::Cancelled,
        }
    }
}
