//! `tanya bench`: search and answer latency (medians) and peak memory on the current
//! index.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tanya::config::{AnswerMode, Config};
use tanya::engine::Access;
use tanya::Engine;

#[derive(clap::Args)]
pub struct Args {
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
    let text = std::fs::read_to_string(&args.questions)
        .with_context(|| format!("reading {}", args.questions.display()))?;
    let qs: BenchQuestions =
        toml::from_str(&text).with_context(|| format!("parsing {}", args.questions.display()))?;
    let qs: Vec<String> = qs.question.into_iter().map(|q| q.question).collect();
    let engine = Engine::open(config)?;
    let search_ms = time_searches(&engine, &qs, args.runs, &access)?;
    let ask_ms = time_answers(&engine, &qs, &access)?;
    println!("questions: {}, search runs: {}", qs.len(), search_ms.len());
    println!("search latency, median: {:.1} ms", median(search_ms));
    println!(
        "extractive answer (retrieval + answer), median: {:.1} ms",
        median(ask_ms)
    );
    time_generation(&engine, &qs, args.generative, &access)?;
    if let Some(rss) = tanya::engine::peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    Ok(())
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
        println!(
            "generative ({}): time to first token median {:.0} ms, {:.1} tokens/s, whole answer {:.0} ms",
            engine.config().gguf_path().display(),
            median(ttft),
            median(tps),
            median(total)
        );
    }
    Ok(())
}
