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

/// The mapping of core errors to statuses: the caller's mistakes are 4xx, ours 5xx.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match &e {
            Error::BadRequest(_) => ApiError::bad_request(message),
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
            _ => {
                tracing::error!(error = %message, "request failed");
                ApiError::internal(message)
            }
        }
    }
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
        HttpResponse::build(self.status).json(self.body())
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
        J::Payload(e) => ApiError::bad_request(format!("reading the request body: {e}")),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// 404 in our shape for every path no route matches.
pub async fn no_route() -> HttpResponse {
    ApiError::not_found("no such endpoint").error_response()
}
