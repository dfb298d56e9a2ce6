//! Saved conversations over HTTP: every answer given through `/api/ask` is kept in the
//! asker's conversation (in the accounts database), so a follow-up has its context after a
//! reload or a restart, and the page can list, reopen, rename, delete and export them. A
//! person only ever reaches their own conversations.
//!
//! Reopened, a turn shows only what its reader may still see: a turn that quoted a
//! document they have since lost access to is shown without its text, quotes or passages.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use super::types::AskResponse;
use super::AppState;
use crate::accounts::{Accounts, ConversationInfo, StoredTurn};
use crate::engine::{Access, Answer, DocumentEntry, Turn};

/// Turns of a conversation a follow-up is answered with (only the last ones matter).
const FOLLOW_UP_TURNS: usize = 8;

/// The turns of `owner`'s conversation `id` so far, or a new conversation (with a new
/// id) when `id` is absent, unknown or someone else's.
pub fn resume(
    accounts: &Accounts,
    owner: i64,
    id: Option<&str>,
) -> crate::Result<(String, Vec<Turn>)> {
    if let Some(id) = id {
        if let Some((_, turns)) = accounts.conversation(owner, id)? {
            let skip = turns.len().saturating_sub(FOLLOW_UP_TURNS);
            let turns = turns
                .into_iter()
                .skip(skip)
                .map(|t| Turn {
                    question: t.question,
                    answer: t.answer,
                })
                .collect();
            return Ok((id.to_string(), turns));
        }
    }
    Ok((uuid::Uuid::new_v4().to_string(), Vec::new()))
}

/// Saves a finished answer in `owner`'s conversation `id`.
pub fn save(
    accounts: &Accounts,
    owner: i64,
    id: &str,
    question: &str,
    answer: &Answer,
) -> crate::Result<()> {
    let response = serde_json::to_string(&AskResponse::new(id.to_string(), answer))
        .map_err(|e| crate::Error::BadRequest(format!("encoding an answer: {e}")))?;
    accounts.add_turn(owner, id, question, &answer.text, &response)
}

/// A saved conversation as the page reopens it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    pub id: String,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub turns: Vec<TurnView>,
}

/// One saved turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnView {
    pub question: String,
    pub created_at: i64,
    /// The response as `/api/ask` gave it, or `null` when it quoted a document the reader
    /// may no longer see.
    #[schema(value_type = Object)]
    pub response: Option<serde_json::Value>,
    /// True when `response` was withheld.
    pub withheld: bool,
}

/// The documents a stored response names (cited or shown as passages).
fn documents_named(response: &serde_json::Value) -> Vec<String> {
    ["citations", "passages"]
        .iter()
        .flat_map(|k| response[*k].as_array().into_iter().flatten())
        .filter_map(|v| v["doc_id"].as_str().map(str::to_string))
        .collect()
}

/// A saved turn as `access` may see it, checked against the acknowledged `documents`.
fn view_of(
    documents: &BTreeMap<String, DocumentEntry>,
    access: &Access,
    turn: StoredTurn,
) -> TurnView {
    let response: Option<serde_json::Value> = serde_json::from_str(&turn.response).ok();
    let visible = |doc: &String| documents.get(doc).is_some_and(|d| access.allows(&d.groups));
    let withheld = response
        .as_ref()
        .is_none_or(|r| !documents_named(r).iter().all(visible));
    TurnView {
        question: turn.question,
        created_at: turn.created_at,
        response: if withheld { None } else { response },
        withheld,
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no conversation `{id}` of yours"))
}

#[utoipa::path(get, path = "/api/conversations", tag = "conversations",
    responses((status = 200, description = "your conversations, the most recent first")))]
pub async fn list(
    state: web::Data<AppState>,
    me: Principal,
) -> Result<web::Json<Vec<ConversationInfo>>, ApiError> {
    let id = me.user.id;
    Ok(web::Json(
        state.with_accounts(move |a| a.conversations(id)).await?,
    ))
}

async fn load(state: &AppState, me: &Principal, id: &str) -> Result<ConversationView, ApiError> {
    let (user, conv) = (me.user.id, id.to_string());
    let (info, turns) = state
        .with_accounts(move |a| a.conversation(user, &conv))
        .await?
        .ok_or_else(|| not_found(id))?;
    // One read of the manifest for every turn.
    let manifest = state.engine.manifest();
    Ok(ConversationView {
        id: info.id,
        title: info.title,
        created_at: info.created_at,
        updated_at: info.updated_at,
        turns: turns
            .into_iter()
            .map(|t| view_of(&manifest.documents, &me.access, t))
            .collect(),
    })
}

#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, body = ConversationView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    me: Principal,
    id: web::Path<String>,
) -> Result<web::Json<ConversationView>, ApiError> {
    Ok(web::Json(load(&state, &me, &id).await?))
}

/// `PATCH /api/conversations/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Rename {
    pub title: String,
}

#[utoipa::path(patch, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = String, Path)), request_body = Rename,
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn rename(
    state: web::Data<AppState>,
    me: Principal,
    id: web::Path<String>,
    body: web::Json<Rename>,
) -> Result<HttpResponse, ApiError> {
    let (user, conv, title) = (me.user.id, id.clone(), body.into_inner().title);
    if !state
        .with_accounts(move |a| a.rename_conversation(user, &conv, &title))
        .await?
    {
        return Err(not_found(&id));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    me: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, conv) = (me.user.id, id.clone());
    if !state
        .with_accounts(move |a| a.delete_conversation(user, &conv))
        .await?
    {
        return Err(not_found(&id));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/conversations/{id}/export", tag = "conversations",
    params(("id" = String, Path)),
    responses((status = 200, description = "the conversation as Markdown, with its sources",
               content_type = "text/markdown"),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn export(
    state: web::Data<AppState>,
    me: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = load(&state, &me, &id).await?;
    let file = format!("tanya-{}.md", &view.id.chars().take(8).collect::<String>());
    Ok(HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markdown(&view)))
}

/// The conversation as Markdown: each question, its answer, and the sources it cites
/// (document, page, and the quoted words).
pub fn markdown(view: &ConversationView) -> String {
    let mut out = format!("# {}\n", one_line(&view.title));
    for (i, t) in view.turns.iter().enumerate() {
        out.push_str(&format!("\n## {}. {}\n\n", i + 1, one_line(&t.question)));
        let Some(r) = &t.response else {
            out.push_str(
                "_This answer quoted a document you can no longer see, so it is not shown._\n",
            );
            continue;
        };
        out.push_str(r["answer"].as_str().unwrap_or("").trim());
        out.push('\n');
        let cited: Vec<&serde_json::Value> =
            r["citations"].as_array().into_iter().flatten().collect();
        if !cited.is_empty() {
            out.push_str("\nSources:\n\n");
            for c in cited {
                let page = c["page"]
                    .as_u64()
                    .map(|p| format!(", p. {p}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "- [{}] {}{page}: “{}”\n",
                    c["n"],
                    c["rel_path"].as_str().unwrap_or(""),
                    one_line(c["quote"].as_str().unwrap_or(""))
                ));
            }
        }
    }
    out
}

/// Text on one line (a title or question cannot break the Markdown structure).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_export_keeps_answers_and_sources_and_withholds_lost_ones() {
        let view = ConversationView {
            id: "abc".into(),
            title: "Cuti\n# not a heading".into(),
            created_at: 0,
            updated_at: 0,
            turns: vec![
                TurnView {
                    question: "Berapa hari cuti?".into(),
                    created_at: 0,
                    response: Some(serde_json::json!({
                        "answer": "16 hari [1].",
                        "citations": [{"n": 1, "rel_path": "cuti.pdf", "page": 2,
                                       "quote": "16 hari\nsetahun", "doc_id": "d"}],
                    })),
                    withheld: false,
                },
                TurnView {
                    question: "Gaji?".into(),
                    created_at: 0,
                    response: None,
                    withheld: true,
                },
            ],
        };
        let md = markdown(&view);
        assert!(md.starts_with("# Cuti # not a heading\n"), "{md}");
        assert!(
            md.contains("## 1. Berapa hari cuti?\n\n16 hari [1].\n"),
            "{md}"
        );
        assert!(
            md.contains("- [1] cuti.pdf, p. 2: “16 hari setahun”"),
            "{md}"
        );
        assert!(
            md.contains("## 2. Gaji?\n\n_This answer quoted a document"),
            "{md}"
        );
    }

    #[test]
    fn documents_named_by_citations_and_passages() {
        let r = serde_json::json!({
            "citations": [{"doc_id": "a"}],
            "passages": [{"doc_id": "b"}, {"doc_id": "a"}],
        });
        assert_eq!(documents_named(&r), ["a", "b", "a"]);
        assert!(documents_named(&serde_json::json!({})).is_empty());
    }
}
