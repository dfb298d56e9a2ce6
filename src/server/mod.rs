//! `tanya serve`: the JSON API, the OpenAI-compatible endpoint and the browser page over
//! actix-web, from one binary (the page is embedded at build time).
//!
//! Every response passes through one middleware ([`guard`]) that refuses foreign `Host`
//! headers (DNS rebinding) and cross-site writes, records metrics, and sets the security
//! headers (a strict Content-Security-Policy without inline script, `nosniff`,
//! `no-referrer`, `frame-ancestors 'none'`). Errors become statuses in one place
//! ([`error::ApiError`]).

mod answering;
mod api;
mod assets;
pub mod audit;
pub mod auth;
mod conversations;
mod documents;
mod error;
pub mod local;
mod metrics;
mod openai;
mod people;
mod slow;
pub mod tls;
mod types;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse};
use utoipa::OpenApi;

pub use documents::sanitize_name;
pub use error::ApiError;

use crate::accounts::{Accounts, Role};
use crate::Engine;
use auth::{Policy, Rule};

/// Largest JSON request body.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The Content-Security-Policy of everything this server sends (the source route
/// tightens it further).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
    worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// What every request handler shares.
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The people who may sign in, their sessions and tokens.
    pub accounts: Arc<Accounts>,
    /// Failed sign-ins, by account and by address.
    pub throttle: auth::Throttle,
    /// Who did what (`<data_dir>/audit/audit.jsonl`).
    pub audit: audit::Audit,
    /// Questions and searches per person and per token.
    pub rate: auth::RateLimiter,
    /// The SHA-256 of the command line's key (`server.json`), once the server listens.
    pub local_key: std::sync::OnceLock<Vec<u8>>,
    /// How long a sign-in lasts.
    pub session_secs: i64,
    pub uploads: Arc<documents::Uploads>,
    pub metrics: Arc<metrics::Metrics>,
    /// Answers being worked on (their threads are still running).
    pub answering: Arc<std::sync::atomic::AtomicUsize>,
    pub max_upload_bytes: u64,
    /// Lowercase host names a `Host` header may carry.
    pub allowed_hosts: Vec<String>,
}

impl AppState {
    /// Builds the state and starts the upload worker. `bound` is the address the server
    /// listens on (allowed as a host name too).
    pub fn new(engine: Arc<Engine>, bound: Option<SocketAddr>) -> crate::Result<AppState> {
        let server = &engine.config().server;
        let accounts = Arc::new(Accounts::open_with(
            engine.data_dir(),
            &engine.config().shared,
        )?);
        let audit = audit::Audit::open(engine.data_dir())?;
        let mut allowed_hosts: Vec<String> = server
            .allowed_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        if let Some(addr) = bound {
            let ip = match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            };
            if !addr.ip().is_unspecified() && !allowed_hosts.contains(&ip) {
                allowed_hosts.push(ip);
            }
            // Serving the network: the names other office PCs reach this machine by.
            if addr.ip().is_unspecified() {
                let hostname =
                    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                for name in machine_names(&hostname) {
                    if !allowed_hosts.contains(&name) {
                        allowed_hosts.push(name);
                    }
                }
            }
        }
        let metrics = Arc::new(metrics::Metrics::default());
        let uploads = documents::Uploads::start(Arc::clone(&engine), Arc::clone(&metrics))?;
        Ok(AppState {
            max_upload_bytes: server.max_upload_mb * 1024 * 1024,
            session_secs: (server.session_hours * 3600) as i64,
            engine,
            accounts,
            throttle: auth::Throttle::default(),
            audit,
            rate: auth::RateLimiter::default(),
            local_key: std::sync::OnceLock::new(),
            uploads,
            metrics,
            answering: Arc::default(),
            allowed_hosts,
        })
    }
}

impl AppState {
    /// Runs `f` on the accounts database on a blocking thread (SQLite and password
    /// hashing must not hold up the async workers).
    pub async fn with_accounts<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Accounts) -> crate::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let accounts = Arc::clone(&self.accounts);
        Ok(web::block(move || f(&accounts)).await??)
    }
}

/// The names a machine called `hostname` is reached by on an office network: the name
/// itself and its multicast-DNS name (`name.local`), lowercased.
fn machine_names(hostname: &str) -> Vec<String> {
    let name = hostname.trim().to_ascii_lowercase();
    let plain = name.split('.').next().unwrap_or("").to_string();
    if plain.is_empty() || plain == "localhost" {
        return Vec::new();
    }
    let mut names = vec![plain.clone(), format!("{plain}.local")];
    if name != plain && !names.contains(&name) {
        names.push(name);
    }
    names
}

/// The host name of a `Host` header value, without the port, lowercased.
fn host_name(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    if v.starts_with('[') {
        // [::1]:8080
        return match v.find(']') {
            Some(i) => v[..=i].to_string(),
            None => v,
        };
    }
    match v.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => v,
    }
}

fn refuse(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    use actix_web::ResponseError;
    req.into_response(e.error_response())
}

/// Host and origin checks, metrics, security headers: around every request.
async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let body = actix_web::HttpMessage::take_payload(&mut req);
    req.set_payload(slow::deadline(body));
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("AppState is registered");
    let host = request_host(&req);
    let mut res = match host {
        Some(h) if state.allowed_hosts.contains(&h) => {
            let cross_site = is_cross_site(&req);
            if cross_site {
                refuse(
                    req,
                    ApiError::forbidden(
                        "cross_origin",
                        "requests from other sites are not accepted",
                    ),
                )
            } else {
                let admitted = match rule_of(&req) {
                    Some(rule) => auth::admit(&state, &req, rule.policy, rule.limited).await,
                    // No route takes this path and method: the router answers 404 or
                    // 405, and no handler runs.
                    None => Ok(()),
                };
                match admitted {
                    Ok(()) => next.call(req).await?.map_into_boxed_body(),
                    Err(e) => refuse(req, e),
                }
            }
        }
        other => {
            let shown = other.unwrap_or_else(|| "(none)".into());
            refuse(
                req,
                ApiError::forbidden(
                    "host_not_allowed",
                    format!(
                        "the host `{shown}` is not allowed; open Tanya at one of: {} \
                         (server.allowed_hosts)",
                        state.allowed_hosts.join(", ")
                    ),
                ),
            )
        }
    };
    record_request(&state, &res, started);
    set_security_headers(res.headers_mut());
    Ok(res)
}

/// The host a request is addressed to, lower-cased without the port: the `Host`
/// header, or the URI's host under HTTP/2.
fn request_host(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
        // HTTP/2 carries the host in the URI instead.
        .or_else(|| req.uri().host().map(|h| h.to_ascii_lowercase()))
}

/// A state-changing request (not GET, HEAD or OPTIONS) whose `Origin` is another origin
/// than the one the request is addressed to: another host, or the same host on another
/// port (`http://127.0.0.1:9999` is another site than `127.0.0.1:8080`).
fn is_cross_site(req: &ServiceRequest) -> bool {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return false;
    };
    let addressed = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .map(|a| authority(&a, req.connection_info().scheme()));
    unsafe_method && origin_authority(origin) != addressed
}

/// `host:port` of an authority, lowercased, with the scheme's default port filled in.
fn authority(value: &str, scheme: &str) -> String {
    let host = host_name(value);
    let rest = value.trim()[host.len().min(value.trim().len())..].trim_start_matches(':');
    let port = if rest.is_empty() {
        if scheme == "https" {
            "443"
        } else {
            "80"
        }
    } else {
        rest
    };
    format!("{host}:{port}")
}

/// `host:port` of an `Origin` header (`http://localhost:8080` → `localhost:8080`,
/// `http://localhost` → `localhost:80`); `None` for an opaque origin (`null`).
fn origin_authority(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let value = rest.split('/').next().unwrap_or("");
    Some(authority(value, &scheme.to_ascii_lowercase()))
}

/// Counts the answered request in the metrics, by route pattern, method and status.
fn record_request(state: &AppState, res: &ServiceResponse<BoxBody>, started: Instant) {
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    state.metrics.request(
        &route,
        res.request().method().as_str(),
        res.status().as_u16(),
        started.elapsed(),
    );
}

/// Security headers on every response, unless the handler set them itself.
fn set_security_headers(h: &mut header::HeaderMap) {
    let set = |h: &mut header::HeaderMap, name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, header::HeaderValue::from_static(value));
        }
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tanya",
        description = "Ask your own documents, privately, offline. See docs/api.md."
    ),
    paths(
        auth::sign_in,
        auth::whoami,
        auth::sign_out,
        auth::change_password,
        people::users,
        people::add_user,
        people::update_user,
        people::remove_user,
        people::tokens,
        people::create_token,
        people::revoke_token,
        local::ingest,
        local::backup_route,
        conversations::list,
        conversations::get,
        conversations::rename,
        conversations::delete,
        conversations::export,
        api::collections,
        api::set_collection_groups,
        api::ask,
        api::search,
        api::info,
        api::healthz,
        api::readyz,
        api::metrics,
        documents::list,
        documents::get,
        documents::upload,
        documents::delete,
        documents::set_groups,
        documents::source,
        documents::text,
        openai::models,
        openai::chat,
    ),
    components(schemas(
        auth::SignIn,
        auth::SessionView,
        auth::PasswordChange,
        people::NewUser,
        people::UserChange,
        people::NewTokenRequest,
        local::IngestRequest,
        local::BackupRequest,
        local::BackupReport,
        conversations::ConversationView,
        conversations::TurnView,
        conversations::Rename,
        api::CollectionView,
        types::AskRequest,
        types::AskResponse,
        types::SearchRequest,
        types::SearchResponse,
        types::PassageView,
        crate::engine::Citation,
        types::Timings,
        types::DocumentView,
        documents::GroupsChange,
        types::DocumentList,
        types::Deleted,
        types::DocumentText,
        types::PageSpan,
        types::Info,
        types::Health,
        error::ErrorBody,
        error::ErrorDetail,
        openai::ChatRequest,
        openai::ChatMessageIn,
        openai::ChatResponse,
        openai::Choice,
        openai::MessageOut,
        openai::Usage,
        openai::ModelList,
        openai::ModelInfo,
    ))
)]
struct ApiDoc;

/// The OpenAPI description of the API, generated from the handlers and types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

/// Declares every route with its method, handler and [`Policy`]: the one table both the
/// router and the guard read, so a route cannot be added without saying who may call it.
/// A route marked `limited` costs the machine real work: each person (and token) may call
/// it `server.requests_per_minute` times a minute.
macro_rules! routes {
    (@limited) => { false };
    (@limited limited) => { true };
    ($($path:literal { $($method:ident => $handler:path, $policy:expr $(, $limited:ident)?;)+ })*) => {
        /// Every route, its method, who may call it and whether it is rate-limited.
        pub const ROUTES: &[Rule] = &[$($(Rule {
            path: $path,
            method: stringify!($method),
            policy: $policy,
            limited: routes!(@limited $($limited)?),
        },)+)*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.service(resource($path)$(.route(web::$method().to($handler)))+);)*
        }
    };
}

const ANYONE: Policy = Policy::Anyone;
const READER: Policy = Policy::AtLeast(Role::Reader);
const EDITOR: Policy = Policy::AtLeast(Role::Editor);
const ADMIN: Policy = Policy::AtLeast(Role::Admin);

routes! {
    "/api/session" {
        post => auth::sign_in, ANYONE;
        get => auth::whoami, READER;
        delete => auth::sign_out, READER;
    }
    "/api/session/password" { post => auth::change_password, READER; }
    "/api/users" {
        get => people::users, ADMIN;
        post => people::add_user, ADMIN;
    }
    "/api/users/{name}" {
        patch => people::update_user, ADMIN;
        delete => people::remove_user, ADMIN;
    }
    "/api/tokens" {
        get => people::tokens, READER;
        post => people::create_token, READER;
    }
    "/api/tokens/{id}" { delete => people::revoke_token, READER; }
    "/api/conversations" { get => conversations::list, READER; }
    "/api/conversations/{id}" {
        get => conversations::get, READER;
        patch => conversations::rename, READER;
        delete => conversations::delete, READER;
    }
    "/api/conversations/{id}/export" { get => conversations::export, READER; }
    "/api/ingest" { post => local::ingest, Policy::Local; }
    "/api/backup" { post => local::backup_route, Policy::Local; }
    "/api/collections" { get => api::collections, READER; }
    "/api/collections/{name}" { patch => api::set_collection_groups, ADMIN; }
    "/api/ask" { post => api::ask, READER, limited; }
    "/api/search" { post => api::search, READER, limited; }
    "/api/info" { get => api::info, READER; }
    "/api/openapi.json" { get => openapi_json, READER; }
    "/api/documents" {
        get => documents::list, READER;
        post => documents::upload, EDITOR;
    }
    "/api/documents/{id}" {
        get => documents::get, READER;
        delete => documents::delete, EDITOR;
        patch => documents::set_groups, ADMIN;
    }
    "/api/documents/{id}/source" { get => documents::source, READER; }
    "/api/documents/{id}/text" { get => documents::text, READER; }
    "/v1/models" { get => openai::models, READER; }
    "/v1/chat/completions" { post => openai::chat, READER, limited; }
    "/healthz" { get => api::healthz, ANYONE; }
    "/readyz" { get => api::readyz, ANYONE; }
    "/metrics" { get => api::metrics, Policy::Metrics; }
    "/" {
        get => assets::index, ANYONE;
        head => assets::index, ANYONE;
    }
}

/// The routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_JSON_BYTES)
            .error_handler(|e, _| error::json_error(e).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
    )
    .configure(register)
    // The page's files (the sign-in screen is one of them): anyone may fetch them.
    .service(
        web::resource(ASSETS)
            .route(web::get().to(assets::file))
            .route(web::head().to(assets::file))
            .default_service(web::to(error::no_route)),
    );
}

/// The pattern of the page's files: what no other route takes.
pub const ASSETS: &str = "/{path:.*}";

/// The page's files, anyone's (the sign-in screen is one of them).
pub const ASSET_RULES: &[Rule] = &[
    Rule {
        path: ASSETS,
        method: "get",
        policy: ANYONE,
        limited: false,
    },
    Rule {
        path: ASSETS,
        method: "head",
        policy: ANYONE,
        limited: false,
    },
];

/// The rule of the route `req` is addressed to: `None` when no route takes its path and
/// method (the router then answers 404 or 405, and no handler runs).
fn rule_of(req: &ServiceRequest) -> Option<&'static Rule> {
    let pattern = req.match_pattern()?;
    let method = req.method().as_str().to_ascii_lowercase();
    ROUTES
        .iter()
        .chain(ASSET_RULES)
        .find(|r| r.path == pattern && r.method == method)
}

/// A resource whose wrong-method answer is a 405 in the API's error shape.
fn resource(path: &str) -> actix_web::Resource {
    use actix_web::ResponseError;
    web::resource(path).default_service(web::to(|| async {
        ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
        .error_response()
    }))
}

/// The whole application: state, routes, and the guard around them.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .configure(configure)
        .default_service(web::to(error::no_route))
        .wrap(from_fn(guard))
}

/// Descriptors kept for everything but connections: the stores' files, the models,
/// parse workers' pipes.
const RESERVED_FDS: u64 = 512;

/// Raises this process's open-file limit to the most it may have (the soft limit is often
/// 1,024 while the hard one is far higher), and shares what is left after
/// [`RESERVED_FDS`] among the HTTP workers as their connection cap.
fn connections_per_worker(workers: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let per_worker = limit.saturating_sub(RESERVED_FDS) / workers.max(1) as u64;
    let per_worker = per_worker.clamp(64, 25_000) as usize;
    tracing::info!(open_files = limit, per_worker, "connection limits");
    per_worker
}

/// Serves until interrupted, over HTTPS when `server.tls_cert` and `server.tls_key` are
/// set. `on_bound` is called with the address actually bound (the port may have been 0)
/// and whether it speaks HTTPS.
pub fn serve(
    engine: Arc<Engine>,
    bind: &str,
    on_bound: impl FnOnce(SocketAddr, bool),
) -> crate::Result<()> {
    let workers = crate::config::Config::resolve_threads(engine.config().server.workers);
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|e| crate::Error::BadRequest(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::Error::io("reading the bound address", e))?;
    let tls = match engine.config().tls_files() {
        Some((cert, key)) => Some(tls::server_config(&cert, &key)?),
        None => None,
    };
    let https = tls.is_some();
    let state = web::Data::new(AppState::new(engine, Some(addr))?);
    let server_file = local::publish(&state, addr, https)?;
    let per_worker = connections_per_worker(workers);
    let system = actix_web::rt::System::new();
    let server = actix_web::HttpServer::new(move || app(state.clone()))
        .workers(workers)
        // Headers within 5 s, an idle keep-alive connection closed after 5 s, bodies as
        // slow::deadline says, and no more connections than the descriptors allow.
        .client_request_timeout(std::time::Duration::from_secs(5))
        .client_disconnect_timeout(std::time::Duration::from_secs(2))
        .keep_alive(std::time::Duration::from_secs(5))
        .max_connections(per_worker);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config),
        None => server.listen(listener),
    }
    .map_err(|e| crate::Error::io(format!("listening on {addr}"), e))?
    .run();
    on_bound(addr, https);
    let served = system
        .block_on(server)
        .map_err(|e| crate::Error::io("serving HTTP", e));
    let _ = std::fs::remove_file(server_file);
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_is_reached_by_its_name_and_its_local_name() {
        assert_eq!(
            machine_names("PEJABAT-01\n"),
            ["pejabat-01", "pejabat-01.local"]
        );
        assert_eq!(
            machine_names("srv.kl.example"),
            ["srv", "srv.local", "srv.kl.example"]
        );
        assert!(machine_names("").is_empty());
        assert!(machine_names("localhost").is_empty());
    }

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("LOCALHOST"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("evil.example:80"), "evil.example");
        assert_eq!(
            origin_authority("https://evil.example/x").as_deref(),
            Some("evil.example:443")
        );
    }

    #[test]
    fn origins_compare_host_and_port() {
        assert_eq!(
            origin_authority("http://127.0.0.1:9999").as_deref(),
            Some("127.0.0.1:9999")
        );
        assert_eq!(
            origin_authority("http://LocalHost").as_deref(),
            Some("localhost:80")
        );
        assert_eq!(
            origin_authority("https://tanya.example/").as_deref(),
            Some("tanya.example:443")
        );
        assert_eq!(authority("127.0.0.1:8080", "http"), "127.0.0.1:8080");
        assert_eq!(authority("localhost", "http"), "localhost:80");
        assert_eq!(authority("[::1]:8080", "http"), "[::1]:8080");
        assert_ne!(
            origin_authority("http://127.0.0.1:9999").unwrap(),
            authority("127.0.0.1:8080", "http")
        );
        assert_eq!(origin_authority("null"), None);
    }
}
