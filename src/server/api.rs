//! The JSON API: ask (whole or streamed), search, info, health and metrics.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::answering::{self, answer_pieces, sse_event, CancelOnDrop, Job, Out, SseStream};
use super::auth::Principal;
use super::error::{ApiError, ErrorBody};
use super::metrics::Gauges;
use super::types::{
    timings, AskRequest, AskResponse, Health, Info, PassageView, SearchRequest, SearchResponse,
};
use super::AppState;
use crate::engine::Access;

/// Most passages one search may ask for.
const MAX_SEARCH_LIMIT: usize = 50;

/// `access` narrowed to `collection`: absent, empty or `default` means every document
/// the caller may see; a name must be a collection holding one of them (else 404, which
/// says nothing of collections the caller cannot see).
pub fn within(
    state: &AppState,
    access: Access,
    collection: Option<&str>,
) -> Result<Access, ApiError> {
    let name = match collection.map(str::trim) {
        None | Some("") | Some("default") => return Ok(access),
        Some(name) => name,
    };
    let known = state
        .engine
        .manifest()
        .documents
        .values()
        .any(|d| d.collection.as_deref() == Some(name) && access.allows(&d.groups));
    if !known {
        return Err(ApiError::not_found(format!(
            "no collection `{name}` of yours"
        )));
    }
    Ok(access.within(Some(name.to_string())))
}

/// Whether the client asked for server-sent events.
pub fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

pub fn event_stream<S>(body: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + 'static,
{
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells reverse proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

#[utoipa::path(post, path = "/api/ask", tag = "answers",
    request_body = AskRequest,
    responses(
        (status = 200, description = "the whole answer, or with `Accept: text/event-stream` the events passages, token*, citations, done", body = AskResponse),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn ask(
    state: web::Data<AppState>,
    req: HttpRequest,
    asker: Principal,
    body: web::Json<AskRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let access = within(&state, asker.access.clone(), body.collection.as_deref())?;
    // The command line's answers are not kept (it has no conversations to reopen).
    let owner = asker.is_person().then_some(asker.user.id);
    let accounts = Arc::clone(&state.accounts);
    let wanted = body.conversation_id.clone().filter(|_| owner.is_some());
    let (conversation_id, history) = web::block(move || {
        super::conversations::resume(&accounts, owner.unwrap_or(0), wanted.as_deref())
    })
    .await??;
    let job = Job::new(&state, access, &body.question, history, body.mode)?;
    let asked = Asked {
        user: asker.user.name.clone(),
        owner,
        conversation_id: conversation_id.clone(),
        question: job.question.clone(),
    };
    let (rx, cancel) = answering::spawn(&state, job);

    if !wants_stream(&req) {
        let _guard = CancelOnDrop(cancel);
        let answer = answering::finish(rx).await?;
        asked.record(&state, &answer);
        return Ok(HttpResponse::Ok().json(AskResponse::new(conversation_id, &answer)));
    }

    let state = state.into_inner();
    let mut streamed_tokens = false;
    let format = move |out: Out| -> Vec<Bytes> {
        match out {
            Out::Passages(hits) => vec![sse_event(
                "passages",
                &serde_json::json!({
                    "conversation_id": conversation_id,
                    "passages": PassageView::from_hits(&hits),
                }),
            )],
            Out::Token(text) => {
                streamed_tokens = true;
                vec![sse_event("token", &serde_json::json!({ "text": text }))]
            }
            Out::Finished(answer) => {
                asked.record(&state, &answer);
                let mut frames = Vec::new();
                if !streamed_tokens {
                    for piece in answer_pieces(&answer.text) {
                        frames.push(sse_event("token", &serde_json::json!({ "text": piece })));
                    }
                }
                let citations = &answer.citations;
                frames.push(sse_event(
                    "citations",
                    &serde_json::json!({
                        "answer": answer.text,
                        "abstained": answer.abstained,
                        "nothing_indexed": answer.nothing_indexed,
                        "citations": citations,
                    }),
                ));
                frames.push(sse_event(
                    "done",
                    &serde_json::json!({
                        "mode": answer.mode.as_str(),
                        "lang": answer.lang.as_str(),
                        "timings": timings(&answer),
                        "fallback": answer.fallback,
                    }),
                ));
                frames
            }
            Out::Failed(e) => vec![sse_event("error", &e.body())],
        }
    };
    Ok(event_stream(SseStream::new(rx, cancel, format)))
}

/// Counts a finished answer in the metrics, and records in the audit log who was shown
/// which passages (`context` adds where it was asked).
pub fn count_answer(
    state: &AppState,
    user: &str,
    answer: &crate::engine::Answer,
    context: serde_json::Value,
) {
    state
        .metrics
        .answered(answer.mode.as_str(), answer.abstained);
    let mut fields = serde_json::json!({
        "mode": answer.mode.as_str(),
        "shown": shown(&answer.passages),
        "cited": answer.citations.iter().map(|c| c.doc_id.as_str()).collect::<Vec<_>>(),
    });
    if let (Some(f), serde_json::Value::Object(extra)) = (fields.as_object_mut(), context) {
        f.extend(extra);
    }
    state.audit.record("question", Some(user), fields);
}

/// A question being answered for someone, and the conversation its answer goes to.
struct Asked {
    user: String,
    /// Whose conversation it is; `None` for the command line (nothing is kept).
    owner: Option<i64>,
    conversation_id: String,
    question: String,
}

impl Asked {
    /// Counts the answer and saves the turn in the conversation (for follow-ups, and to
    /// reopen it). Saved before the answer's last event is sent, so a follow-up asked at
    /// once finds it.
    fn record(&self, state: &AppState, answer: &crate::engine::Answer) {
        count_answer(
            state,
            &self.user,
            answer,
            serde_json::json!({ "conversation": self.conversation_id }),
        );
        let Some(owner) = self.owner else {
            return;
        };
        let saved = super::conversations::save(
            &state.accounts,
            owner,
            &self.conversation_id,
            &self.question,
            answer,
        );
        if let Err(e) = saved {
            tracing::error!(error = %e.full_message(), "saving a conversation turn failed");
        }
    }
}

#[utoipa::path(post, path = "/api/search", tag = "answers",
    request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody)))]
pub async fn search(
    state: web::Data<AppState>,
    asker: Principal,
    body: web::Json<SearchRequest>,
) -> Result<web::Json<SearchResponse>, ApiError> {
    let body = body.into_inner();
    let access = within(&state, asker.access.clone(), body.collection.as_deref())?;
    let limit = body.limit.unwrap_or(state.engine.config().search.top_k);
    if limit == 0 || limit > MAX_SEARCH_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_SEARCH_LIMIT}"
        )));
    }
    crate::engine::check_query(&body.query)?;
    let engine = Arc::clone(&state.engine);
    let started = Instant::now();
    let retrieval = web::block(move || engine.search(&body.query, &access, limit)).await??;
    state.audit.record(
        "search",
        Some(&asker.user.name),
        serde_json::json!({ "shown": shown(&retrieval.hits) }),
    );
    Ok(web::Json(SearchResponse {
        passages: PassageView::from_hits(&retrieval.hits),
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// The passages shown, as `doc_id#chunk` (never their text), for the audit log.
pub fn shown(hits: &[crate::engine::SearchHit]) -> Vec<String> {
    hits.iter()
        .map(|h| format!("{}#{}", h.passage.doc_id, h.passage.ordinal))
        .collect()
}

/// A collection the caller may use, and how many of its documents they may see.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CollectionView {
    pub name: String,
    pub documents: usize,
    /// Administrators only: every group that may see one of its documents (who may use
    /// the collection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/api/collections", tag = "answers",
    responses((status = 200, body = [CollectionView])))]
pub async fn collections(
    state: web::Data<AppState>,
    asker: Principal,
) -> web::Json<Vec<CollectionView>> {
    web::Json(collection_views(&state, &asker.access))
}

/// The collections holding a document `access` may see, with their counts (and, for an
/// administrator, their groups).
fn collection_views(state: &AppState, access: &Access) -> Vec<CollectionView> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut found: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for d in state.engine.manifest().documents.values() {
        if let Some(c) = d.collection.as_ref().filter(|_| access.allows(&d.groups)) {
            let (count, groups) = found.entry(c.clone()).or_default();
            *count += 1;
            groups.extend(d.groups.iter().cloned());
        }
    }
    found
        .into_iter()
        .map(|(name, (documents, groups))| CollectionView {
            name,
            documents,
            groups: access.is_everything().then(|| groups.into_iter().collect()),
        })
        .collect()
}

#[utoipa::path(patch, path = "/api/collections/{name}", tag = "documents",
    params(("name" = String, Path, description = "collection name")),
    request_body = super::documents::GroupsChange,
    responses((status = 200, body = CollectionView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
/// Moves every document of a collection to `groups` (administrators): who may use it.
/// Nothing is parsed or embedded again.
pub async fn set_collection_groups(
    state: web::Data<AppState>,
    admin: Principal,
    name: web::Path<String>,
    body: web::Json<super::documents::GroupsChange>,
) -> Result<web::Json<CollectionView>, ApiError> {
    let name = name.into_inner();
    let groups = body.into_inner().groups;
    Access::for_groups(groups.iter().cloned())?;
    let members: Vec<(String, Vec<String>)> = state
        .engine
        .manifest()
        .documents
        .iter()
        .filter(|(_, d)| d.collection.as_deref() == Some(name.as_str()))
        .map(|(id, d)| (id.clone(), d.groups.clone()))
        .collect();
    if members.is_empty() {
        return Err(ApiError::not_found(format!("no collection named `{name}`")));
    }
    let moved: Vec<String> = members
        .iter()
        .filter(|(_, before)| *before != groups)
        .map(|(id, _)| id.clone())
        .collect();
    let engine = Arc::clone(&state.engine);
    let new = groups.clone();
    web::block(move || engine.set_groups_of(&moved, &new)).await??;
    state.audit.record(
        "collection_groups",
        Some(&admin.user.name),
        serde_json::json!({ "collection": name, "documents": members.len(), "to": groups }),
    );
    collection_views(&state, &admin.access)
        .into_iter()
        .find(|c| c.name == name)
        .map(web::Json)
        .ok_or_else(|| ApiError::not_found(format!("no collection named `{name}`")))
}

#[utoipa::path(get, path = "/api/info", tag = "operations",
    responses((status = 200, body = Info)))]
pub async fn info(state: web::Data<AppState>, asker: Principal) -> web::Json<Info> {
    let config = state.engine.config();
    web::Json(Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        default_mode: config.answer.mode.as_str().to_string(),
        generative_available: config.generative_available(),
        documents: state.engine.visible_documents(&asker.access),
        embedder: state.engine.embedder_identity(),
        max_upload_mb: config.server.max_upload_mb,
        max_question_chars: crate::engine::MAX_QUERY_CHARS,
    })
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
    })
}

/// Ready when the index answers: a real (tiny) read of both stores through a search.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    let engine = Arc::clone(&state.engine);
    // A real read of both stores; what it finds is not shown to anyone.
    web::block(move || engine.probe(&Access::everything()))
        .await?
        .map_err(|e| {
            ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                e.full_message(),
            )
        })?;
    Ok(web::Json(Health {
        status: "ready".into(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state.metrics.render(&Gauges {
        queue_depth: state.uploads.depth(),
        documents: state.engine.visible_documents(&Access::everything()),
        conversations: state.accounts.conversation_count().unwrap_or(0),
        answering: state.answering.load(std::sync::atomic::Ordering::SeqCst),
    });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
