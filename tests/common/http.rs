//! HTTP helpers for the tests that drive the API in process (`actix_web::test`).

#![allow(dead_code, unused_macros, unused_imports)]

use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use serde_json::Value;

/// A response header as a string ("" when absent).
pub fn hdr(headers: &actix_web::http::header::HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

pub fn post_json(path: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header((header::HOST, "localhost:8080"))
        .set_json(body)
}

/// A POST with a hand-made body and content type.
pub fn raw_post(
    path: &str,
    content_type: impl Into<String>,
    body: impl Into<bytes::Bytes>,
) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header((header::HOST, "localhost"))
        .insert_header((header::CONTENT_TYPE, content_type.into()))
        .set_payload(body.into())
}

pub fn get(path: &str) -> TestRequest {
    TestRequest::get()
        .uri(path)
        .insert_header((header::HOST, "localhost:8080"))
}

/// Parses a server-sent-event body into (event, data) pairs; unnamed events are "".
pub fn sse(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|frame| {
            let mut event = String::new();
            let mut data = None;
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.to_string());
                }
            }
            data.map(|d| (event, d))
        })
        .collect()
}

pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "tanya-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn error_of(res: actix_web::dev::ServiceResponse) -> (StatusCode, String, String) {
    let status = res.status();
    let body: Value = test::read_body_json(res).await;
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Polls a document until it is indexed or rejected.
macro_rules! wait_for_status {
    ($app:expr, $id:expr) => {{
        let started = std::time::Instant::now();
        loop {
            let doc: serde_json::Value = actix_web::test::read_body_json(
                actix_web::test::call_service(
                    $app,
                    crate::common::http::get(&format!("/api/documents/{}", $id)).to_request(),
                )
                .await,
            )
            .await;
            let status = doc["status"].as_str().unwrap_or_default().to_string();
            if status == "indexed" || status == "rejected" {
                break doc;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(120),
                "still {status}"
            );
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
}
pub(crate) use wait_for_status;

/// Adds `name` (with `role` and `groups`) to the server's accounts, unless they exist,
/// and returns a new API token of theirs acting with that role.
pub fn token_for(
    state: &tanya::server::AppState,
    name: &str,
    role: tanya::accounts::Role,
    groups: &[&str],
) -> String {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    token_in(&state.accounts, name, role, &groups)
}

/// [`token_for`] on an accounts database (e.g. one a `tanya serve` will open).
pub fn token_in(
    accounts: &tanya::accounts::Accounts,
    name: &str,
    role: tanya::accounts::Role,
    groups: &[String],
) -> String {
    if accounts.user(name).unwrap().is_none() {
        accounts
            .add_user(name, "kata-laluan-ujian", role, groups)
            .unwrap();
    }
    accounts.create_token(name, "tests", role).unwrap().secret
}

/// The application with every request that carries no `Authorization` header sent with
/// `token` (the tests' signed-in caller).
macro_rules! signed_in {
    ($state:expr, $token:expr) => {{
        use actix_web::dev::Service as _;
        let token: String = $token;
        actix_web::test::init_service(tanya::server::app($state).wrap_fn(move |mut req, srv| {
            if !req
                .headers()
                .contains_key(actix_web::http::header::AUTHORIZATION)
            {
                req.headers_mut().insert(
                    actix_web::http::header::AUTHORIZATION,
                    actix_web::http::header::HeaderValue::from_str(&format!("Bearer {token}"))
                        .unwrap(),
                );
            }
            srv.call(req)
        }))
        .await
    }};
}
pub(crate) use signed_in;
