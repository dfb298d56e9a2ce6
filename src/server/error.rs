//! The API's one error type and the one place where errors become HTTP statuses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// An error as the API reports it: a status, a stable machine code and a message for
/// people.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (a 429's `Retry-After`).
    pub retry_after: Option<u64>,
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_request`, `payload_too_large`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 401: who is asking is unknown (no, expired or revoked credentials).
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 429 with `Retry-After: secs`.
    pub fn too_many(code: &'static str, message: impl Into<String>, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

/// The mapping of core errors to statuses: the caller's mistakes are 4xx, ours 5xx. Every
/// variant is named (no catch-all), so a new one does not compile until it is mapped here.
/// A full disk is 507 `disk_full` whatever variant carries it, recognised by the errno of
/// the I/O error in its source chain ([`Error::is_disk_full`]).
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = redact_paths(&e.to_string());
        match &e {
            Error::BadRequest(_) => ApiError::bad_request(message),
            Error::SourceChanged { .. } => {
                ApiError::new(StatusCode::CONFLICT, "source_changed", message)
            }
            Error::WriterBusy(_) => ApiError::new(StatusCode::CONFLICT, "writer_busy", message),
            Error::PathNotFound(_) => ApiError::not_found(message),
            Error::ModelMissing { .. } | Error::Config(_) => {
                // The request is fine; the installation is not.
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", message)
            }
            Error::DiskFull { .. } => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "disk_full", message)
            }
            Error::Locked(_) | Error::EmbedderMismatch { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
            }
            Error::Generate(_) if e.is_user_error() => ApiError::bad_request(message),
            Error::Embed { .. }
            | Error::Store { .. }
            | Error::Bm25 { .. }
            | Error::Accounts { .. }
            | Error::Shared { .. }
            | Error::Io { .. }
                if e.is_disk_full() =>
            {
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "disk_full",
                    format!(
                        "the disk holding Tanya's data is full: free some space and try again \
                         ({})",
                        redact_paths(&e.full_message())
                    ),
                )
            }
            Error::Generate(_)
            | Error::Embed { .. }
            | Error::Store { .. }
            | Error::Bm25 { .. }
            | Error::Accounts { .. }
            | Error::Shared { .. }
            | Error::Io { .. } => {
                let message = e.full_message();
                tracing::error!(error = %message, "request failed");
                ApiError::internal(redact_paths(&message))
            }
        }
    }
}

/// 408 for a request body that stalled or trickled (see [`super::slow`]).
pub fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!("{}: send it faster, or in one go", super::slow::TOO_SLOW),
    )
}

/// `message` with every absolute path shortened to its last component ("…/a.pdf"): where
/// Tanya keeps its data and its users' folders is no business of a browser. The server's
/// log keeps the whole message.
pub fn redact_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('/') {
        let at_word_start = rest[..start]
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '`' | '\'' | '"'));
        let len = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '`' | '\'' | '"' | ','))
            .unwrap_or(rest.len() - start);
        let path = rest[start..start + len].trim_end_matches([':', '.', ';']);
        out.push_str(&rest[..start]);
        if at_word_start && path.matches('/').count() >= 2 {
            let last = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("");
            out.push_str("…/");
            out.push_str(last);
            rest = &rest[start + path.len()..];
        } else {
            out.push('/');
            rest = &rest[start + 1..];
        }
    }
    out.push_str(rest);
    out
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::internal("a worker thread failed")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((
                actix_web::http::header::WWW_AUTHENTICATE,
                "Bearer realm=\"tanya\"",
            ));
        }
        res.json(self.body())
    }
}

/// Turns actix's own JSON extractor errors into our shape: 413 for a body over the
/// limit, 415 for a wrong content type, 400 naming the problem otherwise.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { length, limit } => ApiError::too_large(format!(
            "the request body is {length} bytes; the limit is {limit}"
        )),
        J::Overflow { limit } => ApiError::too_large(format!(
            "the request body is over the limit of {limit} bytes"
        )),
        J::ContentType => {
            ApiError::unsupported("send the request body as JSON (Content-Type: application/json)")
        }
        J::Deserialize(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
        J::Serialize(e) => ApiError::internal(e.to_string()),
        J::Payload(e) if super::slow::is_too_slow(&e) => too_slow(),
        J::Payload(e) => ApiError::bad_request(format!("reading the request body: {e}")),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// 404 in our shape for every path no route matches.
pub async fn no_route() -> HttpResponse {
    ApiError::not_found("no such endpoint").error_response()
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::PathBuf;

    use super::*;
    use crate::error::GenerateError;

    fn full_disk() -> std::io::Error {
        std::io::Error::from_raw_os_error(28)
    }

    fn status(e: Error) -> (u16, &'static str) {
        let api = ApiError::from(e);
        (api.status.as_u16(), api.code)
    }

    #[test]
    fn every_variant_maps_to_its_documented_status() {
        let p = || PathBuf::from("/data");
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::BadRequest("empty question".into()),
                400,
                "bad_request",
            ),
            (Error::PathNotFound(p()), 404, "not_found"),
            (Error::ModelMissing { path: p() }, 503, "not_configured"),
            (Error::Config("bad".into()), 503, "not_configured"),
            (
                Error::DiskFull {
                    dir: p(),
                    available_mb: 1,
                    required_mb: 100,
                },
                507,
                "disk_full",
            ),
            (Error::Locked(p()), 503, "not_ready"),
            (Error::WriterBusy("x".into()), 409, "writer_busy"),
            (
                Error::SourceChanged {
                    rel_path: "a.txt".into(),
                    why: "is no longer in its folder".into(),
                },
                409,
                "source_changed",
            ),
            (
                Error::EmbedderMismatch {
                    data_dir: p(),
                    built_with: "a".into(),
                    configured: "b".into(),
                },
                503,
                "not_ready",
            ),
            (
                GenerateError::PromptTooLong {
                    prompt_tokens: 10,
                    max_context: 5,
                }
                .into(),
                400,
                "bad_request",
            ),
            (
                GenerateError::InvalidInput("nul".into()).into(),
                400,
                "bad_request",
            ),
            (GenerateError::WorkerGone.into(), 500, "internal"),
            (GenerateError::Decode("boom".into()).into(), 500, "internal"),
            (Error::embed_msg("poisoned"), 500, "internal"),
            (
                Error::embed("embedding 3 texts", std::fmt::Error),
                500,
                "internal",
            ),
            (Error::store_msg("no payload"), 500, "internal"),
            (
                Error::store("searching", std::io::Error::other("broken")),
                500,
                "internal",
            ),
            (Error::bm25_msg("poisoned"), 500, "internal"),
            (
                Error::bm25("parsing", std::io::Error::other("broken")),
                500,
                "internal",
            ),
            (
                Error::io("reading x", std::io::Error::other("broken")),
                500,
                "internal",
            ),
        ];
        for (e, want_status, want_code) in cases {
            let shown = format!("{e:?}");
            assert_eq!(status(e), (want_status, want_code), "{shown}");
        }
    }

    #[test]
    fn a_full_disk_under_any_variant_is_507_by_errno() {
        let wrapped = [
            Error::store("flushing", full_disk()),
            Error::bm25("committing", full_disk()),
            Error::embed("loading", full_disk()),
            Error::io("writing manifest.json", full_disk()),
            Error::store(
                "flushing",
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            ),
        ];
        for e in wrapped {
            assert!(e.is_disk_full(), "{e:?}");
            assert!(e.is_user_error(), "a full disk is the user's to fix: {e:?}");
            assert_eq!(status(e), (507, "disk_full"));
        }
        // Deeper in the chain: an io::Error under another error.
        #[derive(Debug, thiserror::Error)]
        #[error("segment write failed")]
        struct Outer(#[source] std::io::Error);
        let deep = Error::bm25("committing", Outer(full_disk()));
        assert!(deep.is_disk_full());
        assert_eq!(status(deep), (507, "disk_full"));
        // The text alone never makes a full disk.
        let text_only = Error::store_msg("No space left on device (os error 28)");
        assert!(!text_only.is_disk_full());
        assert_eq!(status(text_only), (500, "internal"));
        let other = Error::store("flushing", std::io::Error::other("No space left on device"));
        assert!(!other.is_disk_full());
        assert_eq!(status(other), (500, "internal"));
    }

    #[test]
    fn the_source_chain_is_kept() {
        let e = Error::store("flushing", full_disk());
        let source = e.source().expect("the store error keeps its source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the source is the io::Error itself");
        assert_eq!(io.raw_os_error(), Some(28));
        // Display names only what we were doing; the chain adds the cause once.
        assert_eq!(e.to_string(), "vector store: flushing");
        assert_eq!(
            e.full_message(),
            format!("vector store: flushing: {}", full_disk())
        );
        assert!(Error::store_msg("x").source().is_none());
        let io = Error::io("reading a.txt", std::io::Error::other("denied"));
        assert_eq!(io.to_string(), "reading a.txt");
        assert_eq!(io.full_message(), "reading a.txt: denied");
    }

    #[test]
    fn an_internal_error_reports_its_whole_chain() {
        let api = ApiError::from(Error::bm25(
            "stored payload does not parse",
            std::io::Error::other("expected value at line 1"),
        ));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            api.message,
            "BM25 index: stored payload does not parse: expected value at line 1"
        );
    }

    #[test]
    fn messages_name_files_never_where_they_live() {
        assert_eq!(
            redact_paths("cannot read /srv/tanya/data/uploads/gaji.pdf: denied"),
            "cannot read …/gaji.pdf: denied"
        );
        assert_eq!(
            redact_paths("path not found: /home/aminah/Dasar Cuti"),
            "path not found: …/Dasar Cuti"
        );
        assert_eq!(
            redact_paths("writing `/var/lib/tanya/manifest.json`, (os error 28)"),
            "writing `…/manifest.json`, (os error 28)"
        );
        // Not paths: fractions, "and/or", a single leading slash, relative paths.
        for kept in [
            "1/2 of the days",
            "and/or",
            "GET /healthz",
            "hr/gaji.txt is rejected",
        ] {
            assert_eq!(redact_paths(kept), kept);
        }
        let api = ApiError::from(Error::io(
            "reading /srv/tanya/data/manifest.json",
            std::io::Error::other("denied"),
        ));
        assert_eq!(api.message, "reading …/manifest.json: denied");
    }
}
