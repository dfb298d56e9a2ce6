//! Who is asking, and whether they may: every route's [`Policy`], the [`Principal`] a
//! request is made by (a session cookie or an API token), CSRF checks for cookie-borne
//! writes, sign-in throttling, and the session endpoints.
//!
//! - A session lives in an `HttpOnly; SameSite=Strict` cookie ([`COOKIE`]); a write made
//!   with it must also carry [`CSRF_HEADER`], a value derived from the session secret that
//!   only the page, told it at sign-in, can know.
//! - A program sends `Authorization: Bearer tanya_…`; a token acts with its own role,
//!   never above its user's.
//! - An administrator sees every document ([`Access::everything`]); everyone else sees
//!   the documents that share a group with them, and a document with no group is for
//!   administrators only.

use std::collections::{HashMap, VecDeque};
use std::future::{ready, Ready};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::ServiceRequest;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::AppState;
use crate::accounts::{self, Role, User};
use crate::engine::Access;

/// The session cookie's name.
pub const COOKIE: &str = "tanya_session";
/// The header a cookie-borne write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed sign-ins tolerated per account, and per address, within [`THROTTLE_WINDOW`].
const MAX_FAILURES_PER_ACCOUNT: usize = 5;
const MAX_FAILURES_PER_ADDRESS: usize = 20;
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, signed in or not: the page's files, signing in, health and readiness.
    Anyone,
    /// A signed-in administrator, or any request from this machine (loopback).
    Metrics,
    /// A signed-in person (or token) with at least this role.
    AtLeast(Role),
    /// Only the `tanya` command line on this machine ([`Via::Local`]): what acts on the
    /// server's own files, such as ingesting a folder by its path.
    Local,
}

/// One route and who may call it. Every route is registered from such a rule
/// (`super::ROUTES`, `super::ASSET_RULES`), so a route cannot exist without a policy.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub path: &'static str,
    /// Lowercase HTTP method.
    pub method: &'static str,
    pub policy: Policy,
    /// Costs the machine real work: each person (and token) may call it
    /// `server.requests_per_minute` times a minute.
    pub limited: bool,
}

/// How a principal proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// A session cookie (its secret, to end it or derive the CSRF token).
    Session(String),
    /// An API token: a key for its own rate limit (a hash of the secret, never the secret).
    Token(String),
    /// The `tanya` command line of this machine, with the key the server left in
    /// `server.json` (readable only by the account that runs Tanya): an administrator.
    Local,
}

/// The prefix of the local key (`server.json`).
pub const LOCAL_PREFIX: &str = "tanya_local_";

impl Principal {
    /// The command line of this machine.
    fn local() -> Principal {
        Principal {
            user: User {
                id: 0,
                name: "(local)".into(),
                role: Role::Admin,
                groups: Vec::new(),
                disabled: false,
                created_at: 0,
            },
            role: Role::Admin,
            access: Access::everything(),
            via: Via::Local,
        }
    }

    /// Whether this is a person (or their token), whose conversations are kept.
    pub fn is_person(&self) -> bool {
        !matches!(self.via, Via::Local)
    }
}

/// The signed-in person a request is made by.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    /// What this request may do: the user's role, or less for a token scoped lower.
    pub role: Role,
    /// What this request may see, built from the user's groups and role only.
    pub access: Access,
    pub via: Via,
}

impl Principal {
    fn new(user: User, role: Role, via: Via) -> Result<Principal, ApiError> {
        let access = if role == Role::Admin {
            Access::everything()
        } else {
            Access::for_groups(user.groups.iter().cloned())?
        };
        Ok(Principal {
            user,
            role,
            access,
            via,
        })
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or_else(sign_in_required),
        )
    }
}

fn sign_in_required() -> ApiError {
    ApiError::unauthorized("sign_in_required", "sign in to use Tanya")
}

/// Checks `req` against `policy`, and on success leaves its [`Principal`] (if any) in the
/// request's extensions for the handler.
pub async fn admit(
    state: &AppState,
    req: &ServiceRequest,
    policy: Policy,
    costly: bool,
) -> Result<(), ApiError> {
    if policy == Policy::Anyone {
        // Signing in and the page's files work whatever stale cookie the browser sends;
        // a valid one is still told to the handler (the session endpoints use it).
        if let Ok(Some(p)) = principal(state, req).await {
            req.extensions_mut().insert(p);
        }
        return Ok(());
    }
    let found = principal(state, req).await?;
    if policy == Policy::Metrics {
        // Behind a reverse proxy every request comes from loopback: then only an
        // administrator may read the metrics.
        let behind_proxy = state.engine.config().server.behind_proxy;
        let loopback = !behind_proxy && req.peer_addr().is_some_and(|a| a.ip().is_loopback());
        if loopback || found.as_ref().is_some_and(|p| p.role == Role::Admin) {
            return Ok(());
        }
        return Err(match found {
            None => sign_in_required(),
            Some(_) => forbidden(),
        });
    }
    if policy == Policy::Local {
        return match found {
            Some(p) if matches!(p.via, Via::Local) => {
                req.extensions_mut().insert(p);
                Ok(())
            }
            Some(_) => Err(forbidden()),
            None => Err(sign_in_required()),
        };
    }
    let Policy::AtLeast(needed) = policy else {
        unreachable!("Anyone, Metrics and Local are handled above");
    };
    let p = found.ok_or_else(sign_in_required)?;
    if p.role < needed {
        return Err(forbidden());
    }
    if let Via::Session(secret) = &p.via {
        let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if unsafe_method && sent != Some(accounts::csrf_token(secret).as_str()) {
            return Err(ApiError::forbidden(
                "csrf",
                "this request lacks the page's CSRF token: reload the page and try again",
            ));
        }
    }
    if costly {
        let per_minute = state.engine.config().server.requests_per_minute as usize;
        let mut keys = vec![format!("user:{}", p.user.id)];
        if let Via::Token(key) = &p.via {
            keys.push(format!("token:{key}"));
        }
        for key in keys {
            if let Err(secs) = state.rate.take(&key, per_minute) {
                return Err(ApiError::too_many(
                    "rate_limited",
                    format!(
                        "more than {per_minute} questions and searches in a minute: try again \
                         in {secs} s"
                    ),
                    secs,
                ));
            }
        }
    }
    req.extensions_mut().insert(p);
    Ok(())
}

/// Requests per key in a sliding minute.
#[derive(Default)]
pub struct RateLimiter {
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Counts one request of `key`; `Err(seconds to wait)` when it already made `max` in
    /// the last minute (that one is not counted).
    pub fn take(&self, key: &str, max: usize) -> Result<(), u64> {
        const MINUTE: Duration = Duration::from_secs(60);
        let mut map = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < MINUTE));
        }
        let q = map.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            q.pop_front();
        }
        if q.len() >= max {
            let oldest = *q.front().expect("len >= max >= 1");
            return Err((MINUTE - now.duration_since(oldest)).as_secs() + 1);
        }
        q.push_back(now);
        Ok(())
    }
}

fn forbidden() -> ApiError {
    ApiError::forbidden("forbidden", "your account may not do this")
}

/// The principal of `req`: from its bearer token, else its session cookie; `None` when
/// it carries neither. A token or cookie that is malformed, unknown, revoked, expired or
/// of a disabled user is a 401.
async fn principal(state: &AppState, req: &ServiceRequest) -> Result<Option<Principal>, ApiError> {
    let accounts = Arc::clone(&state.accounts);
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| s.starts_with("tanya_") && s.len() <= 128)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "invalid_token",
                    "the Authorization header must be `Bearer tanya_…` with an API token",
                )
            })?
            .to_string();
        if secret.starts_with(LOCAL_PREFIX) {
            use sha2::Digest;
            let sent = sha2::Sha256::digest(secret.as_bytes());
            let matches = state
                .local_key
                .get()
                .is_some_and(|key| constant_time_eq(key, sent.as_slice()));
            if matches {
                return Ok(Some(Principal::local()));
            }
            return Err(ApiError::unauthorized(
                "invalid_token",
                "this local key is not the running server's",
            ));
        }
        let found = web::block(move || accounts.token_user(&secret)).await??;
        let (user, role) = found.ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "this API token is unknown or revoked")
        })?;
        let key = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(value.as_bytes());
            digest[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        return Principal::new(user, role, Via::Token(key)).map(Some);
    }
    let Some(cookie) = req.cookie(COOKIE) else {
        return Ok(None);
    };
    let secret = cookie.value().to_string();
    if secret.is_empty() || secret.len() > 128 {
        return Err(session_expired());
    }
    let lookup = secret.clone();
    let user = web::block(move || accounts.session_user(&lookup))
        .await??
        .ok_or_else(session_expired)?;
    let role = user.role;
    Principal::new(user, role, Via::Session(secret)).map(Some)
}

/// Equality that takes as long whatever the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_expired() -> ApiError {
    ApiError::unauthorized("session_expired", "your session has ended: sign in again")
}

/// Failed sign-ins by account and by address, to slow down password guessing.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    /// `Err(seconds to wait)` when `key` has used up its `max` failures in the window.
    fn check(&self, key: &str, max: usize) -> Result<(), u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let Some(q) = map.get_mut(key) else {
            return Ok(());
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= THROTTLE_WINDOW)
        {
            q.pop_front();
        }
        if q.len() < max {
            return Ok(());
        }
        let oldest = *q.front().expect("len >= max >= 1");
        Err((THROTTLE_WINDOW - now.duration_since(oldest)).as_secs() + 1)
    }

    fn fail(&self, key: String) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: forget the quietest keys when too many are tracked.
        if map.len() > 100_000 {
            map.clear();
        }
        map.entry(key).or_default().push_back(Instant::now());
    }

    fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// `POST /api/session` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    pub name: String,
    pub password: String,
}

/// Who is signed in, and the CSRF token the page sends with its writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub name: String,
    /// admin, editor or reader.
    pub role: String,
    pub groups: Vec<String>,
    /// Send as `X-CSRF-Token` with every POST, PATCH and DELETE (session cookies only).
    pub csrf: Option<String>,
}

impl SessionView {
    fn of(p: &Principal) -> SessionView {
        SessionView {
            name: p.user.name.clone(),
            role: p.role.as_str().to_string(),
            groups: p.user.groups.clone(),
            csrf: match &p.via {
                Via::Session(secret) => Some(accounts::csrf_token(secret)),
                Via::Token(_) | Via::Local => None,
            },
        }
    }
}

/// The client's address for throttling (the peer; a reverse proxy's clients share it).
/// Behind a reverse proxy (`server.behind_proxy`), the client the proxy names last in
/// `X-Forwarded-For` (the one it saw); otherwise the peer, and that header is ignored.
fn address_key(req: &HttpRequest, behind_proxy: bool) -> String {
    let forwarded = behind_proxy
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
        })
        .flatten();
    let peer = || {
        req.peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    };
    format!("addr:{}", forwarded.unwrap_or_else(peer))
}

fn session_cookie(req: &HttpRequest, value: String, max_age: CookieDuration) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .max_age(max_age)
        .finish()
}

#[utoipa::path(post, path = "/api/session", tag = "accounts",
    request_body = SignIn,
    responses((status = 200, body = SessionView), (status = 401, body = super::error::ErrorBody),
              (status = 429, body = super::error::ErrorBody)))]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let SignIn { name, password } = body.into_inner();
    let attempted = name.clone();
    let account_key = format!("user:{name}");
    let address = address_key(&req, state.engine.config().server.behind_proxy);
    for (key, max) in [
        (&account_key, MAX_FAILURES_PER_ACCOUNT),
        (&address, MAX_FAILURES_PER_ADDRESS),
    ] {
        if let Err(secs) = state.throttle.check(key, max) {
            return Err(ApiError::too_many(
                "too_many_sign_ins",
                format!("too many failed sign-ins: try again in {secs} s"),
                secs,
            ));
        }
    }
    let accounts = Arc::clone(&state.accounts);
    let ttl = state.session_secs;
    let checked = web::block(move || -> crate::Result<Option<(User, String)>> {
        match accounts.verify_password(&name, &password)? {
            Some(user) => {
                let secret = accounts.create_session(user.id, ttl)?;
                Ok(Some((user, secret)))
            }
            None => Ok(None),
        }
    })
    .await??;
    let Some((user, secret)) = checked else {
        state.throttle.fail(account_key);
        state.throttle.fail(address.clone());
        // The name only if it is someone's: a password typed into the name field is not
        // written down.
        let accounts = Arc::clone(&state.accounts);
        let tried = attempted.clone();
        let known = web::block(move || accounts.user(&tried))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .is_some();
        state.audit.record(
            "sign_in_failed",
            known.then_some(attempted.as_str()),
            serde_json::json!({ "address": address.trim_start_matches("addr:") }),
        );
        return Err(ApiError::unauthorized(
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    state.throttle.clear(&account_key);
    state.audit.record(
        "sign_in",
        Some(&user.name),
        serde_json::json!({ "address": address.trim_start_matches("addr:") }),
    );
    let role = user.role;
    let p = Principal::new(user, role, Via::Session(secret.clone()))?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(
            &req,
            secret,
            CookieDuration::seconds(state.session_secs),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionView::of(&p)))
}

#[utoipa::path(get, path = "/api/session", tag = "accounts",
    responses((status = 200, body = SessionView), (status = 401, body = super::error::ErrorBody)))]
pub async fn whoami(p: Principal) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionView::of(&p))
}

#[utoipa::path(delete, path = "/api/session", tag = "accounts",
    responses((status = 204)))]
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
) -> Result<HttpResponse, ApiError> {
    if let Via::Session(secret) = p.via {
        let accounts = Arc::clone(&state.accounts);
        web::block(move || accounts.end_session(&secret)).await??;
        state
            .audit
            .record("sign_out", Some(&p.user.name), serde_json::json!({}));
    }
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie(&req, String::new(), CookieDuration::ZERO))
        .finish())
}

/// `POST /api/session/password` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

#[utoipa::path(post, path = "/api/session/password", tag = "accounts",
    request_body = PasswordChange,
    responses((status = 204), (status = 400, body = super::error::ErrorBody),
              (status = 403, body = super::error::ErrorBody)))]
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    p: Principal,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange { current, new } = body.into_inner();
    let account_key = format!("user:{}", p.user.name);
    if let Err(secs) = state.throttle.check(&account_key, MAX_FAILURES_PER_ACCOUNT) {
        return Err(ApiError::too_many(
            "too_many_sign_ins",
            format!("too many failed attempts: try again in {secs} s"),
            secs,
        ));
    }
    let accounts = Arc::clone(&state.accounts);
    let name = p.user.name.clone();
    let ttl = state.session_secs;
    let changed = web::block(move || -> crate::Result<Option<String>> {
        if accounts.verify_password(&name, &current)?.is_none() {
            return Ok(None);
        }
        // Every session ends, this one too; it is replaced by a new one.
        accounts.set_password(&name, &new)?;
        let user = accounts.user(&name)?;
        user.map(|u| accounts.create_session(u.id, ttl)).transpose()
    })
    .await??;
    let Some(secret) = changed else {
        state.throttle.fail(account_key);
        return Err(ApiError::forbidden(
            "bad_credentials",
            "the current password is wrong",
        ));
    };
    state.audit.record(
        "password_changed",
        Some(&p.user.name),
        serde_json::json!({}),
    );
    let mut res = HttpResponse::NoContent();
    if matches!(p.via, Via::Session(_)) {
        res.cookie(session_cookie(
            &req,
            secret,
            CookieDuration::seconds(state.session_secs),
        ));
    }
    Ok(res.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_are_believed_only_behind_a_proxy() {
        let req = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "6.6.6.6, 192.168.1.20"))
            .to_http_request();
        assert_eq!(address_key(&req, false), "addr:127.0.0.1");
        assert_eq!(address_key(&req, true), "addr:192.168.1.20");
        let bare = actix_web::test::TestRequest::default()
            .peer_addr("10.0.0.7:5000".parse().unwrap())
            .to_http_request();
        assert_eq!(address_key(&bare, true), "addr:10.0.0.7");
    }

    #[test]
    fn the_rate_limiter_allows_max_per_minute_per_key() {
        let r = RateLimiter::default();
        for _ in 0..3 {
            assert!(r.take("a", 3).is_ok());
        }
        let wait = r.take("a", 3).unwrap_err();
        assert!((1..=61).contains(&wait), "{wait}");
        assert!(r.take("b", 3).is_ok());
    }

    #[test]
    fn throttle_counts_failures_per_key() {
        let t = Throttle::default();
        for _ in 0..3 {
            assert!(t.check("a", 3).is_ok());
            t.fail("a".into());
        }
        let wait = t.check("a", 3).unwrap_err();
        assert!(wait > 0 && wait <= THROTTLE_WINDOW.as_secs() + 1, "{wait}");
        assert!(t.check("b", 3).is_ok());
        t.clear("a");
        assert!(t.check("a", 3).is_ok());
    }
}
