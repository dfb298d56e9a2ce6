//! Test harness: the real models, the real stores, the sample corpus.
//!
//! Models come from `scripts/install_models.py` (default `~/.cache/tanya/models`, or
//! `TANYA_MODELS_DIR`); the corpus from `python3 scripts/make_samples.py` (default
//! `samples/corpus`, or `TANYA_SAMPLES_DIR`). `scripts/test.sh` prepares both. A missing
//! prerequisite fails the test with the command to run: nothing is silently skipped.

#![allow(dead_code)]

pub mod http;
pub mod llama_server;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use tanya::config::Config;
use tanya::ingest::pipeline::{IngestOptions, IngestReport, Quiet};
use tanya::Engine;

/// The repository, as cargo says when it runs the tests (a test binary reused from a
/// build in another checkout would carry that checkout's compile-time path).
pub fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("TANYA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tanya::config::expand_home(Path::new("~/.cache/tanya/models")));
    assert!(
        dir.join("multilingual-e5-small/model.onnx").is_file(),
        "models are not installed in {}: run `python3 scripts/install_models.py` (or scripts/test.sh)",
        dir.display()
    );
    dir
}

pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("TANYA_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("samples/corpus"));
    assert!(
        dir.is_dir() && std::fs::read_dir(&dir).unwrap().count() > 0,
        "the sample corpus is missing in {}: run `python3 scripts/make_samples.py` (or scripts/test.sh)",
        dir.display()
    );
    dir
}

/// Configuration for a test: defaults, the installed models, a given data directory.
/// Files are parsed in worker processes of the real `tanya` binary, as in production.
pub fn config(data_dir: &Path) -> Config {
    use_parse_worker();
    log_to_file();
    let mut c = Config::load_layers(None, Vec::new()).unwrap();
    c.paths.models_dir = models_dir();
    c.paths.data_dir = data_dir.to_path_buf();
    c
}

/// Points in-process engines at the `tanya` binary for parse workers (this test
/// executable cannot be one).
pub fn use_parse_worker() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var(
            tanya::ingest::isolate::WORKER_ENV,
            env!("CARGO_BIN_EXE_tanya"),
        );
    });
}

pub struct Shared {
    pub engine: Engine,
    pub report: IngestReport,
    _dir: tempfile::TempDir,
}

/// One engine with the whole sample corpus ingested, shared by the tests of this binary
/// (embedding the corpus is the slow part; doing it once keeps the suite in minutes).
pub fn corpus_engine() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(config(&dir.path().join("data"))).unwrap();
        let report = ingest_public(&engine, &corpus_dir());
        Shared {
            engine,
            report,
            _dir: dir,
        }
    })
}

/// Ingests `path` for the "public" group.
pub fn ingest_public(engine: &Engine, path: &Path) -> IngestReport {
    engine
        .ingest(
            path,
            &IngestOptions::with_groups(vec!["public".into()]),
            &Quiet,
        )
        .unwrap()
}

#[derive(Debug, Deserialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub lang: String,
    pub document: Option<String>,
    pub page: Option<u32>,
    pub evidence: Option<String>,
    #[serde(default)]
    pub expect: Vec<String>,
    #[serde(default)]
    pub abstain: bool,
    #[serde(default)]
    pub near_topic: bool,
}

#[derive(Debug, Deserialize)]
struct Questions {
    question: Vec<Question>,
}

pub fn questions() -> Vec<Question> {
    let text = std::fs::read_to_string(root().join("tests/data/questions.toml")).unwrap();
    toml::from_str::<Questions>(&text).unwrap().question
}

/// Answers `question` extractively as a member of "public".
pub fn extractive(engine: &Engine, question: &str) -> tanya::answer::Answer {
    let public = tanya::index::passage::Access::for_groups(["public"]).unwrap();
    engine
        .ask(
            question,
            &public,
            tanya::config::AnswerMode::Extractive,
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            &mut |_| {},
        )
        .unwrap()
}

/// Runs the `tanya` binary with the test models and a data directory.
pub fn tanya(data_dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tanya"));
    cmd.env("TANYA__PATHS__MODELS_DIR", models_dir())
        .env("TANYA__PATHS__DATA_DIR", data_dir)
        .env_remove("TANYA_CONFIG");
    cmd
}

/// Runs `cmd` with `stdin` as its standard input; its output.
pub fn run_with_stdin(mut cmd: std::process::Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The standard output of a command that must have succeeded (else both outputs shown).
pub fn succeeded(out: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// With `TANYA_LOG_FILE` set (the test command sets it), this test process's own events go
/// to that file too, at `TANYA_LOG_FILE_FILTER`, as the binaries it starts do: the test
/// command then searches the whole suite's log for passwords, tokens and canaries.
pub fn log_to_file() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(path) = std::env::var_os("TANYA_LOG_FILE") else {
            return;
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("opening TANYA_LOG_FILE");
        // As the binary does (src/cli/mod.rs).
        let filter = tracing_subscriber::EnvFilter::try_from_env("TANYA_LOG_FILE_FILTER")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"))
            .add_directive(tanya::config::NO_TEXT_LOG_DIRECTIVE.parse().unwrap());
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(filter)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}
