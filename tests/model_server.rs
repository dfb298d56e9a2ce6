//! Generative answers from an OpenAI-compatible model server (`[generator] backend =
//! "openai"`), against a real llama.cpp `llama-server` serving SmolLM2 on loopback: the
//! streamed answer and its citation check, its token counts and judgements against the
//! local model's, a server killed mid-answer, a stream cut or stalled after its first
//! text, a request the server never answers, nothing listening (the answer quoted from
//! the documents instead, through the engine, the command line and the API), and
//! cancels. Faults are made with real sockets: a listener that never answers, and a proxy
//! in front of the real server that stops passing its stream on after the first text.
//!
//! Tests that start a llama-server are `#[ignore]`d for a plain `cargo test`;
//! `scripts/test.sh` builds the server (scripts/setup_llama_server.sh) and runs them, and
//! without TANYA_LLAMA_SERVER they fail, saying how to build it.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::test as actix;
use crossbeam_channel::Receiver;
use serde_json::{json, Value};

use common::http::{post_json, signed_in, sse, token_for};
use common::llama_server::{free_port, LlamaServer};
use tanya::accounts::Role;
use tanya::config::{AnswerMode, Config, GeneratorBackend};
use tanya::index::passage::Access;
use tanya::models::generate::{
    ChatMessage, GenEvent, GenStats, GenerateError, Generator, GeneratorConfig, RemoteConfig,
    StopReason,
};
use tanya::server::AppState;
use tanya::Engine;

const QUESTION: &str = "How many days of annual leave do I get after 4 years of service?";

fn public() -> Access {
    Access::for_groups(["public"]).unwrap()
}

fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// The tests that run a llama-server take turns: two servers and the embedder on two
/// cores would make every time bound a guess.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A client of `url` answering with up to `max_new_tokens`.
fn remote(url: &str, max_new_tokens: usize, tweak: impl FnOnce(&mut RemoteConfig)) -> Generator {
    let mut cfg = RemoteConfig::new(url);
    cfg.max_new_tokens = max_new_tokens;
    cfg.read_timeout = Duration::from_secs(20);
    tweak(&mut cfg);
    Generator::remote(cfg).unwrap()
}

/// An answer long enough to be cut in the middle: SmolLM2 counts for a long time.
fn long_answer() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a helpful assistant."),
        ChatMessage::user("Count from 1 to 500, one number per line, without stopping."),
    ]
}

/// Waits for the first text of a stream.
fn first_token(rx: &Receiver<GenEvent>) {
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(GenEvent::Token(_)) => {}
        other => panic!("expected text first, got {other:?}"),
    }
}

/// The rest of a stream: its text, then how it ended. Panics if it does not end within
/// `limit`.
fn collect(rx: &Receiver<GenEvent>, limit: Duration) -> (String, Result<GenStats, GenerateError>) {
    let until = Instant::now() + limit;
    let mut text = String::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(GenEvent::Token(piece)) => text.push_str(&piece),
            Ok(GenEvent::Done(stats)) => return (text, Ok(stats)),
            Ok(GenEvent::Error(e)) => return (text, Err(e)),
            Err(e) => panic!("the stream did not end within {limit:?}: {e}"),
        }
    }
}

/// One small document about annual leave, ingested for "public", with the generator
/// pointed at the model server `url` (greedy, short answers, a context that fits
/// llama-server's 2,048 tokens).
fn engine_over(dir: &std::path::Path, url: &str, tweak: impl FnOnce(&mut Config)) -> Engine {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("leave.md"),
        "# Leave\n\n## Annual leave\n\nEmployees with 3 to 5 years of service receive 18 days \
         of annual leave per year. Employees with less than 3 years receive 14 days.\n",
    )
    .unwrap();
    let mut c = common::config(&dir.join("data"));
    c.generator.backend = GeneratorBackend::Openai;
    c.generator.url = url.to_string();
    c.generator.max_new_tokens = 64;
    c.generator.max_context = 2048;
    tweak(&mut c);
    let engine = Engine::open(c).unwrap();
    let report = common::ingest_public(&engine, &docs);
    assert_eq!(report.indexed.len(), 1, "{report:?}");
    engine
}

fn ask_generative(
    engine: &Engine,
    on_token: &mut dyn FnMut(),
) -> tanya::Result<tanya::answer::Answer> {
    engine.ask(
        QUESTION,
        &public(),
        AnswerMode::Generative,
        flag(),
        &mut |ev| {
            if let tanya::answer::AnswerEvent::Token(_) = ev {
                on_token();
            }
        },
    )
}

/// A listener that accepts connections, counts them, keeps them open and never
/// answers: a server that hangs.
fn silent_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            open.push(stream);
        }
    });
    (port, accepted)
}

/// What the proxy does once the first streamed text went through.
#[derive(Clone, Copy)]
enum After {
    /// Passes nothing more, and keeps both connections open: a server gone silent.
    Stall,
    /// Closes the client's connection in the middle of the stream: a server gone.
    Close,
}

/// A proxy to a real server that passes everything until the first streamed text of an
/// answer (`"delta":{"content":"`) has gone to the client, then does `after`.
struct CuttingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl CuttingProxy {
    fn start(upstream: u16, after: After) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = flag();
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let stopped = Arc::clone(&stopped);
                std::thread::spawn(move || relay(client, upstream, after, &stopped));
            }
        });
        CuttingProxy { port, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(client: TcpStream, upstream: u16, after: After, stop: &AtomicBool) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let (mut from_server, mut to_client) = (server, client);
    let needle = br#""delta":{"content":""#;
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match from_server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to_client.write_all(&buf[..n]).is_err() {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(needle.len()).any(|w| w == needle) {
            match after {
                After::Close => break,
                After::Stall => {
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    return;
                }
            }
        }
    }
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = from_server.shutdown(Shutdown::Both);
}

#[test]
#[ignore = "needs llama-server (scripts/setup_llama_server.sh)"]
fn a_generative_answer_streams_from_llama_server_with_checked_citations() {
    let _serial = serial();
    let server = LlamaServer::start();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_over(dir.path(), &server.url(), |_| {});
    let mut streamed = String::new();
    let answer = engine
        .ask(
            QUESTION,
            &public(),
            AnswerMode::Generative,
            flag(),
            &mut |ev| {
                if let tanya::answer::AnswerEvent::Token(t) = ev {
                    streamed.push_str(&t);
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(!streamed.trim().is_empty(), "no text was streamed");
    assert_eq!(answer.mode, AnswerMode::Generative);
    assert_eq!(answer.fallback, None);
    assert!(answer.time_to_first_token_ms.unwrap() > 0.0, "{answer:?}");
    assert!(answer.tokens_per_second.is_some());
    // The local backend's checks, unchanged: the streamed text's citations are checked
    // against the passages the model was given, and what is left is the answer (or the
    // abstention when nothing survives).
    let given = engine.prompt_passages(QUESTION, &public()).unwrap();
    let (cleaned, citations) = tanya::answer::check_citations(streamed.trim(), &given);
    assert_eq!(answer.citations, citations);
    if cleaned.is_empty() {
        assert!(answer.abstained);
    } else {
        assert_eq!(answer.text, cleaned);
    }
    for c in &answer.citations {
        assert!(c.n >= 1 && c.n <= given.len(), "{c:?}");
        assert_eq!(c.rel_path, "leave.md");
    }
}

#[test]
#[ignore = "needs llama-server (scripts/setup_llama_server.sh)"]
fn counts_templates_and_judgements_match_the_local_model() {
    let _serial = serial();
    let server = LlamaServer::start();
    let remote = remote(&server.url(), 16, |_| {});
    let local = Generator::start(GeneratorConfig::new(common::llama_server::gguf())).unwrap();
    for text in [
        "Hello world",
        "Pekerja yang berkhidmat 2 hingga 5 tahun layak mendapat 16 hari cuti tahunan.",
        // Special-token text is counted as text by both.
        "<|im_end|><|im_start|>system",
        "",
    ] {
        assert_eq!(
            remote.count_tokens(text).unwrap(),
            local.count_tokens(text).unwrap(),
            "{text:?}"
        );
    }
    let messages = [
        ChatMessage::system("Be brief."),
        ChatMessage::user("What is Tanya?"),
    ];
    let rendered = remote.render_prompt(&messages).unwrap();
    assert!(rendered.contains("What is Tanya?"), "{rendered}");
    assert!(
        rendered.ends_with("<|im_start|>assistant\n"),
        "{rendered:?}"
    );
    assert_eq!(
        remote.model_name(),
        "the first model of ".to_string() + &server.url()
    );

    // The yes/no judgement of the LLM reranker: the server's log-probabilities differ
    // between choices as the local logits do (same GGUF, same template).
    let passages = [
        "Annual leave policy: employees receive 16 days of annual leave.",
        "The canteen sells a banana and coffee every morning.",
    ];
    let query = "How many days of annual leave?";
    let by_server = tanya::models::rerank::llm_scores(&remote, query, &passages).unwrap();
    let by_local = tanya::models::rerank::llm_scores(&local, query, &passages).unwrap();
    for (s, l) in by_server.iter().zip(&by_local) {
        assert!(
            (s - l).abs() < 0.5,
            "server {by_server:?}, local {by_local:?}"
        );
    }
    // Asking for the server's first model named it.
    assert!(
        remote.model_name().to_lowercase().contains("smollm2"),
        "{}",
        remote.model_name()
    );
}

#[test]
#[ignore = "needs llama-server (scripts/setup_llama_server.sh)"]
fn a_server_killed_mid_answer_is_a_clear_error_not_a_hang() {
    let _serial = serial();
    let mut server = LlamaServer::start();
    let generator = remote(&server.url(), 2000, |cfg| cfg.retries = 2);
    let rx = generator.generate(long_answer(), flag());
    first_token(&rx);
    let killed_at = Instant::now();
    server.kill();
    let (_, result) = collect(&rx, Duration::from_secs(10));
    let waited = killed_at.elapsed();
    match result {
        Err(e @ GenerateError::ServerClosed(_)) => {
            assert!(e.to_string().contains("closed the connection"), "{e}");
            assert!(e.is_server_failure() && !e.is_user_error());
        }
        other => panic!("expected ServerClosed, got {other:?}"),
    }
    // Text was shown: no retry, the error comes at once.
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
#[ignore = "needs llama-server (scripts/setup_llama_server.sh)"]
fn an_answer_cut_after_its_first_text_stays_an_error() {
    let _serial = serial();
    let server = LlamaServer::start();
    let proxy = CuttingProxy::start(server.port, After::Close);
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_over(dir.path(), &proxy.url(), |_| {});
    let mut tokens = 0;
    let result = ask_generative(&engine, &mut || tokens += 1);
    assert!(tokens >= 1, "{result:?}");
    // Text was shown: no quoted answer replaces it, the failure is reported.
    match result {
        Err(tanya::Error::Generate(GenerateError::ServerClosed(_))) => {}
        other => panic!("expected the model server's error, got {other:?}"),
    }
}

#[test]
#[ignore = "needs llama-server (scripts/setup_llama_server.sh)"]
fn a_stream_that_stalls_times_out() {
    let _serial = serial();
    let server = LlamaServer::start();
    let proxy = CuttingProxy::start(server.port, After::Stall);
    let generator = remote(&proxy.url(), 2000, |cfg| {
        cfg.read_timeout = Duration::from_millis(1000);
        cfg.retries = 2;
    });
    let rx = generator.generate(long_answer(), flag());
    first_token(&rx);
    let stalled_at = Instant::now();
    let (_, result) = collect(&rx, Duration::from_secs(10));
    let waited = stalled_at.elapsed();
    assert!(
        matches!(result, Err(GenerateError::Timeout { waited_ms: 1000 })),
        "{result:?}"
    );
    // One read timeout, no retry after text: not less, and not much more.
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn a_server_that_never_answers_times_out_after_bounded_retries() {
    let (port, accepted) = silent_server();
    let generator = remote(&format!("http://127.0.0.1:{port}/v1"), 16, |cfg| {
        cfg.model = "any".into();
        cfg.read_timeout = Duration::from_millis(300);
        cfg.retries = 2;
    });
    let started = Instant::now();
    let (text, result) = collect(
        &generator.generate(long_answer(), flag()),
        Duration::from_secs(10),
    );
    let took = started.elapsed();
    assert!(text.is_empty());
    match result {
        Err(e @ GenerateError::Timeout { waited_ms: 300 }) => {
            assert!(e.to_string().contains("read_timeout_ms"), "{e}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The request and its two retries, each waiting 300 ms, with 0.25 s and 0.5 s between.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert!(
        took >= Duration::from_millis(1600) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn a_silent_server_gets_the_answer_quoted_from_the_documents() {
    let (port, _) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_over(dir.path(), &format!("http://127.0.0.1:{port}/v1"), |c| {
        c.generator.read_timeout_ms = 300;
        c.generator.retries = 1;
    });
    let started = Instant::now();
    let answer = ask_generative(&engine, &mut || panic!("no text can come")).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(answer.mode, AnswerMode::Extractive);
    let why = answer.fallback.as_deref().expect("the fallback says why");
    assert!(why.contains("sent nothing for 300 ms"), "{why}");
    assert!(answer.text.contains("18 days"), "{}", answer.text);
    assert_eq!(answer.citations[0].rel_path, "leave.md");
}

#[test]
fn nothing_listening_gets_the_answer_quoted_from_the_documents() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_over(dir.path(), &url, |c| c.generator.retries = 2);
    let started = Instant::now();
    let answer = ask_generative(&engine, &mut || panic!("no text can come")).unwrap();
    // Two retries, after 0.25 s and 0.5 s: bounded, and refused connections are quick.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.mode, AnswerMode::Extractive);
    assert!(!answer.abstained);
    let why = answer.fallback.clone().expect("the fallback says why");
    assert!(
        why.starts_with(&format!("cannot reach the model server at {url}")),
        "{why}"
    );
    assert!(
        answer.text.starts_with("According to the documents:"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("18 days"), "{}", answer.text);
    // An extractive answer asked for as such says nothing of a fallback.
    let quoted = common::extractive(&engine, QUESTION);
    assert_eq!(quoted.fallback, None);
    assert_eq!(quoted.text, answer.text);
    drop(engine);

    // The command line shows the answer and says why it was quoted.
    let data = dir.path().join("data");
    let run = |json: bool| {
        let mut cmd = common::tanya(&data);
        cmd.env("TANYA__GENERATOR__BACKEND", "openai")
            .env("TANYA__GENERATOR__URL", &url)
            .env("TANYA__GENERATOR__RETRIES", "0")
            .args(["ask", "--mode", "generative"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg(QUESTION).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(false);
    assert!(stdout.contains("18 days"), "{stdout}");
    assert!(
        stderr.contains("(the model server failed, so this answer is quoted from the documents: cannot reach the model server at"),
        "{stderr}"
    );
    let (stdout, _) = run(true);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["mode"], "extractive");
    assert!(
        v["fallback"]
            .as_str()
            .unwrap()
            .contains("cannot reach the model server"),
        "{v}"
    );
}

#[actix_web::test]
async fn the_api_says_when_an_answer_was_quoted_because_the_server_failed() {
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_over(dir.path(), &url, |c| c.generator.retries = 0);
    let state = AppState::new(Arc::new(engine), None).unwrap();
    let token = token_for(&state, "reader", Role::Reader, &["public"]);
    let state = actix_web::web::Data::new(state);
    let app = signed_in!(state.clone(), token);

    let ask = json!({ "question": QUESTION, "mode": "generative" });
    let res = actix::call_service(&app, post_json("/api/ask", ask.clone()).to_request()).await;
    assert_eq!(res.status(), 200);
    let body: Value = actix::read_body_json(res).await;
    assert_eq!(body["mode"], "extractive");
    assert!(
        body["answer"].as_str().unwrap().contains("18 days"),
        "{body}"
    );
    assert!(
        body["fallback"]
            .as_str()
            .unwrap()
            .contains("cannot reach the model server"),
        "{body}"
    );

    // Streamed: the quoted answer comes as text, and `done` says why.
    let req = post_json("/api/ask", ask)
        .insert_header((header::ACCEPT, "text/event-stream"))
        .to_request();
    let body = String::from_utf8(
        actix::read_body(actix::call_service(&app, req).await)
            .await
            .to_vec(),
    )
    .unwrap();
    let events = sse(&body);
    let done: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(done["mode"], "extractive", "{body}");
    assert!(
        done["fallback"].as_str().unwrap().contains("cannot reach"),
        "{body}"
    );

    // An extractive answer asked for as such has no fallback.
    let res = actix::call_service(
        &app,
        post_json("/api/ask", json!({ "question": QUESTION })).to_request(),
    )
    .await;
    let body: Value = actix::read_body_json(res).await;
    assert_eq!(body["fallback"], Value::Null, "{body}");

    // The OpenAI-compatible endpoint: clients that show only text read a note.
    let chat = json!({
        "model": "tanya-generative",
        "messages": [{ "role": "user", "content": QUESTION }],
    });
    let res = actix::call_service(&app, post_json("/v1/chat/completions", chat).to_request()).await;
    let body: Value = actix::read_body_json(res).await;
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("18 days"), "{content}");
    assert!(
        content.contains("(The language model server could not answer, so this answer is quoted from the documents.)"),
        "{content}"
    );
    assert!(
        body["fallback"].as_str().unwrap().contains("cannot reach"),
        "{body}"
    );
}

#[test]
#[ignore = "needs llama-server (scripts/setup_llama_server.sh)"]
fn a_cancel_or_a_dropped_receiver_stops_the_server_too() {
    let _serial = serial();
    let server = LlamaServer::start();
    let long = remote(&server.url(), 2000, |_| {});
    let short = remote(&server.url(), 4, |_| {});
    // With one slot, a short request is served quickly only if the long answer before it
    // really stopped on the server (its 2,000 tokens would take a minute or more).
    let served_quickly = |what: &str| {
        let started = Instant::now();
        let (_, result) = collect(
            &short.generate(vec![ChatMessage::user("Say hello.")], flag()),
            Duration::from_secs(30),
        );
        result.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{what}: the next request waited {:?}",
            started.elapsed()
        );
    };

    let cancel = flag();
    let rx = long.generate(long_answer(), Arc::clone(&cancel));
    first_token(&rx);
    let cancelled_at = Instant::now();
    cancel.store(true, Ordering::SeqCst);
    let (_, result) = collect(&rx, Duration::from_secs(5));
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled_at.elapsed()
    );
    assert_eq!(result.unwrap().stop, StopReason::Cancelled);
    served_quickly("after a cancel");

    let rx = long.generate(long_answer(), flag());
    first_token(&rx);
    drop(rx);
    served_quickly("after the receiver was dropped");
}

#[test]
fn a_cancel_interrupts_the_wait_for_a_silent_server() {
    let (port, accepted) = silent_server();
    let generator = remote(&format!("http://127.0.0.1:{port}/v1"), 16, |cfg| {
        cfg.model = "any".into();
        cfg.read_timeout = Duration::from_secs(30);
    });
    let cancel = flag();
    let rx = generator.generate(long_answer(), Arc::clone(&cancel));
    // The request is sent and waits for an answer that does not come.
    let started = Instant::now();
    while accepted.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "no connection");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let cancelled_at = Instant::now();
    cancel.store(true, Ordering::SeqCst);
    let (text, result) = collect(&rx, Duration::from_secs(5));
    assert!(text.is_empty());
    assert_eq!(result.unwrap().stop, StopReason::Cancelled);
    assert!(
        cancelled_at.elapsed() < Duration::from_millis(500),
        "{:?}",
        cancelled_at.elapsed()
    );
    // Dropping the generator stops its answers the same way.
    let rx = generator.generate(long_answer(), flag());
    while accepted.load(Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no second connection"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let dropped_at = Instant::now();
    drop(generator);
    let (_, result) = collect(&rx, Duration::from_secs(5));
    assert_eq!(result.unwrap().stop, StopReason::Cancelled);
    assert!(
        dropped_at.elapsed() < Duration::from_millis(500),
        "{:?}",
        dropped_at.elapsed()
    );
}
