//! The `tanya` command line: a thin layer over [`tanya::Engine`]. Only this binary uses
//! `anyhow`; it prints errors with their causes and picks the exit code (2 for the
//! user's mistakes, 1 for ours).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tanya::answer::{Answer, AnswerEvent};
use tanya::config::{AnswerMode, Config};
use tanya::passage::Access;
use tanya::pipeline::{IngestObserver, IngestOptions, IngestReport};
use tanya::Engine;

#[derive(Parser)]
#[command(
    name = "tanya",
    version,
    about = "Ask your own documents, privately, offline"
)]
struct Cli {
    /// Configuration file layered over the built-in defaults.
    #[arg(long, global = true, env = "TANYA_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides paths.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Index files and folders (PDF, DOCX, HTML, Markdown, text). Re-running only
    /// processes what changed; files deleted from a folder leave the index.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Access groups for these documents (default: ingest.default_groups).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Also write the run's summary as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Hybrid search: ranked passages with document, page and a snippet.
    Search {
        query: String,
        /// Groups the caller belongs to.
        #[arg(long, value_delimiter = ',', default_value = "public")]
        groups: Vec<String>,
        /// Number of passages (default: search.top_k).
        #[arg(short = 'k', long)]
        limit: Option<usize>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Answer a question from the documents, with citations.
    Ask {
        question: String,
        /// extractive (no language model) or generative (a GGUF model).
        #[arg(long)]
        mode: Option<AnswerMode>,
        #[arg(long, value_delimiter = ',', default_value = "public")]
        groups: Vec<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the browser page, the JSON API and the OpenAI-compatible endpoint.
    Serve {
        /// Address to listen on (overrides server.bind), e.g. 127.0.0.1:8080; port 0
        /// picks a free one.
        #[arg(long)]
        bind: Option<String>,
    },
    /// List the indexed documents.
    Documents {
        #[arg(long)]
        json: bool,
    },
    /// Print the effective configuration.
    Config,
    /// Measure search and answer latency (medians) and peak memory on the current index.
    Bench {
        /// A TOML file with [[question]] tables holding `question = "..."`.
        #[arg(long, default_value = "tests/data/questions.toml")]
        questions: PathBuf,
        /// Repetitions of each search.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Questions answered in generative mode (0 to skip).
        #[arg(long, default_value_t = 3)]
        generative: usize,
        #[arg(long, value_delimiter = ',', default_value = "public")]
        groups: Vec<String>,
    },
}

#[derive(serde::Deserialize)]
struct BenchQuestions {
    question: Vec<BenchQuestion>,
}

#[derive(serde::Deserialize)]
struct BenchQuestion {
    question: String,
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(
    engine: &Engine,
    questions: &[String],
    runs: usize,
    generative: usize,
    access: &Access,
) -> anyhow::Result<()> {
    let mut search_ms = Vec::new();
    for _ in 0..runs.max(1) {
        for q in questions {
            let t = Instant::now();
            engine.search(q, access, engine.config.search.top_k)?;
            search_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mut ask_ms = Vec::new();
    for q in questions {
        let t = Instant::now();
        engine.ask(
            q,
            access,
            AnswerMode::Extractive,
            Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )?;
        ask_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (mut ttft, mut tps, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for q in questions.iter().take(generative) {
        let t = Instant::now();
        let a = engine.ask(
            q,
            access,
            AnswerMode::Generative,
            Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )?;
        if let (Some(f), Some(s)) = (a.time_to_first_token_ms, a.tokens_per_second) {
            ttft.push(f);
            tps.push(s);
            total.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!(
        "questions: {}, search runs: {}",
        questions.len(),
        search_ms.len()
    );
    println!("search latency, median: {:.1} ms", median(search_ms));
    println!(
        "extractive answer (retrieval + answer), median: {:.1} ms",
        median(ask_ms)
    );
    if !ttft.is_empty() {
        println!(
            "generative ({}): time to first token median {:.0} ms, {:.1} tokens/s, whole answer {:.0} ms",
            engine.config.gguf_path().display(),
            median(ttft),
            median(tps),
            median(total)
        );
    }
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    Ok(())
}

fn main() {
    // libgomp reads OMP_WAIT_POLICY before main runs; spinning OpenMP threads make
    // generation several times slower on a busy 2-core machine. Re-exec once with it set.
    if let Err(e) = tanya::models::generate::ensure_passive_openmp() {
        eprintln!("warning: could not restart with OMP_WAIT_POLICY=PASSIVE: {e}");
    }
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn,qdrant_edge=error",
        1 => "info,llama_cpp_2=warn",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TANYA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        let user = err
            .chain()
            .find_map(|e| e.downcast_ref::<tanya::Error>())
            .is_some_and(|e| e.is_user_error());
        std::process::exit(if user { 2 } else { 1 });
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.paths.data_dir = dir;
    }
    match cli.command {
        Command::Serve { bind } => {
            let bind = bind.unwrap_or_else(|| config.server.bind.clone());
            let engine = std::sync::Arc::new(Engine::open(config)?);
            let documents = engine.collection.manifest().documents.len();
            tanya::server::serve(engine, &bind, |addr| {
                let shown = if addr.ip().is_unspecified() {
                    format!("http://localhost:{}/", addr.port())
                } else {
                    format!("http://{addr}/")
                };
                println!("Tanya is serving on {shown}");
                println!("  {documents} documents indexed; open the address in your browser. Ctrl+C stops.");
                let _ = std::io::stdout().flush();
            })?;
            Ok(())
        }
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Ingest {
            paths,
            groups,
            report,
        } => {
            let groups = if groups.is_empty() {
                config.ingest.default_groups.clone()
            } else {
                groups
            };
            Access::for_groups(groups.clone())?;
            let engine = Engine::open(config)?;
            let mut reports = Vec::new();
            for path in &paths {
                let observer = Progress::new();
                let r = engine
                    .ingest(
                        path,
                        &IngestOptions {
                            groups: groups.clone(),
                        },
                        &observer,
                    )
                    .with_context(|| format!("ingesting {}", path.display()))?;
                observer.finish();
                print_report(path, &r);
                reports.push(r);
            }
            if let Some(file) = report {
                std::fs::write(&file, serde_json::to_vec_pretty(&reports)?)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            Ok(())
        }
        Command::Search {
            query,
            groups,
            limit,
            json,
        } => {
            let access = Access::for_groups(groups)?;
            let engine = Engine::open(config)?;
            let k = limit.unwrap_or(engine.config.search.top_k);
            let t = Instant::now();
            let r = engine.search(&query, &access, k)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if json {
                println!("{}", serde_json::to_string_pretty(&r.hits)?);
                return Ok(());
            }
            if r.hits.is_empty() {
                println!("No passages found.");
            }
            for (i, h) in r.hits.iter().enumerate() {
                println!(
                    "{:>2}. {}  [score {:.4}]",
                    i + 1,
                    h.passage.location(),
                    h.score
                );
                println!("    {}", snippet(&h.passage.text, 240));
            }
            eprintln!("({} passages in {ms:.0} ms)", r.hits.len());
            Ok(())
        }
        Command::Ask {
            question,
            mode,
            groups,
            json,
        } => {
            let access = Access::for_groups(groups)?;
            let engine = Engine::open(config)?;
            let mode = mode.unwrap_or(engine.config.answer.mode);
            let cancel = Arc::new(AtomicBool::new(false));
            let mut streamed = false;
            let answer = engine.ask(&question, &access, mode, cancel, &mut |ev| {
                if let AnswerEvent::Token(t) = ev {
                    if !json {
                        if !streamed {
                            eprintln!("(generating with a local model...)");
                        }
                        streamed = true;
                        print!("{t}");
                        let _ = std::io::stdout().flush();
                    }
                }
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                if streamed {
                    println!("\n");
                }
                print_answer(&answer, streamed);
            }
            Ok(())
        }
        Command::Bench {
            questions,
            runs,
            generative,
            groups,
        } => {
            let access = Access::for_groups(groups)?;
            let text = std::fs::read_to_string(&questions)
                .with_context(|| format!("reading {}", questions.display()))?;
            let qs: BenchQuestions = toml::from_str(&text)
                .with_context(|| format!("parsing {}", questions.display()))?;
            let qs: Vec<String> = qs.question.into_iter().map(|q| q.question).collect();
            let engine = Engine::open(config)?;
            bench(&engine, &qs, runs, generative, &access)
        }
        Command::Documents { json } => {
            let engine = Engine::open(config)?;
            let m = engine.collection.manifest();
            if json {
                println!("{}", serde_json::to_string_pretty(&m.documents)?);
                return Ok(());
            }
            for d in m.documents.values() {
                println!(
                    "{}  {:?}  {}  {} chunks  groups: {}",
                    d.rel_path,
                    d.format,
                    d.title,
                    d.chunks,
                    d.groups.join(",")
                );
            }
            println!("{} documents", m.documents.len());
            Ok(())
        }
    }
}

fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

fn print_answer(a: &Answer, streamed: bool) {
    if !streamed || a.abstained {
        println!("{}\n", a.text);
    } else {
        println!("Answer (citations checked): {}\n", a.text);
    }
    for c in &a.citations {
        let page = c.page.map(|p| format!(", page {p}")).unwrap_or_default();
        println!("[{}] {} — {}{}", c.n, c.rel_path, c.title, page);
    }
    if a.abstained && !a.passages.is_empty() {
        println!("Closest passages:");
        for h in a.passages.iter().take(3) {
            println!("  - {}", h.passage.location());
        }
    }
    let mut timing = format!(
        "retrieval {:.0} ms, answer {:.0} ms",
        a.retrieval_ms, a.answer_ms
    );
    if let (Some(ttft), Some(tps)) = (a.time_to_first_token_ms, a.tokens_per_second) {
        timing.push_str(&format!(", first token {ttft:.0} ms, {tps:.1} tokens/s"));
    }
    eprintln!("({timing})");
}

fn print_report(path: &std::path::Path, r: &IngestReport) {
    println!(
        "{}: {} files: {} indexed ({} chunks), {} unchanged, {} removed, {} rejected in {:.1} s ({:.2} chunks/s embedding)",
        path.display(),
        r.files_seen,
        r.indexed.len(),
        r.chunks_embedded,
        r.unchanged,
        r.removed.len(),
        r.rejected.len(),
        r.elapsed_seconds,
        r.chunks_per_second()
    );
    if r.files_seen == 0 {
        println!("  the folder holds no files Tanya can read (PDF, DOCX, HTML, Markdown, text)");
    }
    for x in &r.rejected {
        println!("  rejected {} ({}): {}", x.rel_path, x.reason, x.message);
    }
    for x in &r.removed {
        println!("  removed {x} (deleted from the folder)");
    }
    let mut slow: Vec<_> = r.indexed.iter().collect();
    slow.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    for x in slow.iter().take(3).filter(|x| x.seconds > 5.0) {
        println!(
            "  slowest: {} ({} chunks, {:.1} s)",
            x.rel_path, x.chunks, x.seconds
        );
    }
}

/// Progress bar: files, files/s, chunks/s, ETA.
struct Progress {
    bar: ProgressBar,
    chunks: AtomicUsize,
    started: Instant,
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::hidden();
        Progress {
            bar,
            chunks: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl IngestObserver for Progress {
    fn start(&self, files: usize) {
        self.bar.set_length(files as u64);
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} files  {per_sec}  {msg}  ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }
    fn file_done(&self, rel_path: &str, chunks: usize) {
        let total = self.chunks.fetch_add(chunks, Ordering::Relaxed) + chunks;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.bar
            .set_message(format!("{:.1} chunks/s  {}", total as f64 / secs, rel_path));
        self.bar.inc(1);
    }
}
