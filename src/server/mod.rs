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
mod conversations;
mod documents;
mod error;
mod metrics;
mod openai;
mod slow;
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

use crate::engine::Access;
use crate::Engine;

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
    /// The groups API callers belong to (`server.groups`).
    pub access: Access,
    pub uploads: Arc<documents::Uploads>,
    pub conversations: conversations::Conversations,
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
        let access = Access::for_groups(server.groups.clone())?;
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
        }
        let metrics = Arc::new(metrics::Metrics::default());
        let uploads = documents::Uploads::start(Arc::clone(&engine), Arc::clone(&metrics))?;
        Ok(AppState {
            max_upload_bytes: server.max_upload_mb * 1024 * 1024,
            engine,
            access,
            uploads,
            conversations: conversations::Conversations::default(),
            metrics,
            answering: Arc::default(),
            allowed_hosts,
        })
    }
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
                next.call(req).await?.map_into_boxed_body()
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
        documents::source,
        documents::text,
        openai::models,
        openai::chat,
    ),
    components(schemas(
        types::AskRequest,
        types::AskResponse,
        types::SearchRequest,
        types::SearchResponse,
        types::PassageView,
        crate::engine::Citation,
        types::Timings,
        types::DocumentView,
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
    .service(resource("/api/ask").route(web::post().to(api::ask)))
    .service(resource("/api/search").route(web::post().to(api::search)))
    .service(resource("/api/info").route(web::get().to(api::info)))
    .service(resource("/api/openapi.json").route(web::get().to(openapi_json)))
    .service(
        resource("/api/documents")
            .route(web::get().to(documents::list))
            .route(web::post().to(documents::upload)),
    )
    .service(
        resource("/api/documents/{id}")
            .route(web::get().to(documents::get))
            .route(web::delete().to(documents::delete)),
    )
    .service(resource("/api/documents/{id}/source").route(web::get().to(documents::source)))
    .service(resource("/api/documents/{id}/text").route(web::get().to(documents::text)))
    .service(resource("/v1/models").route(web::get().to(openai::models)))
    .service(resource("/v1/chat/completions").route(web::post().to(openai::chat)))
    .service(resource("/healthz").route(web::get().to(api::healthz)))
    .service(resource("/readyz").route(web::get().to(api::readyz)))
    .service(resource("/metrics").route(web::get().to(api::metrics)))
    .service(
        resource("/")
            .route(web::get().to(assets::index))
            .route(web::head().to(assets::index)),
    )
    .service(
        web::resource("/{path:.*}")
            .route(web::get().to(assets::file))
            .route(web::head().to(assets::file))
            .default_service(web::to(error::no_route)),
    );
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

/// Serves until interrupted. `on_bound` is called with the address actually bound (the
/// port may have been 0).
pub fn serve(
    engine: Arc<Engine>,
    bind: &str,
    on_bound: impl FnOnce(SocketAddr),
) -> crate::Result<()> {
    let workers = crate::config::Config::resolve_threads(engine.config().server.workers);
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|e| crate::Error::BadRequest(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| crate::Error::io("reading the bound address", e))?;
    let state = web::Data::new(AppState::new(engine, Some(addr))?);
    let per_worker = connections_per_worker(workers);
    let system = actix_web::rt::System::new();
    let server = actix_web::HttpServer::new(move || app(state.clone()))
        .workers(workers)
        // Headers within 5 s, an idle keep-alive connection closed after 5 s, bodies as
        // slow::deadline says, and no more connections than the descriptors allow.
        .client_request_timeout(std::time::Duration::from_secs(5))
        .client_disconnect_timeout(std::time::Duration::from_secs(2))
        .keep_alive(std::time::Duration::from_secs(5))
        .max_connections(per_worker)
        .listen(listener)
        .map_err(|e| crate::Error::io(format!("listening on {addr}"), e))?
        .run();
    on_bound(addr);
    system
        .block_on(server)
        .map_err(|e| crate::Error::io("serving HTTP", e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
