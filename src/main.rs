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
    /// Index files and folders (PDF, DOCX, XLSX, PPTX, CSV, email, HTML, Markdown, text). Re-running only
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
        /// Keep following the folder: re-ingest after every burst of changes, and do a
        /// full pass every --rescan seconds. Ctrl+C stops (safely at any moment).
        #[arg(long)]
        watch: bool,
        /// Seconds between full passes in --watch mode.
        #[arg(long, default_value_t = 300)]
        rescan: u64,
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
    /// Rebuild the index with the configured embedder (after changing embedder.model):
    /// every indexed folder and upload is ingested again beside the old index, which
    /// keeps its place until the new one is complete.
    Reindex,
    /// Measure retrieval or answer quality on a data set in BEIR layout.
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
    /// (Internal) Parse one file in this process under resource limits and print the
    /// result as JSON: the isolated worker that `ingest` runs for every file.
    #[command(hide = true)]
    ParseWorker {
        #[arg(long)]
        format: String,
        #[arg(long)]
        rel_path: String,
        #[arg(long)]
        max_file_bytes: u64,
        #[arg(long)]
        memory_bytes: u64,
        #[arg(long)]
        cpu_seconds: u64,
        path: PathBuf,
    },
    /// List the indexed documents.
    Documents {
        #[arg(long)]
        json: bool,
        /// Check that every document is whole in both stores (its chunk count in the
        /// vector store and the BM25 index equals the manifest's) and that nothing else
        /// is stored; exits with 1 when not.
        #[arg(long)]
        verify: bool,
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

#[derive(Subcommand)]
enum EvalCommand {
    /// Ingest a corpus into a scratch index and score ranked retrieval: nDCG@10,
    /// recall@10, recall@100, MRR@10 and latency percentiles, per mode.
    Retrieval {
        /// corpus.jsonl: {"_id","title","text"} per line.
        #[arg(long)]
        corpus: PathBuf,
        /// queries.jsonl: {"_id","text"} per line.
        #[arg(long)]
        queries: PathBuf,
        /// qrels TSV: query-id, corpus-id, score (with a header line).
        #[arg(long)]
        qrels: PathBuf,
        /// Modes to score (default: all of bm25, dense, hybrid).
        #[arg(long, value_delimiter = ',')]
        mode: Vec<tanya::eval::RetrievalMode>,
        /// Scratch index folder, reused (incrementally) across runs (default: under
        /// ~/.cache/tanya/eval/, one per corpus file).
        #[arg(long)]
        index: Option<PathBuf>,
        /// Also write the scores as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Score only the first N judged queries (for slow settings, e.g. LLM reranking).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Ingest a corpus and ask every question: SQuAD exact match and F1, "contains a
    /// gold answer", citation accuracy and abstention, per answer mode.
    Answers {
        #[arg(long)]
        corpus: PathBuf,
        /// queries.jsonl with the questions.
        #[arg(long)]
        questions: PathBuf,
        /// answers.jsonl: {"qid","answers":[...],"gold_doc"} per line.
        #[arg(long)]
        answers: PathBuf,
        /// Answer modes (default: extractive).
        #[arg(long, value_delimiter = ',')]
        mode: Vec<AnswerMode>,
        /// Ask at most this many questions (generative answers take seconds each).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        index: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// The scratch index of a corpus file: `index` or a folder under the cache named by
/// the corpus path.
fn eval_index(index: Option<PathBuf>, corpus: &std::path::Path) -> PathBuf {
    index.unwrap_or_else(|| {
        let canonical = corpus
            .canonicalize()
            .unwrap_or_else(|_| corpus.to_path_buf());
        let id = tanya::pipeline::doc_id_for(&canonical);
        tanya::config::expand_home(std::path::Path::new("~/.cache/tanya/eval")).join(id)
    })
}

/// Loads the corpus, writes it into the scratch folder and ingests it.
fn eval_engine(
    mut config: Config,
    corpus: &std::path::Path,
    index: Option<PathBuf>,
) -> anyhow::Result<(Engine, tanya::eval::Materialized)> {
    let index = eval_index(index, corpus);
    let docs: Vec<tanya::eval::CorpusDoc> = tanya::eval::read_jsonl(corpus)?;
    eprintln!(
        "{} documents from {}; scratch index {}",
        docs.len(),
        corpus.display(),
        index.display()
    );
    let materialized = tanya::eval::materialize(&docs, &index.join("docs"))?;
    config.paths.data_dir = index.join("data");
    let engine = Engine::open(config)?;
    let observer = Progress::new();
    let report = tanya::eval::ingest(&engine, &materialized, &observer)?;
    observer.finish();
    eprintln!(
        "ingest: {} indexed, {} unchanged, {} rejected, {} chunks embedded in {:.0} s",
        report.indexed.len(),
        report.unchanged,
        report.rejected.len(),
        report.chunks_embedded,
        report.elapsed_seconds
    );
    Ok((engine, materialized))
}

fn run_eval(config: Config, what: EvalCommand) -> anyhow::Result<()> {
    let access = Access::for_groups(config.ingest.default_groups.clone())?;
    match what {
        EvalCommand::Retrieval {
            corpus,
            queries,
            qrels,
            mode,
            index,
            json,
            limit,
        } => {
            let queries: Vec<tanya::eval::Query> = tanya::eval::read_jsonl(&queries)?;
            let qrels = tanya::eval::read_qrels(&qrels)?;
            let queries = tanya::eval::judged_queries(queries, &qrels, limit);
            let modes = if mode.is_empty() {
                tanya::eval::RetrievalMode::ALL.to_vec()
            } else {
                mode
            };
            let bm25_only = modes == [tanya::eval::RetrievalMode::Bm25];
            let scored: Box<dyn Fn(tanya::eval::RetrievalMode) -> tanya::Result<_>> = if bm25_only {
                // No vectors needed: an in-memory BM25 index over the same passages.
                let index = eval_index(index, &corpus);
                let docs: Vec<tanya::eval::CorpusDoc> = tanya::eval::read_jsonl(&corpus)?;
                let m = tanya::eval::materialize(&docs, &index.join("docs"))?;
                let embedder = tanya::models::embed::Embedder::from_config(&config)?;
                let t = Instant::now();
                let bm25 = tanya::eval::bm25_index(&m, &embedder, &config)?;
                eprintln!(
                    "{} documents, {} chunks in an in-memory BM25 index in {:.1} s",
                    docs.len(),
                    bm25.count(),
                    t.elapsed().as_secs_f64()
                );
                Box::new(move |_| {
                    tanya::eval::evaluate_bm25_only(&bm25, &queries, &qrels, &m.ids, &access)
                })
            } else {
                let (engine, m) = eval_engine(config, &corpus, index)?;
                Box::new(move |mode| {
                    tanya::eval::evaluate_retrieval(
                        &engine, mode, &queries, &qrels, &m.ids, &access,
                    )
                })
            };
            println!(
                "{:<8} {:>7} {:>8} {:>6} {:>7} {:>7} {:>9} {:>9}",
                "mode", "queries", "nDCG@10", "R@10", "R@100", "MRR@10", "p50 ms", "p95 ms"
            );
            let mut all = Vec::new();
            for mode in modes {
                let s = scored(mode)?;
                println!(
                    "{:<8} {:>7} {:>8.4} {:>6.4} {:>7.4} {:>7.4} {:>9.1} {:>9.1}",
                    mode.as_str(),
                    s.queries,
                    s.ndcg_at_10,
                    s.recall_at_10,
                    s.recall_at_100,
                    s.mrr_at_10,
                    s.latency_ms.p50,
                    s.latency_ms.p95
                );
                all.push(s);
            }
            if let Some(file) = json {
                std::fs::write(&file, serde_json::to_vec_pretty(&all)?)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            Ok(())
        }
        EvalCommand::Answers {
            corpus,
            questions,
            answers,
            mode,
            limit,
            index,
            json,
        } => {
            let queries: Vec<tanya::eval::Query> = tanya::eval::read_jsonl(&questions)?;
            let gold: Vec<tanya::eval::Gold> = tanya::eval::read_jsonl(&answers)?;
            let config_min_relevance = config.answer.min_relevance;
            let gold = gold.into_iter().map(|g| (g.qid.clone(), g)).collect();
            let (engine, m) = eval_engine(config, &corpus, index)?;
            let modes = if mode.is_empty() {
                vec![AnswerMode::Extractive]
            } else {
                mode
            };
            println!(
                "{:<11} {:>9} {:>6} {:>6} {:>8} {:>9} {:>10} {:>9} {:>9} {:>9}",
                "mode",
                "questions",
                "EM",
                "F1",
                "contains",
                "cite-acc",
                "cite-first",
                "gold-ret",
                "abstain",
                "p50 ms"
            );
            let mut all = Vec::new();
            for mode in modes {
                let s = tanya::eval::evaluate_answers(
                    &engine, mode, &queries, &gold, &m.ids, &access, limit,
                )?;
                println!(
                    "{:<11} {:>9} {:>6.3} {:>6.3} {:>8.3} {:>9.3} {:>10.3} {:>9.3} {:>9.3} {:>9.0}",
                    mode.as_str(),
                    s.questions,
                    s.exact_match,
                    s.f1,
                    s.contains,
                    s.citation_accuracy,
                    s.first_citation_accuracy,
                    s.gold_retrieved,
                    s.abstained,
                    s.latency_ms.p50
                );
                all.push(s);
            }
            // Answer rates by abstention threshold, from the last mode's run.
            if let Some(s) = all.last() {
                println!("\nanswer.min_relevance   answered   answered without the gold document");
                for p in &s.abstention {
                    let mark = if (p.threshold - config_min_relevance).abs() < 1e-4 {
                        "  (configured)"
                    } else {
                        ""
                    };
                    println!(
                        "{:>20.2} {:>10.3} {:>10.3}{mark}",
                        p.threshold, p.answered, p.answered_without_gold
                    );
                }
            }
            if let Some(file) = json {
                std::fs::write(&file, serde_json::to_vec_pretty(&all)?)
                    .with_context(|| format!("writing {}", file.display()))?;
            }
            Ok(())
        }
    }
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
    if let Some(rss) = tanya::pipeline::peak_rss_mib() {
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
        if err.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(28))
                || e.to_string().contains("No space left on device")
                || matches!(
                    e.downcast_ref::<tanya::Error>(),
                    Some(tanya::Error::DiskFull { .. })
                )
        }) {
            eprintln!(
                "  The disk holding the data directory is full. Documents indexed before this \
                 stay searchable; free some space and run the same command again to continue."
            );
        }
        let user = err
            .chain()
            .find_map(|e| e.downcast_ref::<tanya::Error>())
            .is_some_and(|e| e.is_user_error());
        std::process::exit(if user { 2 } else { 1 });
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::ParseWorker {
        format,
        rel_path,
        max_file_bytes,
        memory_bytes,
        cpu_seconds,
        path,
    } = cli.command
    {
        // No configuration, no models: only the parser runs here.
        std::process::exit(tanya::isolate::worker_main(tanya::isolate::WorkerArgs {
            path,
            rel_path,
            format,
            max_file_bytes,
            memory_bytes,
            cpu_seconds,
        }));
    }
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
        Command::Eval { what } => run_eval(config, what),
        Command::Reindex => {
            let observer = Progress::new();
            let r = tanya::reindex::reindex(config, &observer)?;
            observer.finish();
            println!(
                "reindexed {} → {}: {} of {} documents, {} chunks embedded in {:.1} s",
                r.previous_embedder,
                r.embedder,
                r.documents_after,
                r.documents_before,
                r.chunks_embedded,
                r.seconds
            );
            for root in &r.missing_roots {
                println!(
                    "  no longer exists (its documents are gone): {}",
                    root.display()
                );
            }
            Ok(())
        }
        Command::ParseWorker { .. } => unreachable!("handled before the configuration is read"),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Command::Ingest {
            paths,
            groups,
            report,
            watch,
            rescan,
        } => {
            let groups = if groups.is_empty() {
                config.ingest.default_groups.clone()
            } else {
                groups
            };
            Access::for_groups(groups.clone())?;
            let engine = Engine::open(config)?;
            if watch {
                let [root] = paths.as_slice() else {
                    anyhow::bail!(tanya::Error::BadRequest(
                        "--watch follows one folder at a time".into()
                    ));
                };
                println!("watching {} (Ctrl+C stops)", root.display());
                let stop = AtomicBool::new(false);
                return Ok(engine.watch(
                    root,
                    &IngestOptions { groups },
                    Duration::from_secs(rescan.max(1)),
                    &stop,
                    &mut |r| {
                        let changed = !r.indexed.is_empty()
                            || !r.removed.is_empty()
                            || !r.rejected.is_empty();
                        if changed {
                            print_report(root, r);
                        }
                    },
                )?);
            }
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
        Command::Documents { json, verify } => {
            let engine = Engine::open(config)?;
            if verify {
                return verify_documents(&engine, json);
            }
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

/// `tanya documents --verify`: per document, the manifest's chunk count against both
/// stores; in total, what is stored against what is acknowledged.
fn verify_documents(engine: &Engine, json: bool) -> anyhow::Result<()> {
    let m = engine.collection.manifest().clone();
    let mut rows = Vec::new();
    let mut whole = true;
    for (id, d) in &m.documents {
        let (vectors, bm25) = engine.collection.chunk_counts(id)?;
        let ok = vectors == d.chunks as usize && bm25 == d.chunks as usize;
        whole &= ok;
        rows.push(serde_json::json!({
            "id": id, "rel_path": d.rel_path, "chunks": d.chunks,
            "stored_vectors": vectors, "stored_bm25": bm25, "whole": ok,
        }));
        if !json && !ok {
            println!(
                "NOT WHOLE {}: manifest {} chunks, vector store {vectors}, BM25 {bm25}",
                d.rel_path, d.chunks
            );
        }
    }
    let acknowledged: usize = m.documents.values().map(|d| d.chunks as usize).sum();
    let (total_vectors, total_bm25) = engine.collection.total_counts()?;
    let clean = total_vectors == acknowledged && total_bm25 == acknowledged;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "documents": rows,
                "acknowledged_chunks": acknowledged,
                "stored_vectors_total": total_vectors,
                "stored_bm25_total": total_bm25,
                "ok": whole && clean,
            }))?
        );
    } else {
        println!(
            "{} documents, {acknowledged} acknowledged chunks; stored: {total_vectors} vectors, {total_bm25} BM25 entries: {}",
            m.documents.len(),
            if whole && clean { "consistent" } else { "INCONSISTENT" }
        );
    }
    if !(whole && clean) {
        std::process::exit(1);
    }
    Ok(())
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
        println!("  the folder holds no files Tanya can read (PDF, DOCX, XLSX, PPTX, CSV, email, HTML, Markdown, text)");
    }
    for x in &r.rejected {
        println!("  rejected {} ({}): {}", x.rel_path, x.reason, x.message);
    }
    for x in &r.removed {
        println!("  removed {x} (deleted from the folder)");
    }
    for x in r.indexed.iter().filter(|x| !x.ocr_pages.is_empty()) {
        let pages: Vec<String> = x.ocr_pages.iter().map(|p| p.to_string()).collect();
        println!(
            "  OCR'd {} (scanned pages {})",
            x.rel_path,
            pages.join(", ")
        );
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
