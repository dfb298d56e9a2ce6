//! An OpenAI-compatible chat endpoint, so that existing chat clients can use Tanya as
//! their backend: the last user message is the question, the earlier turns are the
//! conversation, and the answer comes from the documents with its sources.

use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::answering::{self, sse_data, CancelOnDrop, Job, Out, SseStream};
use super::api::{event_stream, wants_stream};
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::config::AnswerMode;
use crate::engine::Turn;
use crate::engine::{fallback_note, Answer};

pub const MODEL_EXTRACTIVE: &str = "tanya-extractive";
pub const MODEL_GENERATIVE: &str = "tanya-generative";

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// `tanya-extractive`, `tanya-generative`, or anything else for the configured mode.
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<ChatMessageIn>,
    #[serde(default)]
    pub stream: Option<bool>,
    // Other options clients send (temperature, max_tokens, ...) are accepted and
    // ignored: answers are grounded in the documents, not sampled.
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessageIn {
    pub role: String,
    #[schema(value_type = Object)]
    pub content: Content,
}

/// Message content: a string, or the array-of-parts form newer clients send.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
    Null(()),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.clone())
                .collect::<Vec<_>>()
                .join("\n"),
            Content::Null(()) => String::new(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
    /// Tanya's extension: the sources of the answer.
    pub citations: Vec<crate::engine::Citation>,
    /// Tanya's extension, only when the model server failed before its first token and
    /// the answer was quoted from the documents instead: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: MessageOut,
    pub finish_reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, body = ModelList)))]
pub async fn models(state: web::Data<AppState>) -> web::Json<ModelList> {
    let mut ids = vec![MODEL_EXTRACTIVE];
    if state.engine.config().generative_available() {
        ids.push(MODEL_GENERATIVE);
    }
    web::Json(ModelList {
        object: "list".into(),
        data: ids
            .into_iter()
            .map(|id| ModelInfo {
                id: id.into(),
                object: "model".into(),
                created: 0,
                owned_by: "tanya".into(),
            })
            .collect(),
    })
}

/// What is appended to the answer text for clients that show only text: a note when
/// the model server failed and the documents were quoted instead, and the sources list.
fn sources_text(answer: &Answer) -> String {
    let note = match answer.fallback {
        Some(_) => format!("\n\n{}", fallback_note(answer.lang)),
        None => String::new(),
    };
    if answer.citations.is_empty() {
        return note;
    }
    let heading = match answer.lang {
        tanya_ingest::Lang::Ms => "Sumber",
        tanya_ingest::Lang::En => "Sources",
    };
    let mut s = format!("{note}\n\n{heading}:");
    for c in &answer.citations {
        s.push_str(&format!("\n[{}] {}", c.n, c.rel_path));
        if let Some(p) = c.page {
            s.push_str(&format!(", p. {p}"));
        }
        if let Some(h) = &c.heading {
            s.push_str(&format!(" — {h}"));
        }
    }
    s
}

/// The question and the earlier turns of an OpenAI-style message list.
fn conversation(messages: &[ChatMessageIn]) -> Result<(String, Vec<Turn>), ApiError> {
    let last_user = messages
        .iter()
        .rposition(|m| m.role == "user")
        .ok_or_else(|| ApiError::bad_request("`messages` has no message with role `user`"))?;
    let question = messages[last_user].content.text();
    let mut history = Vec::new();
    let mut pending: Option<String> = None;
    for m in &messages[..last_user] {
        match m.role.as_str() {
            "user" => pending = Some(m.content.text()),
            "assistant" => {
                if let Some(q) = pending.take() {
                    history.push(Turn {
                        question: q,
                        answer: m.content.text(),
                    });
                }
            }
            _ => {} // system prompts: Tanya's own instructions apply
        }
    }
    if let Some(q) = pending {
        history.push(Turn {
            question: q,
            answer: String::new(),
        });
    }
    Ok((question, history))
}

#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    request_body = ChatRequest,
    responses((status = 200, body = ChatResponse, description = "or `chat.completion.chunk` events with `stream: true`"),
              (status = 400, body = ErrorBody)))]
pub async fn chat(
    state: web::Data<AppState>,
    req: HttpRequest,
    asker: Principal,
    body: web::Json<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (question, history) = conversation(&body.messages)?;
    let model = body
        .model
        .clone()
        .unwrap_or_else(|| MODEL_EXTRACTIVE.into());
    // A collection is named by an `X-Tanya-Collection` header or a model name's suffix
    // (`tanya-extractive@HR`).
    let (base, suffix) = match model.split_once('@') {
        Some((base, c)) => (base.to_string(), Some(c.to_string())),
        None => (model.clone(), None),
    };
    let header = req
        .headers()
        .get("x-tanya-collection")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let access = super::api::within(&state, asker.access.clone(), header.or(suffix).as_deref())?;
    let job = Job::new(&state, access, &question, history, mode_of(&base))?;
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = now();
    let (rx, cancel) = answering::spawn(&state, job);
    // A conversation id is not part of this protocol: each request carries its history,
    // so nothing is kept; the answer is only counted.

    if !body.stream.unwrap_or_else(|| wants_stream(&req)) {
        let _guard = CancelOnDrop(cancel);
        let answer = answering::finish(rx).await?;
        count(&state, &asker.user.name, &answer);
        return Ok(HttpResponse::Ok().json(completion(id, created, model, &answer)));
    }

    let head = ChunkHead { id, created, model };
    let format = stream_format(state.into_inner(), asker.user.name.clone(), head);
    Ok(event_stream(SseStream::new(rx, cancel, format)))
}

/// Counts a finished answer (nothing is kept: each request carries its history).
fn count(state: &AppState, user: &str, answer: &Answer) {
    super::api::count_answer(
        state,
        user,
        answer,
        serde_json::json!({ "endpoint": "openai" }),
    );
}

/// The answer mode a model name asks for; `None` (the configured mode) for other names.
fn mode_of(model: &str) -> Option<AnswerMode> {
    match model {
        MODEL_EXTRACTIVE => Some(AnswerMode::Extractive),
        MODEL_GENERATIVE => Some(AnswerMode::Generative),
        _ => None,
    }
}

/// The whole (non-streaming) `chat.completion` response for `answer`.
fn completion(id: String, created: u64, model: String, answer: &Answer) -> ChatResponse {
    ChatResponse {
        id,
        object: "chat.completion".into(),
        created,
        model,
        choices: vec![Choice {
            index: 0,
            message: MessageOut {
                role: "assistant".into(),
                content: format!("{}{}", answer.text, sources_text(answer)),
            },
            finish_reason: "stop".into(),
        }],
        usage: Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
        },
        citations: answer.citations.clone(),
        fallback: answer.fallback.clone(),
    }
}

/// What every `chat.completion.chunk` of one streamed response repeats.
struct ChunkHead {
    id: String,
    created: u64,
    model: String,
}

impl ChunkHead {
    /// One `chat.completion.chunk` event with `delta` and `finish` (the finish reason),
    /// and Tanya's `citations` when `extra` holds them.
    fn chunk(
        &self,
        delta: serde_json::Value,
        finish: Option<&str>,
        extra: Option<serde_json::Value>,
    ) -> Bytes {
        let mut v = serde_json::json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if let (Some(extra), Some(obj)) = (extra, v.as_object_mut()) {
            obj.insert("citations".into(), extra);
        }
        sse_data(&v.to_string())
    }
}

/// Turns the answering events into the streamed response's events: the assistant
/// role first, then the tokens, then the end of the answer (counted in the metrics as
/// it finishes), or the error.
fn stream_format(
    state: std::sync::Arc<AppState>,
    user: String,
    head: ChunkHead,
) -> impl FnMut(Out) -> Vec<Bytes> + Unpin {
    let mut streamed_tokens = false;
    move |out: Out| -> Vec<Bytes> {
        match out {
            Out::Passages(_) => vec![head.chunk(
                serde_json::json!({"role": "assistant", "content": ""}),
                None,
                None,
            )],
            Out::Token(text) => {
                streamed_tokens = true;
                vec![head.chunk(serde_json::json!({ "content": text }), None, None)]
            }
            Out::Finished(answer) => {
                count(&state, &user, &answer);
                finished_frames(&head, &answer, streamed_tokens)
            }
            Out::Failed(e) => vec![
                sse_data(&serde_json::to_string(&e.body()).unwrap_or_default()),
                sse_data("[DONE]"),
            ],
        }
    }
}

/// The last events of a streamed answer: its text (unless its tokens were streamed),
/// the sources, the `stop` chunk with the citations, and `[DONE]`.
fn finished_frames(head: &ChunkHead, answer: &Answer, streamed_tokens: bool) -> Vec<Bytes> {
    let mut frames = Vec::new();
    if !streamed_tokens {
        frames.push(head.chunk(serde_json::json!({ "content": answer.text }), None, None));
    }
    let sources = sources_text(answer);
    if !sources.is_empty() {
        frames.push(head.chunk(serde_json::json!({ "content": sources }), None, None));
    }
    let citations = &answer.citations;
    frames.push(head.chunk(
        serde_json::json!({}),
        Some("stop"),
        Some(serde_json::to_value(citations).unwrap_or_default()),
    ));
    frames.push(sse_data("[DONE]"));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessageIn {
        ChatMessageIn {
            role: role.into(),
            content: Content::Text(content.into()),
        }
    }

    #[test]
    fn the_last_user_message_is_the_question() {
        let (q, history) = conversation(&[
            msg("system", "be nice"),
            msg("user", "q1"),
            msg("assistant", "a1"),
            msg("user", "q2"),
        ])
        .unwrap();
        assert_eq!(q, "q2");
        assert_eq!(
            history,
            vec![Turn {
                question: "q1".into(),
                answer: "a1".into()
            }]
        );
        assert!(conversation(&[msg("system", "x")]).is_err());
    }

    #[test]
    fn content_parts_are_joined() {
        let c: Content = serde_json::from_str(
            r#"[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]"#,
        )
        .unwrap();
        assert_eq!(c.text(), "a\nb");
    }
}
