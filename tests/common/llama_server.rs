//! A real llama.cpp `llama-server` for the tests of the model-server backend: the binary
//! `scripts/setup_llama_server.sh` builds (its path in `TANYA_LLAMA_SERVER`, which
//! `scripts/test.sh` sets), serving the installed SmolLM2 GGUF on a free loopback port.
//! A missing binary fails the test with the command to run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to load the model and answer `/health`.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The `llama-server` binary. Panics when it is not there.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("TANYA_LLAMA_SERVER")
        .map(PathBuf::from)
        .expect(
            "TANYA_LLAMA_SERVER is not set: build llama-server with \
             `scripts/setup_llama_server.sh` and set TANYA_LLAMA_SERVER to the path it prints \
             (scripts/test.sh does both)",
        );
    assert!(
        path.is_file(),
        "TANYA_LLAMA_SERVER={} is not a file: run scripts/setup_llama_server.sh",
        path.display()
    );
    path
}

/// The SmolLM2 GGUF the local backend's tests use too.
pub fn gguf() -> PathBuf {
    let path = super::models_dir().join(tanya::config::DEFAULT_GGUF);
    assert!(
        path.is_file(),
        "{} is missing: run `python3 scripts/install_models.py`",
        path.display()
    );
    path
}

/// A port nothing listens on (just given back by the kernel).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `llama-server` with one slot (`-np 1`: a second request waits for the
/// first, which tells whether a cancelled answer really stopped) and a 2,048-token
/// context. Killed when dropped.
pub struct LlamaServer {
    child: Child,
    pub port: u16,
    log: tempfile::NamedTempFile,
}

impl LlamaServer {
    pub fn start() -> LlamaServer {
        let (binary, gguf) = (binary(), gguf());
        // A port can be taken between its choice and the server's bind: try another.
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().unwrap();
            let child = Command::new(&binary)
                .args(["-m"])
                .arg(&gguf)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["-c", "2048", "-np", "1", "-t", "2"])
                .env("OMP_WAIT_POLICY", "PASSIVE")
                .stdin(Stdio::null())
                .stdout(log.reopen().unwrap())
                .stderr(log.reopen().unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let mut server = LlamaServer { child, port, log };
            if server.wait_until_healthy() {
                return server;
            }
        }
        panic!("llama-server did not start on any of three ports");
    }

    /// The API's base URL, as `generator.url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// `kill -9`, as a crash would end it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What it logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits for `GET /health` to answer 200; `false` when the process ended first
    /// (a port taken), panics after [`START_LIMIT`].
    fn wait_until_healthy(&mut self) -> bool {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/health", self.port);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                eprintln!("llama-server exited at start:\n{}", self.log());
                return false;
            }
            if let Ok(response) = ureq::get(&url).call() {
                if response.status() == 200 {
                    return true;
                }
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "llama-server did not answer /health within {START_LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}
