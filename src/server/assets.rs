//! The browser page, embedded into the binary at build time (see build.rs).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::error::ApiError;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

fn find(path: &str) -> Option<&'static (&'static str, &'static str, &'static [u8])> {
    ASSETS.iter().find(|(p, _, _)| *p == path)
}

fn respond(
    req: &HttpRequest,
    asset: &'static (&'static str, &'static str, &'static [u8]),
) -> HttpResponse {
    let (_, content_type, bytes) = asset;
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..8]));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.content_type(*content_type)
        .insert_header((header::ETAG, etag))
        // Revalidate every time: a new binary may carry a new page.
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        res.finish()
    } else {
        res.body(*bytes)
    }
}

pub async fn index(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let asset = find("/index.html").ok_or_else(|| ApiError::not_found("the page was not built"))?;
    Ok(respond(&req, asset))
}

/// A file of the page; for any other path a browser navigates to (outside `/api/` and
/// `/v1/`), the page itself, which shows the sign-in screen to whoever is signed out.
pub async fn file(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let wanted = format!("/{}", path.into_inner());
    if let Some(asset) = find(&wanted) {
        return Ok(respond(&req, asset));
    }
    let api = wanted.starts_with("/api/") || wanted.starts_with("/v1/") || wanted == "/metrics";
    let navigating = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if navigating && !api {
        return index(req).await;
    }
    Err(ApiError::not_found("no such endpoint"))
}

/// Whether pdf.js is part of this build.
#[allow(dead_code)]
pub fn have_pdfjs() -> bool {
    HAVE_PDFJS
}
