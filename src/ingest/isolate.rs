//! Parsing untrusted files in a worker process: the `tanya` binary re-executed as
//! `tanya parse-worker`, limited in address space and CPU time (set by the worker on
//! itself before it reads a byte) and in wall-clock time (the parent kills it). A panic,
//! stack overflow, endless loop or out-of-memory in a parser costs that one file, never
//! the ingest run or the server.
//!
//! Protocol: the parent passes the file and limits as arguments; the worker writes one
//! JSON [`WorkerReply`] to stdout and exits 0. Anything else (a signal, another exit
//! code) is a crash, classified from the exit status and the tail of stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tanya_ingest::{Format, ParseLimits, ParsedDocument, SourceFile};

/// Environment variable naming the binary to run as the worker (tests point it at the
/// `tanya` binary, since their own executable is the test harness).
pub const WORKER_ENV: &str = "TANYA_PARSE_WORKER";
/// Test-only fault injection: `KIND@REL_PATH` with KIND one of `panic`, `loop`, `oom`,
/// `stack` makes the worker parsing that file misbehave like a broken parser would, so
/// the isolation can be tested with real processes.
pub const FAULT_ENV: &str = "TANYA_TEST_PARSE_FAULT";

/// Limits of one worker.
#[derive(Debug, Clone)]
pub struct WorkerLimits {
    /// Address-space limit (RLIMIT_AS).
    pub memory_bytes: u64,
    /// CPU-time limit (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Wall-clock limit; the parent kills the worker after it.
    pub wall: Duration,
}

impl WorkerLimits {
    /// The limits of one parse worker under `[ingest]`.
    pub fn of(config: &crate::config::IngestConfig) -> Self {
        WorkerLimits {
            memory_bytes: config.parse_memory_mb * 1024 * 1024,
            cpu_seconds: config.parse_timeout_secs,
            wall: std::time::Duration::from_secs(config.parse_timeout_secs),
        }
    }
}

/// Why an isolated parse produced no document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Short code: the parser's own (`parse_error`, `encrypted`, ...) or `timeout`,
    /// `memory_limit`, `crashed`.
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
enum WorkerReply {
    Parsed {
        content_hash: String,
        document: ParsedDocument,
    },
    Failed(Failure),
}

/// The executable to run as a worker, if there is one.
pub fn worker_exe() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(WORKER_ENV) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    (name == "tanya").then_some(exe)
}

/// The parse workers' nice value (see [`run_worker`]).
const WORKER_NICE: i32 = 10;

/// Reads and parses `file` in a worker process under `limits`. Without a worker
/// executable (a library user's own binary), parses in this process instead.
pub fn read_and_parse(
    file: &SourceFile,
    parse_limits: &ParseLimits,
    limits: &WorkerLimits,
) -> Result<(String, ParsedDocument), Failure> {
    let Some(exe) = worker_exe() else {
        tracing::debug!("no worker executable: parsing in process");
        return tanya_ingest::read_and_parse(file, parse_limits).map_err(|e| Failure {
            reason: e.reason().to_string(),
            message: e.to_string(),
        });
    };
    run_worker(&exe, file, parse_limits, limits)
}

fn run_worker(
    exe: &Path,
    file: &SourceFile,
    parse_limits: &ParseLimits,
    limits: &WorkerLimits,
) -> Result<(String, ParsedDocument), Failure> {
    let crashed = |message: String| Failure {
        reason: "crashed".into(),
        message,
    };
    let mut child = worker_command(exe, file, parse_limits, limits)
        .spawn()
        .map_err(|e| crashed(format!("could not start the parse worker: {e}")))?;
    // Parsing and OCR run at a lower priority than questions (nice 10): a scanned PDF
    // being read must not slow the answers of people asking meanwhile.
    let pid = rustix::process::Pid::from_child(&child);
    if let Err(e) = rustix::process::setpriority_process(Some(pid), WORKER_NICE) {
        tracing::debug!(error = %e, "could not lower the parse worker's priority");
    }
    // Drain both pipes on their own threads so a chatty worker never blocks on a full
    // pipe while we wait for it.
    let (out_reader, err_reader) = drain_pipes(&mut child);
    let (status, timed_out) = wait_or_kill(&mut child, Instant::now() + limits.wall)
        .map_err(|e| crashed(format!("waiting for the parse worker: {e}")))?;
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if timed_out {
        return Err(Failure {
            reason: "timeout".into(),
            message: format!(
                "parsing took longer than {} s and was stopped",
                limits.wall.as_secs()
            ),
        });
    }
    if status.success() {
        return match serde_json::from_slice::<WorkerReply>(&out) {
            Ok(WorkerReply::Parsed {
                content_hash,
                document,
            }) => Ok((content_hash, document)),
            Ok(WorkerReply::Failed(f)) => Err(f),
            Err(e) => Err(crashed(format!(
                "the parse worker's reply was unreadable: {e}"
            ))),
        };
    }
    Err(classify(status, &err, limits))
}

/// The `parse-worker` command for `file`, with the limits as arguments, a quiet
/// environment, and piped output.
fn worker_command(
    exe: &Path,
    file: &SourceFile,
    parse_limits: &ParseLimits,
    limits: &WorkerLimits,
) -> Command {
    let mut command = Command::new(exe);
    command
        .arg("parse-worker")
        .arg("--format")
        .arg(file.format.as_str())
        .arg("--root")
        .arg(&file.root)
        .arg("--rel-path")
        .arg(&file.rel_path)
        .arg("--max-file-bytes")
        .arg(parse_limits.max_file_bytes.to_string())
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--cpu-seconds")
        .arg(limits.cpu_seconds.to_string())
        .arg(&file.path)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env("TANYA_LOG", "error")
        // A panicking parser must die at once: with RUST_BACKTRACE=1 inherited, the
        // injected-panic worker ran past the 60 s parse timeout (measured; with 0 it
        // ends at once). The report shows only the message anyway.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Reads the worker's stdout (all of it) and stderr (its tail) on threads of their own.
fn drain_pipes(
    child: &mut Child,
) -> (
    std::thread::JoinHandle<Vec<u8>>,
    std::thread::JoinHandle<String>,
) {
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        // Keep the tail: that is where the panic message or abort reason is.
        let keep = buf.len().saturating_sub(4096);
        String::from_utf8_lossy(&buf[keep..]).into_owned()
    });
    (out_reader, err_reader)
}

/// Waits for the worker to exit, killing it at `deadline`: its exit status, and whether
/// it was killed for taking too long.
fn wait_or_kill(child: &mut Child, deadline: Instant) -> std::io::Result<(ExitStatus, bool)> {
    loop {
        match child.try_wait()? {
            Some(status) => return Ok((status, false)),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                return Ok((child.wait()?, true));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Names what killed a worker.
fn classify(status: std::process::ExitStatus, stderr: &str, limits: &WorkerLimits) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    let mb = limits.memory_bytes / (1024 * 1024);
    if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        return Failure {
            reason: "memory_limit".into(),
            message: format!("parsing needed more than the {mb} MB memory limit"),
        };
    }
    if stderr.contains("has overflowed its stack") {
        return Failure {
            reason: "crashed".into(),
            message: "the parser overflowed its stack on this file (too deeply nested?)".into(),
        };
    }
    // SIGXCPU at the soft CPU limit, SIGKILL at the hard one.
    if matches!(status.signal(), Some(24) | Some(9)) {
        return Failure {
            reason: "timeout".into(),
            message: format!(
                "parsing used more than {} s of CPU time and was stopped",
                limits.cpu_seconds
            ),
        };
    }
    let panic = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .map(str::trim)
        .filter(|l| !l.is_empty());
    Failure {
        reason: "crashed".into(),
        message: match panic {
            Some(p) => format!("the parser crashed on this file: {p}"),
            None => format!("the parser crashed on this file ({status})"),
        },
    }
}

/// Arguments of `tanya parse-worker`.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    pub root: PathBuf,
    pub path: PathBuf,
    pub rel_path: String,
    pub format: String,
    pub max_file_bytes: u64,
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
}

/// The worker's side: limit this process, parse, reply on stdout. Returns the exit code.
pub fn worker_main(args: WorkerArgs) -> i32 {
    if let Err(e) = apply_limits(args.memory_bytes, args.cpu_seconds) {
        eprintln!("parse worker: cannot set resource limits: {e}");
        return 3;
    }
    let reply = match Format::ALL.iter().find(|f| f.as_str() == args.format) {
        None => WorkerReply::Failed(Failure {
            reason: "unsupported".into(),
            message: format!("unknown format `{}`", args.format),
        }),
        Some(&format) => {
            inject_fault(&args.rel_path);
            let size = std::fs::metadata(&args.path).map(|m| m.len()).unwrap_or(0);
            let file = SourceFile {
                root: args.root.clone(),
                path: args.path.clone(),
                rel_path: args.rel_path.clone(),
                size,
                format,
            };
            let limits = ParseLimits {
                max_file_bytes: args.max_file_bytes,
                ..ParseLimits::default()
            };
            match tanya_ingest::read_and_parse(&file, &limits) {
                Ok((content_hash, document)) => WorkerReply::Parsed {
                    content_hash,
                    document,
                },
                Err(e) => WorkerReply::Failed(Failure {
                    reason: e.reason().to_string(),
                    message: e.to_string(),
                }),
            }
        }
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match serde_json::to_writer(&mut lock, &reply) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("parse worker: cannot write the reply: {e}");
            3
        }
    }
}

fn apply_limits(memory_bytes: u64, cpu_seconds: u64) -> std::io::Result<()> {
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)?;
    rlimit::setrlimit(
        rlimit::Resource::CPU,
        cpu_seconds,
        cpu_seconds.saturating_add(2),
    )?;
    Ok(())
}

/// Misbehaves on request, like a broken parser (tests only; see [`FAULT_ENV`]).
fn inject_fault(rel_path: &str) {
    let Ok(spec) = std::env::var(FAULT_ENV) else {
        return;
    };
    let Some((fault, target)) = spec.split_once('@') else {
        return;
    };
    if target != rel_path {
        return;
    }
    match fault {
        "panic" => panic!("injected parser panic"),
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                // Zeroed memory is reserved at once and touched lazily: the address-space
                // limit is hit within milliseconds, however busy the machine is.
                hog.push(vec![0u8; 64 * 1024 * 1024]);
                std::hint::black_box(&hog);
            }
        }
        "stack" => {
            fn deep(n: u64) -> u64 {
                let pad = std::hint::black_box([n; 64]);
                if pad[0] == u64::MAX {
                    return 0;
                }
                deep(n + 1) + pad[1]
            }
            std::hint::black_box(deep(0));
        }
        _ => {}
    }
}
