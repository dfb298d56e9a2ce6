//! The JSON shapes of the API (what `docs/api.md` and `/api/openapi.json` describe).
//! They are views of the core types, kept apart so that the wire format changes only on
//! purpose.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::AnswerMode;
use crate::engine::SearchHit;
use crate::engine::{Answer, Citation};

/// Characters of a passage shown as its snippet.
const SNIPPET_CHARS: usize = 240;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The question, in Bahasa Malaysia or English.
    pub question: String,
    /// The id returned with an earlier answer: makes this question a follow-up.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// `extractive` or `generative`; default: the configured `answer.mode`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mode: Option<AnswerMode>,
    /// Ask only the documents of this collection (`GET /api/collections`); all you may
    /// see when absent (or `default`).
    #[serde(default)]
    pub collection: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    /// Number of passages (default `search.top_k`, at most 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Search only the documents of this collection.
    #[serde(default)]
    pub collection: Option<String>,
}

/// A retrieved passage with its location.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PassageView {
    /// 1-based rank in the fused list.
    pub rank: usize,
    pub doc_id: String,
    pub rel_path: String,
    pub title: String,
    pub page: Option<u32>,
    pub heading: Option<String>,
    /// The whole chunk.
    pub text: String,
    /// Its first characters.
    pub snippet: String,
    /// Character offsets of the chunk in the document's extracted text.
    pub char_start: usize,
    pub char_end: usize,
    /// Fused score.
    pub score: f32,
}

impl PassageView {
    pub fn from_hits(hits: &[SearchHit]) -> Vec<PassageView> {
        hits.iter()
            .enumerate()
            .map(|(i, h)| {
                let p = &h.passage;
                PassageView {
                    rank: i + 1,
                    doc_id: p.doc_id.clone(),
                    rel_path: p.rel_path.clone(),
                    title: p.title.clone(),
                    page: p.page,
                    heading: p.heading_path.last().cloned(),
                    text: p.text.clone(),
                    snippet: snippet(&p.text),
                    char_start: p.char_start,
                    char_end: p.char_end,
                    score: h.score,
                }
            })
            .collect()
    }
}

fn snippet(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= SNIPPET_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(SNIPPET_CHARS).collect();
    // End on a word boundary when there is one nearby.
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > SNIPPET_CHARS / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timings {
    pub retrieval_ms: f64,
    pub answer_ms: f64,
    pub time_to_first_token_ms: Option<f64>,
    pub tokens_per_second: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AskResponse {
    pub conversation_id: String,
    /// The answer: text with a small Markdown subset and `[n]` citation markers.
    pub answer: String,
    /// True when the documents do not contain the answer.
    pub abstained: bool,
    /// True when the caller can see no document at all (the answer says how to add some).
    pub nothing_indexed: bool,
    pub mode: String,
    /// Language of the question and the answer: `ms` or `en`.
    pub lang: String,
    pub citations: Vec<Citation>,
    pub passages: Vec<PassageView>,
    pub timings: Timings,
    /// Set when a generative answer was asked for but the model server failed before
    /// its first token: why. The answer was then quoted from the documents (`mode` is
    /// `extractive`).
    pub fallback: Option<String>,
}

impl AskResponse {
    pub fn new(conversation_id: String, a: &Answer) -> Self {
        AskResponse {
            conversation_id,
            answer: a.text.clone(),
            abstained: a.abstained,
            nothing_indexed: a.nothing_indexed,
            mode: a.mode.as_str().to_string(),
            lang: a.lang.as_str().to_string(),
            citations: a.citations.clone(),
            passages: PassageView::from_hits(&a.passages),
            timings: timings(a),
            fallback: a.fallback.clone(),
        }
    }
}

pub fn timings(a: &Answer) -> Timings {
    Timings {
        retrieval_ms: a.retrieval_ms,
        answer_ms: a.answer_ms,
        time_to_first_token_ms: a.time_to_first_token_ms,
        tokens_per_second: a.tokens_per_second,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub passages: Vec<PassageView>,
    pub took_ms: f64,
}

/// A document and where it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: String,
    /// Path relative to the folder it was ingested from (or the uploaded file name).
    pub name: String,
    pub title: String,
    pub format: String,
    pub lang: Option<String>,
    pub pages: Option<u32>,
    /// Pages whose text was read by OCR (scanned pages).
    pub ocr_pages: Vec<u32>,
    pub chunks: Option<u32>,
    pub size: u64,
    /// `folder` or `upload`.
    pub origin: String,
    /// `queued`, `indexing`, `indexed` or `rejected`.
    pub status: String,
    /// Rejected only: a short code (`unsupported`, `parse_error`, `encrypted`, ...).
    pub reason: Option<String>,
    /// Rejected only: what happened, for people.
    pub message: Option<String>,
    /// Seconds since the Unix epoch.
    pub ingested_at: Option<u64>,
    /// The collection it is in, if any.
    pub collection: Option<String>,
    /// Who may see it (administrators only: others get no such field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentView>,
    /// Uploads waiting to be ingested.
    pub queue_depth: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageSpan {
    pub page: u32,
    pub char_start: usize,
    pub char_end: usize,
}

/// The extracted text of a document, which passage offsets index into (by character).
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentText {
    pub id: String,
    pub title: String,
    pub format: String,
    pub text: String,
    pub pages: Vec<PageSpan>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    pub version: String,
    pub default_mode: String,
    /// Whether generative answers can be asked for: a GGUF model is installed, or a
    /// model server is configured.
    pub generative_available: bool,
    pub documents: usize,
    pub embedder: String,
    pub max_upload_mb: u64,
    pub max_question_chars: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}
