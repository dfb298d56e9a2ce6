//! The people page's API: administrators manage users (role, groups, disabled) and see
//! every token; everyone manages their own API tokens.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::accounts::{Accounts, Role, TokenInfo, User};

/// `POST /api/users` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    /// admin, editor or reader.
    pub role: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `PATCH /api/users/{name}` body: only what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserChange {
    pub role: Option<String>,
    pub groups: Option<Vec<String>>,
    pub disabled: Option<bool>,
    /// A new password (ends the user's sessions).
    pub password: Option<String>,
}

/// `POST /api/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTokenRequest {
    pub label: String,
    /// The role the token acts as (at most its user's); the user's own when absent.
    pub role: Option<String>,
    /// Whose token (administrators only; yours when absent).
    pub user: Option<String>,
}

fn audit(state: &AppState, by: &Principal, event: &'static str, subject: &str) {
    state.audit.record(
        event,
        Some(&by.user.name),
        serde_json::json!({ "subject": subject }),
    );
}

#[utoipa::path(get, path = "/api/users", tag = "accounts",
    responses((status = 200, description = "every user: name, role, groups, disabled")))]
pub async fn users(state: web::Data<AppState>) -> Result<web::Json<Vec<User>>, ApiError> {
    Ok(web::Json(state.with_accounts(|a| a.users()).await?))
}

#[utoipa::path(post, path = "/api/users", tag = "accounts", request_body = NewUser,
    responses((status = 201, description = "the new user"), (status = 400, body = super::error::ErrorBody)))]
pub async fn add_user(
    state: web::Data<AppState>,
    by: Principal,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let NewUser {
        name,
        password,
        role,
        groups,
    } = body.into_inner();
    let role: Role = role.parse()?;
    let subject = name.clone();
    let user = state
        .with_accounts(move |a| a.add_user(&name, &password, role, &groups))
        .await?;
    audit(&state, &by, "user_added", &subject);
    Ok(HttpResponse::Created().json(user))
}

/// Whether `name` is the last enabled administrator (who may not be removed, demoted or
/// disabled: nobody could manage Tanya any more).
fn last_admin(a: &Accounts, name: &str) -> crate::Result<bool> {
    let admins: Vec<User> = a
        .users()?
        .into_iter()
        .filter(|u| u.role == Role::Admin && !u.disabled)
        .collect();
    Ok(admins.len() == 1 && admins[0].name == name)
}

fn last_admin_error() -> crate::Error {
    crate::Error::BadRequest("this is the last administrator: make another one first".into())
}

#[utoipa::path(patch, path = "/api/users/{name}", tag = "accounts", request_body = UserChange,
    params(("name" = String, Path)),
    responses((status = 200, description = "the changed user"), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn update_user(
    state: web::Data<AppState>,
    by: Principal,
    name: web::Path<String>,
    body: web::Json<UserChange>,
) -> Result<web::Json<User>, ApiError> {
    let name = name.into_inner();
    let change = body.into_inner();
    let role = change.role.as_deref().map(str::parse::<Role>).transpose()?;
    let subject = name.clone();
    let user = state
        .with_accounts(move |a| {
            let Some(_) = a.user(&name)? else {
                return Ok(None);
            };
            let demoted = role.is_some_and(|r| r != Role::Admin);
            if (demoted || change.disabled == Some(true)) && last_admin(a, &name)? {
                return Err(last_admin_error());
            }
            if let Some(r) = role {
                a.set_role(&name, r)?;
            }
            if let Some(g) = &change.groups {
                a.set_groups(&name, g)?;
            }
            if let Some(d) = change.disabled {
                a.set_disabled(&name, d)?;
            }
            if let Some(p) = &change.password {
                a.set_password(&name, p)?;
            }
            a.user(&name)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named `{subject}`")))?;
    audit(&state, &by, "user_changed", &subject);
    Ok(web::Json(user))
}

#[utoipa::path(delete, path = "/api/users/{name}", tag = "accounts",
    params(("name" = String, Path)),
    responses((status = 204), (status = 400, body = super::error::ErrorBody)))]
pub async fn remove_user(
    state: web::Data<AppState>,
    by: Principal,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let subject = name.clone();
    let removed = state
        .with_accounts(move |a| {
            if a.user(&name)?.is_none() {
                return Ok(false);
            }
            if last_admin(a, &name)? {
                return Err(last_admin_error());
            }
            a.remove_user(&name).map(|()| true)
        })
        .await?;
    if !removed {
        return Err(ApiError::not_found(format!("no user named `{subject}`")));
    }
    audit(&state, &by, "user_removed", &subject);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/tokens", tag = "accounts",
    responses((status = 200, description = "tokens (never their secrets)")))]
pub async fn tokens(
    state: web::Data<AppState>,
    by: Principal,
) -> Result<web::Json<Vec<TokenInfo>>, ApiError> {
    let all = state.with_accounts(|a| a.tokens()).await?;
    Ok(web::Json(
        all.into_iter()
            .filter(|t| by.role == Role::Admin || t.user == by.user.name)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/tokens", tag = "accounts", request_body = NewTokenRequest,
    responses((status = 201, description = "`{id, token}`: the secret, shown this once"),
              (status = 400, body = super::error::ErrorBody)))]
pub async fn create_token(
    state: web::Data<AppState>,
    by: Principal,
    body: web::Json<NewTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let NewTokenRequest { label, role, user } = body.into_inner();
    let owner = user.unwrap_or_else(|| by.user.name.clone());
    if owner != by.user.name && by.role != Role::Admin {
        return Err(ApiError::forbidden(
            "forbidden",
            "only an administrator may make tokens for others",
        ));
    }
    // A token never acts above the request that made it.
    let role = role.as_deref().map(str::parse::<Role>).transpose()?;
    let role = role.unwrap_or(by.role).min(if owner == by.user.name {
        by.role
    } else {
        Role::Admin
    });
    if label.trim().is_empty() || label.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "a token needs a label of 1 to 100 characters",
        ));
    }
    let subject = owner.clone();
    let made = state
        .with_accounts(move |a| a.create_token(&owner, &label, role))
        .await?;
    audit(&state, &by, "token_created", &subject);
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "id": made.id, "token": made.secret })))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn revoke_token(
    state: web::Data<AppState>,
    by: Principal,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let admin = by.role == Role::Admin;
    let me = by.user.name.clone();
    let revoked = state
        .with_accounts(move |a| {
            let mine = a
                .tokens()?
                .iter()
                .any(|t| t.id == id && (admin || t.user == me));
            if mine {
                a.revoke_token(id)?;
            }
            Ok(mine)
        })
        .await?;
    if !revoked {
        return Err(ApiError::not_found(format!("no token {id} of yours")));
    }
    audit(&state, &by, "token_revoked", &id.to_string());
    Ok(HttpResponse::NoContent().finish())
}
