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

/// The host of an `Origin` header (`http://localhost:8080` → `localhost`).
fn origin_host(origin: &str) -> Option<String> {
    let rest = origin.split_once("://")?.1;
    Some(host_name(rest.split('/').next().unwrap_or("")))
}

fn refuse(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    use actix_web::ResponseError;
    req.into_response(e.error_response())
}

/// Host and origin checks, metrics, security headers: around every request.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("AppState is registered");
    let host = request_host(&req);
    let mut res = match host {
        Some(h) if state.allowed_hosts.contains(&h) => {
            let cross_site = is_cross_site(&req, &h);
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

/// A state-changing request (not GET, HEAD or OPTIONS) whose `Origin` names
/// another host than `host`.
fn is_cross_site(req: &ServiceRequest, host: &str) -> bool {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    unsafe_method
        && req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| origin_host(o).as_deref() != Some(host))
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
    let system = actix_web::rt::System::new();
    let server = actix_web::HttpServer::new(move || app(state.clone()))
        .workers(workers)
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
            origin_host("http://localhost:8080").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            origin_host("https://evil.example/x").as_deref(),
            Some("evil.example")
        );
        assert_eq!(origin_host("null"), None);
    }
}
