//! `tanya bench`: search and answer latency (medians) and peak memory on the current
//! index.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tanya::config::{AnswerMode, Config, GeneratorBackend};
use tanya::engine::Access;
use tanya::eval::Latency;
use tanya::Engine;

#[derive(clap::Args)]
pub struct Args {
    /// The questions: a TOML file with [[question]] tables holding `question = "..."`,
    /// or BEIR queries (`.jsonl`, one `{"_id", "text"}` per line, e.g. SciFact's).
    #[arg(long, default_value = "tests/data/questions.toml")]
    questions: PathBuf,
    /// Use at most this many of the questions (the first ones).
    #[arg(long)]
    max_questions: Option<usize>,
    /// Build a bigger index for the latency figures: copy the documents of the index in
    /// this data directory into the (empty) current one, each copy's vectors moved a
    /// little, until it holds `--grow-to` chunks (see `tanya::eval::scale`). Then exit.
    #[arg(long, requires = "grow_to")]
    grow_from: Option<PathBuf>,
    /// How many chunks `--grow-from` writes.
    #[arg(long)]
    grow_to: Option<usize>,
    /// Optimise the vector store first (merge segments, build the HNSW graph) and report
    /// how long it took.
    #[arg(long)]
    optimize: bool,
    /// Repetitions of each search.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Questions answered in generative mode (0 to skip).
    #[arg(long, default_value_t = 3)]
    generative: usize,
    #[arg(long, value_delimiter = ',', default_value = "public")]
    groups: Vec<String>,
    /// Also search while this folder is ingested (into the current index, where its
    /// documents stay), and report search latency during the ingest beside the latency
    /// before it.
    #[arg(long)]
    during_ingest: Option<PathBuf>,
    /// Measure what access control costs a search: the search with the groups' filter
    /// and with none (an administrator's), and the lookup of who is asking (an API token
    /// and a session among 1,000 people, in a scratch accounts database).
    #[arg(long)]
    access: bool,
    /// Ingest this folder into the index and report the ingest: documents, chunks and
    /// embedded texts per second, how busy the cores were, peak memory.
    #[arg(long)]
    ingest: Option<PathBuf>,
    /// Concurrent load: for each number of clients, that many threads ask and search at
    /// once (the questions, `--runs` times each), in process (the engine, not HTTP);
    /// throughput and latency percentiles per number of clients.
    #[arg(long, value_delimiter = ',')]
    clients: Vec<usize>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct BenchQuestions {
    question: Vec<BenchQuestion>,
}

#[derive(serde::Deserialize)]
struct BenchQuestion {
    question: String,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let access = Access::for_groups(args.groups)?;
    if let (Some(from), Some(chunks)) = (&args.grow_from, args.grow_to) {
        let grown = tanya::eval::scale::grow(&config, from, chunks, 0.5)?;
        println!(
            "grew {} to {} documents, {} chunks, {} vectors in {:.0} s",
            config.paths.data_dir.display(),
            grown.documents,
            grown.chunks,
            grown.vectors,
            grown.seconds
        );
        return Ok(());
    }
    let mut qs = read_questions(&args.questions)?;
    qs.truncate(args.max_questions.unwrap_or(usize::MAX));
    let engine = Engine::open(config)?;
    if args.optimize {
        let t = Instant::now();
        let changed = engine.optimize()?;
        println!(
            "optimize: {:.1} s ({})",
            t.elapsed().as_secs_f64(),
            if changed {
                "reorganised"
            } else {
                "nothing to do"
            }
        );
    }
    if let Some(folder) = &args.ingest {
        return ingest_speed(&engine, folder, args.json.as_deref());
    }
    if !args.clients.is_empty() {
        return concurrent_load(
            &engine,
            &qs,
            args.runs,
            &access,
            &args.clients,
            args.json.as_deref(),
        );
    }
    if let Some(folder) = &args.during_ingest {
        return searches_during_ingest(&engine, &qs, args.runs, &access, folder);
    }
    if args.access {
        return access_costs(&engine, &qs, args.runs, &access);
    }
    let search_ms = time_searches(&engine, &qs, args.runs, &access)?;
    let ask_ms = time_answers(&engine, &qs, &access)?;
    let chunks: usize = engine
        .manifest()
        .documents
        .values()
        .map(|d| d.chunks as usize)
        .sum();
    println!(
        "questions: {}, search runs: {}, index: {chunks} chunks",
        qs.len(),
        search_ms.len()
    );
    let (search, answer) = (latency(&search_ms), latency(&ask_ms));
    println!("search latency:    {}", describe(&search, search_ms.len()));
    println!(
        "extractive answer: {} (retrieval + answer)",
        describe(&answer, ask_ms.len())
    );
    if let Some(file) = &args.json {
        let json = serde_json::json!({
            "chunks": chunks,
            "questions": qs.len(),
            "search_runs": search_ms.len(),
            "search_ms": search,
            "extractive_answer_ms": answer,
            "peak_rss_mib": tanya::engine::peak_rss_mib(),
        });
        std::fs::write(file, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    time_generation(&engine, &qs, args.generative, &access)?;
    if let Some(rss) = tanya::engine::peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    Ok(())
}

/// The questions of a TOML question file or of BEIR queries (`.jsonl`).
fn read_questions(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    if path.extension().is_some_and(|e| e == "jsonl") {
        #[derive(serde::Deserialize)]
        struct Query {
            text: String,
        }
        let queries: Vec<Query> = tanya::eval::read_jsonl(path)?;
        return Ok(queries.into_iter().map(|q| q.text).collect());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let qs: BenchQuestions =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(qs.question.into_iter().map(|q| q.question).collect())
}

/// Search p50 with the caller's group filter and without any, and the p50 of finding
/// who asks from a token or a session cookie.
fn access_costs(
    engine: &Engine,
    questions: &[String],
    runs: usize,
    access: &Access,
) -> anyhow::Result<()> {
    // Alternate the two so that machine noise falls on both alike.
    let (mut filtered, mut open) = (Vec::new(), Vec::new());
    let everything = Access::everything();
    let k = engine.config().search.top_k;
    for _ in 0..runs {
        for q in questions {
            let t = Instant::now();
            engine.search(q, access, k)?;
            filtered.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            engine.search(q, &everything, k)?;
            open.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let scratch = tempfile::tempdir()?;
    let accounts = tanya::accounts::Accounts::open(scratch.path())?;
    let (mut tokens, mut sessions) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let name = format!("orang{i}");
        let u = accounts.add_user(
            &name,
            "kata-laluan-bench",
            tanya::accounts::Role::Reader,
            &[format!("g{}", i % 20)],
        )?;
        tokens.push(
            accounts
                .create_token(&name, "bench", tanya::accounts::Role::Reader)?
                .secret,
        );
        sessions.push(accounts.create_session(u.id, 3600)?);
    }
    let (mut by_token, mut by_session) = (Vec::new(), Vec::new());
    for i in 0..(runs * questions.len()).max(200) {
        let t = Instant::now();
        let found = accounts.token_user(&tokens[(i * 7919) % tokens.len()])?;
        by_token.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(found.is_some(), "a bench token was not found");
        let t = Instant::now();
        let found = accounts.session_user(&sessions[(i * 104_729) % sessions.len()])?;
        by_session.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(found.is_some(), "a bench session was not found");
    }
    let n = filtered.len();
    println!(
        "searches: {n} of each kind ({} questions × {runs})",
        questions.len()
    );
    println!(
        "search p50 with the groups' filter ({}): {:.2} ms",
        access.groups().collect::<Vec<_>>().join(","),
        median(filtered)
    );
    println!(
        "search p50 with no filter (an administrator): {:.2} ms",
        median(open)
    );
    println!(
        "who is asking, p50: API token {:.3} ms, session {:.3} ms (1,000 people)",
        median(by_token),
        median(by_session)
    );
    Ok(())
}

/// Search latency (p50, p99) on an idle engine, then while `folder` is ingested.
fn searches_during_ingest(
    engine: &Engine,
    questions: &[String],
    runs: usize,
    access: &Access,
    folder: &std::path::Path,
) -> anyhow::Result<()> {
    let idle = time_searches(engine, questions, runs, access)?;
    let options =
        tanya::engine::IngestOptions::with_groups(engine.config().ingest.default_groups.clone());
    let done = AtomicBool::new(false);
    let (report, during) = std::thread::scope(|scope| {
        let ingest = scope.spawn(|| {
            let r = engine.ingest(folder, &options, &tanya::engine::Quiet);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        });
        let mut during = Vec::new();
        'outer: while !done.load(std::sync::atomic::Ordering::SeqCst) {
            for q in questions {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    break 'outer;
                }
                let t = Instant::now();
                engine.search(q, access, engine.config().search.top_k)?;
                during.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let report = ingest.join().expect("the ingest thread panicked")?;
        anyhow::Ok((report, during))
    })?;
    println!(
        "ingest of {}: {} documents, {} chunks in {:.1} s",
        folder.display(),
        report.indexed.len(),
        report.chunks_embedded,
        report.elapsed_seconds
    );
    println!(
        "search latency idle:         p50 {:.1} ms, p99 {:.1} ms ({} searches)",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        idle.len()
    );
    println!(
        "search latency during ingest: p50 {:.1} ms, p99 {:.1} ms ({} searches)",
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.len()
    );
    if let Some(rss) = tanya::engine::peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    Ok(())
}

/// The p50/p95/p99 of `ms` (nearest rank, as [`percentile`]), in the shape `tanya eval`
/// reports.
fn latency(ms: &[f64]) -> Latency {
    Latency {
        p50: percentile(ms, 0.5),
        p95: percentile(ms, 0.95),
        p99: percentile(ms, 0.99),
    }
}

/// `l` on one line, with how many timings it came from.
fn describe(l: &Latency, n: usize) -> String {
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms ({n} runs)",
        l.p50, l.p95, l.p99
    )
}

/// `--clients N,...`: N threads at once, each searching and asking (extractive) through
/// the questions `runs` times; per N, the requests per second and the latency of each kind.
fn concurrent_load(
    engine: &Engine,
    questions: &[String],
    runs: usize,
    access: &Access,
    clients: &[usize],
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let k = engine.config().search.top_k;
    let mut rows = Vec::new();
    println!("clients  requests/s  search p50 / p99        answer p50 / p99   (in process)");
    for &n in clients.iter().filter(|&&n| n > 0) {
        let started = Instant::now();
        let per_thread: Vec<anyhow::Result<(Vec<f64>, Vec<f64>)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|c| {
                    scope.spawn(move || {
                        let (mut search, mut ask) = (Vec::new(), Vec::new());
                        for r in 0..runs.max(1) {
                            for i in 0..questions.len() {
                                // Each client starts at another question.
                                let q = &questions[(i + c * 7 + r) % questions.len()];
                                let t = Instant::now();
                                engine.search(q, access, k)?;
                                search.push(t.elapsed().as_secs_f64() * 1000.0);
                                let t = Instant::now();
                                let cancel = Arc::new(AtomicBool::new(false));
                                engine.ask(
                                    q,
                                    access,
                                    AnswerMode::Extractive,
                                    cancel,
                                    &mut |_| {},
                                )?;
                                ask.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                        }
                        anyhow::Ok((search, ask))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a bench client panicked"))
                .collect()
        });
        let wall = started.elapsed().as_secs_f64();
        let (mut search, mut ask) = (Vec::new(), Vec::new());
        for r in per_thread {
            let (s, a) = r?;
            search.extend(s);
            ask.extend(a);
        }
        let rate = (search.len() + ask.len()) as f64 / wall;
        let (s, a) = (latency(&search), latency(&ask));
        println!(
            "{n:>7}  {rate:>10.1}  {:>6.1} / {:>6.1} ms     {:>6.1} / {:>6.1} ms",
            s.p50, s.p99, a.p50, a.p99
        );
        rows.push(serde_json::json!({ "clients": n, "requests_per_second": rate, "search_ms": s, "extractive_answer_ms": a }));
    }
    if let Some(file) = json {
        std::fs::write(file, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// CPU seconds used so far by this process and by its children that have ended (the
/// parse workers), from /proc (in USER_HZ, 100 a second on Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11) // utime is field 14, the 12th after the name
        .take(4) // utime, stime, cutime, cstime
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.len() == 4).then(|| f.iter().sum::<f64>() / 100.0)
}

/// `--ingest FOLDER`: one ingest, measured.
fn ingest_speed(
    engine: &Engine,
    folder: &std::path::Path,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let options =
        tanya::engine::IngestOptions::with_groups(engine.config().ingest.default_groups.clone());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu_before = cpu_seconds();
    let report = engine.ingest(folder, &options, &tanya::engine::Quiet)?;
    let cpu = match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let secs = report.elapsed_seconds.max(1e-9);
    let busy = cpu.map(|c| c / secs / cores as f64);
    let docs = report.indexed.len();
    println!(
        "ingest of {}: {docs} documents, {} chunks, {} texts embedded in {:.1} s \
         (embedding {:.1} s, optimising the vector store {:.1} s)",
        folder.display(),
        report.chunks_embedded,
        report.texts_embedded,
        report.elapsed_seconds,
        report.embed_seconds,
        report.optimize_seconds
    );
    println!(
        "{:.2} documents/s, {:.2} chunks/s, {:.1} texts/s; cores busy {}; peak RSS {}",
        docs as f64 / secs,
        report.chunks_embedded as f64 / secs,
        report.texts_embedded as f64 / secs,
        busy.map_or("?".into(), |b| format!("{:.0} % of {cores}", b * 100.0)),
        report
            .peak_rss_mib
            .map_or("?".into(), |r| format!("{r:.0} MiB"))
    );
    if let Some(file) = json {
        let value = serde_json::json!({
            "folder": folder,
            "embedder": engine.embedder_identity(),
            "documents": docs,
            "chunks": report.chunks_embedded,
            "texts_embedded": report.texts_embedded,
            "seconds": report.elapsed_seconds,
            "embed_seconds": report.embed_seconds,
            "optimize_seconds": report.optimize_seconds,
            "documents_per_second": docs as f64 / secs,
            "chunks_per_second": report.chunks_embedded as f64 / secs,
            "cores": cores,
            "cores_busy": busy,
            "peak_rss_mib": report.peak_rss_mib,
            "rejected": report.rejected.len(),
        });
        std::fs::write(file, serde_json::to_string_pretty(&value)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// The `q` quantile (nearest rank) of `xs`.
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
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

fn time_searches(
    engine: &Engine,
    questions: &[String],
    runs: usize,
    access: &Access,
) -> anyhow::Result<Vec<f64>> {
    let mut ms = Vec::new();
    for _ in 0..runs.max(1) {
        for q in questions {
            let t = Instant::now();
            engine.search(q, access, engine.config().search.top_k)?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(ms)
}

fn time_answers(
    engine: &Engine,
    questions: &[String],
    access: &Access,
) -> anyhow::Result<Vec<f64>> {
    let mut ms = Vec::new();
    for q in questions {
        let t = Instant::now();
        let cancel = Arc::new(AtomicBool::new(false));
        engine.ask(q, access, AnswerMode::Extractive, cancel, &mut |_| {})?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(ms)
}

fn time_generation(
    engine: &Engine,
    questions: &[String],
    generative: usize,
    access: &Access,
) -> anyhow::Result<()> {
    let (mut ttft, mut tps, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for q in questions.iter().take(generative) {
        let t = Instant::now();
        let cancel = Arc::new(AtomicBool::new(false));
        let a = engine.ask(q, access, AnswerMode::Generative, cancel, &mut |_| {})?;
        if let (Some(f), Some(s)) = (a.time_to_first_token_ms, a.tokens_per_second) {
            ttft.push(f);
            tps.push(s);
            total.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    if !ttft.is_empty() {
        let g = &engine.config().generator;
        let model = match g.backend {
            GeneratorBackend::Local => engine.config().gguf_path().display().to_string(),
            GeneratorBackend::Openai => g.url.clone(),
        };
        println!(
            "generative ({model}): time to first token median {:.0} ms, {:.1} tokens/s, whole answer {:.0} ms",
            median(ttft),
            median(tps),
            median(total)
        );
    }
    Ok(())
}
