//! The HTTP API driven in process (`actix_web::test`) over the real engine: real models,
//! real stores, a small real corpus. Every route is exercised, including the streamed
//! answer, the OpenAI-compatible endpoint, uploads and the bad inputs of docs/api.md.

mod common;

use common::http::{
    error_of, get, hdr, multipart, post_json, raw_post, signed_in, sse, token_for, wait_for_status,
};

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use serde_json::{json, Value};
use tanya::accounts::Role;
use tanya::server::AppState;
use tanya::Engine;

const ASK_MS: &str = "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?";
const UPLOAD_LIMIT_MB: u64 = 1;

struct Fixture {
    state: web::Data<AppState>,
    /// An API token of an editor in the group `public`, whom the tests act as.
    token: String,
    _dir: tempfile::TempDir,
}

/// One engine over three sample documents (a PDF, a DOCX, Markdown), served by one
/// AppState shared by the tests of this binary.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        for name in ["cuti-tahunan.pdf", "cuti-sakit.docx", "waktu-bekerja.md"] {
            std::fs::copy(common::corpus_dir().join(name), docs.join(name)).unwrap();
        }
        let mut config = common::config(&dir.path().join("data"));
        config.server.max_upload_mb = UPLOAD_LIMIT_MB;
        config.generator.max_new_tokens = 24;
        let engine = Engine::open(config).unwrap();
        let report = common::ingest_public(&engine, &docs);
        assert_eq!(report.indexed.len(), 3, "{report:?}");
        let state = AppState::new(Arc::new(engine), None).unwrap();
        let token = token_for(&state, "editor", Role::Editor, &["public"]);
        Fixture {
            state: web::Data::new(state),
            token,
            _dir: dir,
        }
    })
}

macro_rules! service {
    () => {
        signed_in!(fixture().state.clone(), fixture().token.clone())
    };
}

#[actix_web::test]
async fn ask_answers_with_citations_and_a_conversation() {
    let app = service!();
    let res = test::call_service(
        &app,
        post_json("/api/ask", json!({ "question": ASK_MS })).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = test::read_body_json(res).await;
    let answer = body["answer"].as_str().unwrap();
    assert!(answer.contains("16 hari"), "{answer}");
    assert_eq!(body["lang"], "ms");
    assert_eq!(body["abstained"], false);
    let cited = body["citations"].as_array().unwrap();
    assert!(
        cited
            .iter()
            .any(|c| c["rel_path"] == "cuti-tahunan.pdf" && c["page"] == 2),
        "{cited:?}"
    );
    assert!(!body["passages"].as_array().unwrap().is_empty());
    let conversation = body["conversation_id"].as_str().unwrap().to_string();

    // A short follow-up names no topic; the conversation supplies it.
    let res = test::call_service(
        &app,
        post_json(
            "/api/ask",
            json!({ "question": "Bagaimana pula selepas 6 tahun?", "conversation_id": conversation }),
        )
        .to_request(),
    )
    .await;
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["conversation_id"], conversation.as_str());
    assert_eq!(body["abstained"], false, "{body}");
    assert!(
        body["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["rel_path"] == "cuti-tahunan.pdf"),
        "{body}"
    );
}

#[actix_web::test]
async fn ask_streams_passages_tokens_citations_done() {
    let app = service!();
    let req = post_json("/api/ask", json!({ "question": ASK_MS }))
        .insert_header((header::ACCEPT, "text/event-stream"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(hdr(res.headers(), header::CONTENT_TYPE).starts_with("text/event-stream"));
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let events = sse(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"passages"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let citations_at = names.iter().position(|n| *n == "citations").unwrap();
    let tokens: Vec<&str> = names[1..citations_at].to_vec();
    assert!(
        tokens.len() >= 2 && tokens.iter().all(|n| *n == "token"),
        "{names:?}"
    );
    let streamed: String = events[1..citations_at]
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let final_: Value = serde_json::from_str(&events[citations_at].1).unwrap();
    assert_eq!(final_["answer"].as_str().unwrap(), streamed);
    assert!(streamed.contains("16 hari"));
    let passages: Value = serde_json::from_str(&events[0].1).unwrap();
    let first = &passages["passages"][0];
    assert!(first["rel_path"].is_string() && first["snippet"].is_string() && first["rank"] == 1);
}

/// The generative tests run one after the other in one test, and unload the model at
/// the end: a llama.cpp model still loaded while the process exits can abort it.
#[actix_web::test]
async fn generative_answers_stream_and_stop_when_the_client_leaves() {
    generative_answers_stream_tokens().await;
    a_client_that_goes_away_cancels_generation().await;
    while fixture().state.answering.load(Ordering::SeqCst) > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    fixture().state.engine.unload_generator();
}

async fn generative_answers_stream_tokens() {
    let app = service!();
    let req = post_json(
        "/api/ask",
        json!({ "question": "How many days of annual leave do I get after 3 years of service?", "mode": "generative" }),
    )
    .insert_header((header::ACCEPT, "text/event-stream"))
    .to_request();
    let res = test::call_service(&app, req).await;
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let events = sse(&body);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"passages"), "{body}");
    assert!(
        names.iter().filter(|n| **n == "token").count() >= 2,
        "{names:?}"
    );
    let done: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(done["mode"], "generative");
    assert!(done["timings"]["time_to_first_token_ms"].as_f64().unwrap() > 0.0);
}

async fn a_client_that_goes_away_cancels_generation() {
    let state = fixture().state.clone();
    let app = signed_in!(state.clone(), fixture().token.clone());
    let req = post_json(
        "/api/ask",
        json!({ "question": "What must I do before travelling for work?", "mode": "generative" }),
    )
    .insert_header((header::ACCEPT, "text/event-stream"))
    .to_request();
    let res = test::call_service(&app, req).await;
    let mut body = res.into_body();
    // Read up to the passages event, then hang up while the model reads its prompt
    // (seconds on this machine; the whole answer would take longer still).
    let mut seen = String::new();
    while !seen.contains("event: passages") {
        let chunk = std::future::poll_fn(|cx| {
            actix_web::body::MessageBody::poll_next(std::pin::Pin::new(&mut body), cx)
        })
        .await
        .expect("the stream ended before the passages")
        .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let running = state.answering.load(Ordering::SeqCst);
    assert!(running >= 1, "the answer thread should still be working");
    let hung_up = Instant::now();
    drop(body);
    // Other tests may be answering concurrently; wait for this one's thread to go.
    while state.answering.load(Ordering::SeqCst) >= running {
        assert!(
            hung_up.elapsed() < Duration::from_secs(3),
            "generation still running {:?} after the client left",
            hung_up.elapsed()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn search_returns_located_passages() {
    let app = service!();
    let res = test::call_service(
        &app,
        post_json(
            "/api/search",
            json!({ "query": "waktu bekerja pejabat", "limit": 3 }),
        )
        .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = test::read_body_json(res).await;
    let hits = body["passages"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["rel_path"], "waktu-bekerja.md");
    assert!(hits
        .iter()
        .all(|h| h["char_end"].as_u64() > h["char_start"].as_u64()));
    let res = test::call_service(
        &app,
        post_json("/api/search", json!({ "query": "cuti", "limit": 0 })).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn bad_requests_get_clear_errors_in_one_shape() {
    let app = service!();
    // Malformed JSON names the problem.
    let req = raw_post("/api/ask", "application/json", "{\"question\": ").to_request();
    let (status, code, message) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(
        message.contains("malformed JSON") && message.contains("line 1"),
        "{message}"
    );
    // A misspelt field is named too.
    let (status, _, message) = error_of(
        test::call_service(
            &app,
            post_json("/api/ask", json!({ "qestion": "x" })).to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("qestion"), "{message}");
    // Not JSON at all.
    let req = raw_post("/api/ask", "text/plain", "question").to_request();
    let (status, code, _) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    // Over-long and empty questions.
    let long = "cuti ".repeat(500);
    for q in [long.as_str(), "   "] {
        let (status, _, message) = error_of(
            test::call_service(
                &app,
                post_json("/api/ask", json!({ "question": q })).to_request(),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        assert!(message.contains("question"), "{message}");
    }
    // An unknown collection, an unknown route, a wrong method.
    let (status, _, _) = error_of(
        test::call_service(
            &app,
            post_json(
                "/api/ask",
                json!({ "question": "cuti", "collection": "hr" }),
            )
            .to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, code, _) =
        error_of(test::call_service(&app, get("/api/nothing-here").to_request()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, code, _) =
        error_of(test::call_service(&app, get("/api/ask").to_request()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    // Generative mode for a question without passages still validates first.
    let (status, _, _) = error_of(
        test::call_service(
            &app,
            post_json("/api/ask", json!({ "question": "x", "mode": "poetry" })).to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn foreign_hosts_and_cross_site_writes_are_refused() {
    let app = service!();
    let req = TestRequest::get()
        .uri("/api/info")
        .insert_header((header::HOST, "attacker.example:8080"))
        .to_request();
    let (status, code, message) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "host_not_allowed")
    );
    assert!(message.contains("attacker.example"), "{message}");
    let req = post_json("/api/ask", json!({ "question": ASK_MS }))
        .insert_header((header::ORIGIN, "http://attacker.example"))
        .to_request();
    let (status, code, _) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "cross_origin")
    );
    // The page's own origin is fine.
    let req = post_json("/api/search", json!({ "query": "cuti" }))
        .insert_header((header::ORIGIN, "http://localhost:8080"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    for host in ["127.0.0.1:8080", "[::1]:8080", "LOCALHOST"] {
        let req = TestRequest::get()
            .uri("/healthz")
            .insert_header((header::HOST, host))
            .to_request();
        assert_eq!(
            test::call_service(&app, req).await.status(),
            StatusCode::OK,
            "{host}"
        );
    }
}

#[actix_web::test]
async fn documents_list_source_and_text() {
    let app = service!();
    let body: Value =
        test::read_body_json(test::call_service(&app, get("/api/documents").to_request()).await)
            .await;
    let docs = body["documents"].as_array().unwrap();
    let pdf = docs
        .iter()
        .find(|d| d["name"] == "cuti-tahunan.pdf")
        .expect("pdf listed");
    assert_eq!(pdf["status"], "indexed");
    assert_eq!(pdf["origin"], "folder");
    assert!(pdf["pages"].as_u64().unwrap() >= 2 && pdf["chunks"].as_u64().unwrap() > 0);
    let id = pdf["id"].as_str().unwrap();

    let one: Value = test::read_body_json(
        test::call_service(&app, get(&format!("/api/documents/{id}")).to_request()).await,
    )
    .await;
    assert_eq!(one["name"], "cuti-tahunan.pdf");

    let res = test::call_service(
        &app,
        get(&format!("/api/documents/{id}/source")).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(hdr(res.headers(), header::CONTENT_TYPE), "application/pdf");
    assert!(hdr(res.headers(), header::CONTENT_SECURITY_POLICY).contains("sandbox"));
    let bytes = test::read_body(res).await;
    assert!(bytes.starts_with(b"%PDF-"));

    // Markdown (like HTML) is served as plain text, never as a page of this origin.
    let md = docs
        .iter()
        .find(|d| d["name"] == "waktu-bekerja.md")
        .unwrap();
    let res = test::call_service(
        &app,
        get(&format!(
            "/api/documents/{}/source",
            md["id"].as_str().unwrap()
        ))
        .to_request(),
    )
    .await;
    assert!(hdr(res.headers(), header::CONTENT_TYPE).starts_with("text/plain"));

    // Citation offsets index the extracted text by character.
    let answer: Value = test::read_body_json(
        test::call_service(
            &app,
            post_json("/api/ask", json!({ "question": ASK_MS })).to_request(),
        )
        .await,
    )
    .await;
    let text: Value = test::read_body_json(
        test::call_service(&app, get(&format!("/api/documents/{id}/text")).to_request()).await,
    )
    .await;
    let chars: Vec<char> = text["text"].as_str().unwrap().chars().collect();
    let passage = answer["passages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["doc_id"] == id)
        .expect("a passage of the PDF");
    let (s, e) = (
        passage["char_start"].as_u64().unwrap() as usize,
        passage["char_end"].as_u64().unwrap() as usize,
    );
    assert_eq!(
        chars[s..e].iter().collect::<String>(),
        passage["text"].as_str().unwrap()
    );
    let pages = text["pages"].as_array().unwrap();
    let page = passage["page"].as_u64().unwrap();
    let span = pages.iter().find(|p| p["page"] == page).unwrap();
    assert!(
        span["char_start"].as_u64().unwrap() as usize <= s
            && e <= span["char_end"].as_u64().unwrap() as usize
    );

    let res = test::call_service(
        &app,
        get("/api/documents/0000000000000000/source").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn uploads_are_ingested_in_the_background_and_can_be_deleted() {
    let app = service!();
    let fact = "Polisi Bilik Server\n\nKod akses bilik server ialah ZEBRA-7731. Kod ini ditukar \
                setiap bulan oleh Jabatan Teknologi Maklumat.\n\n<script>window.__xss=1</script>\n";
    let (ct, body) = multipart(&[("bilik server.txt", fact.as_bytes())]);
    let req = raw_post("/api/documents", ct, body).to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let accepted: Value = test::read_body_json(res).await;
    let doc = &accepted["documents"][0];
    assert_eq!(doc["name"], "bilik server.txt");
    assert_eq!(doc["origin"], "upload");
    let id = doc["id"].as_str().unwrap().to_string();
    let done = wait_for_status!(&app, &id);
    assert_eq!(done["status"], "indexed", "{done}");

    let answer: Value = test::read_body_json(
        test::call_service(
            &app,
            post_json(
                "/api/ask",
                json!({ "question": "Apakah kod akses bilik server?" }),
            )
            .to_request(),
        )
        .await,
    )
    .await;
    assert!(
        answer["answer"].as_str().unwrap().contains("ZEBRA-7731"),
        "{answer}"
    );
    assert_eq!(answer["citations"][0]["doc_id"], id.as_str());

    let res = test::call_service(
        &app,
        TestRequest::delete()
            .uri(&format!("/api/documents/{id}"))
            .insert_header((header::HOST, "localhost"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = test::call_service(&app, get(&format!("/api/documents/{id}")).to_request()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let search: Value = test::read_body_json(
        test::call_service(
            &app,
            post_json("/api/search", json!({ "query": "ZEBRA-7731 bilik server" })).to_request(),
        )
        .await,
    )
    .await;
    assert!(
        search["passages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["doc_id"] != id.as_str()),
        "a deleted document is still found"
    );
}

#[actix_web::test]
async fn bad_uploads_are_refused_or_rejected_with_reasons() {
    let app = service!();
    // Over the limit by Content-Length: refused before the body is read.
    let req = TestRequest::post()
        .uri("/api/documents")
        .insert_header((header::HOST, "localhost"))
        .insert_header((header::CONTENT_TYPE, "multipart/form-data; boundary=x"))
        .insert_header((
            header::CONTENT_LENGTH,
            (UPLOAD_LIMIT_MB * 1024 * 1024 + 10_000_000).to_string(),
        ))
        .to_request();
    let (status, code, message) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(message.contains("1 MB"), "{message}");
    // Over the limit while streaming (the declared length said nothing).
    let big = vec![b'a'; (UPLOAD_LIMIT_MB * 1024 * 1024 + 1) as usize];
    let (ct, body) = multipart(&[("big.txt", &big)]);
    let req = raw_post("/api/documents", ct, body).to_request();
    let mut req = req;
    req.headers_mut().remove(header::CONTENT_LENGTH);
    let (status, _, _) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // An unsupported type.
    let (ct, body) = multipart(&[("setup.exe", b"MZ\x90\x00")]);
    let req = raw_post("/api/documents", ct, body).to_request();
    let (status, code, message) = error_of(test::call_service(&app, req).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    assert!(message.contains("setup.exe"), "{message}");
    // Not multipart.
    let req = post_json("/api/documents", json!({"file": "x"})).to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // A text file calling itself a PDF is accepted, then rejected by the parser.
    let (ct, body) = multipart(&[("../../fake.pdf", b"this is not a pdf at all")]);
    let req = raw_post("/api/documents", ct, body).to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let accepted: Value = test::read_body_json(res).await;
    assert_eq!(
        accepted["documents"][0]["name"], "fake.pdf",
        "the path is stripped"
    );
    let id = accepted["documents"][0]["id"].as_str().unwrap().to_string();
    let done = wait_for_status!(&app, &id);
    assert_eq!(done["status"], "rejected");
    assert_eq!(done["reason"], "parse_error", "{done}");
    assert!(!done["message"].as_str().unwrap().is_empty());
}

#[actix_web::test]
async fn openai_compatible_chat_answers_from_the_documents() {
    let app = service!();
    let models: Value =
        test::read_body_json(test::call_service(&app, get("/v1/models").to_request()).await).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"tanya-extractive") && ids.contains(&"tanya-generative"),
        "{ids:?}"
    );

    // Shaped like the official client's request.
    let request = json!({
        "model": "tanya-extractive",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": ASK_MS}
        ],
        "temperature": 0.2, "max_tokens": 256, "n": 1, "stream": false
    });
    // The API key is a Tanya token: any other key is refused.
    let (status, code, _) = error_of(
        test::call_service(
            &app,
            post_json("/v1/chat/completions", request.clone())
                .insert_header((header::AUTHORIZATION, "Bearer sk-anything"))
                .to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let res = test::call_service(
        &app,
        post_json("/v1/chat/completions", request.clone())
            .insert_header((header::AUTHORIZATION, format!("Bearer {}", fixture().token)))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("16 hari")
            && content.contains("Sumber:")
            && content.contains("cuti-tahunan.pdf, p. 2"),
        "{content}"
    );
    assert!(!body["citations"].as_array().unwrap().is_empty());

    let mut streaming = request;
    streaming["stream"] = json!(true);
    let res = test::call_service(
        &app,
        post_json("/v1/chat/completions", streaming).to_request(),
    )
    .await;
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let events = sse(&text);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        content.contains("16 hari") && content.contains("Sumber:"),
        "{content}"
    );

    let res = test::call_service(
        &app,
        post_json(
            "/v1/chat/completions",
            json!({"messages": [{"role": "system", "content": "x"}]}),
        )
        .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn operations_endpoints() {
    let app = service!();
    assert_eq!(
        test::call_service(&app, get("/healthz").to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let ready: Value =
        test::read_body_json(test::call_service(&app, get("/readyz").to_request()).await).await;
    assert_eq!(ready["status"], "ready");
    let info: Value =
        test::read_body_json(test::call_service(&app, get("/api/info").to_request()).await).await;
    assert_eq!(info["max_upload_mb"], UPLOAD_LIMIT_MB);
    assert_eq!(info["generative_available"], true);
    test::call_service(
        &app,
        post_json("/api/search", json!({ "query": "cuti" })).to_request(),
    )
    .await;
    // An editor's token is not enough for the metrics; a request from this machine is.
    let (status, code, _) =
        error_of(test::call_service(&app, get("/metrics").to_request()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let res = test::call_service(
        &app,
        get("/metrics")
            .peer_addr("127.0.0.1:50000".parse().unwrap())
            .to_request(),
    )
    .await;
    assert!(hdr(res.headers(), header::CONTENT_TYPE).starts_with("text/plain"));
    let metrics = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        metrics.contains(
            "tanya_http_requests_total{route=\"/api/search\",method=\"POST\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(metrics
        .contains("tanya_http_request_duration_seconds_bucket{route=\"/api/search\",le=\"+Inf\"}"));
    assert!(metrics.contains("tanya_ingest_queue_depth "));
    assert!(metrics.contains("tanya_documents "));

    let spec: Value =
        test::read_body_json(test::call_service(&app, get("/api/openapi.json").to_request()).await)
            .await;
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/api/ask",
        "/api/search",
        "/api/info",
        "/api/documents",
        "/api/documents/{id}",
        "/api/documents/{id}/source",
        "/api/documents/{id}/text",
        "/v1/models",
        "/v1/chat/completions",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(spec["components"]["schemas"]["AskRequest"].is_object());
}

#[actix_web::test]
async fn the_page_is_served_with_security_headers() {
    let app = service!();
    let res = test::call_service(&app, get("/").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert!(hdr(&h, header::CONTENT_TYPE).starts_with("text/html"));
    let csp = hdr(&h, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(hdr(&h, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(hdr(&h, header::REFERRER_POLICY), "no-referrer");
    assert!(
        h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "no CORS"
    );
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(attr),
            "the page loads something from elsewhere: {attr}"
        );
    }
    let etag = hdr(&h, header::ETAG).to_string();
    let res = test::call_service(
        &app,
        get("/")
            .insert_header((header::IF_NONE_MATCH, etag))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}
