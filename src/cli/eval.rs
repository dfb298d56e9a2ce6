//! `tanya eval retrieval|answers`: quality on a data set in BEIR layout, through the real
//! pipeline into a scratch index.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tanya::config::{AnswerMode, Config};
use tanya::engine::Access;
use tanya::eval::{AnswerScores, RetrievalMode, RetrievalScores};
use tanya::Engine;

use super::Progress;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Ingest a corpus into a scratch index and score ranked retrieval: nDCG@10,
    /// recall@10, recall@100, MRR@10 and latency percentiles, per mode.
    Retrieval(RetrievalArgs),
    /// Ingest a corpus and ask every question: SQuAD exact match and F1, "contains a
    /// gold answer", citation accuracy and abstention, per answer mode.
    Answers(AnswersArgs),
    /// Ingest a folder of documents and ask a question set about them (conversations
    /// turn by turn): right answers per kind of question, false abstentions.
    Questions(QuestionsArgs),
}

#[derive(clap::Args)]
pub struct QuestionsArgs {
    /// The question set (JSON lines; see tests/data/answers/).
    #[arg(long)]
    set: PathBuf,
    /// The folder the questions are about.
    #[arg(long, default_value = "samples/corpus")]
    docs: PathBuf,
    /// Answer mode (default: extractive).
    #[arg(long, default_value = "extractive")]
    mode: AnswerMode,
    /// Scratch data directory, reused (incrementally) across runs (default: under
    /// ~/.cache/tanya/eval/, one per folder).
    #[arg(long)]
    index: Option<PathBuf>,
    /// Also write the scores and every outcome as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print every wrong answer.
    #[arg(long)]
    misses: bool,
}

#[derive(clap::Args)]
pub struct RetrievalArgs {
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
    mode: Vec<RetrievalMode>,
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
}

#[derive(clap::Args)]
pub struct AnswersArgs {
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
}

pub fn run(config: Config, what: Command) -> anyhow::Result<()> {
    let access = Access::for_groups(config.ingest.default_groups.clone())?;
    match what {
        Command::Retrieval(args) => retrieval(config, args, access),
        Command::Answers(args) => answers(config, args, access),
        Command::Questions(args) => questions(config, args, access),
    }
}

fn questions(mut config: Config, args: QuestionsArgs, access: Access) -> anyhow::Result<()> {
    let set: Vec<tanya::eval::questions::SetQuestion> = tanya::eval::read_jsonl(&args.set)?;
    config.paths.data_dir = eval_index(args.index, &args.docs).join("data");
    eprintln!(
        "{} questions about {}; scratch index {}",
        set.len(),
        args.docs.display(),
        config.paths.data_dir.display()
    );
    let engine = Engine::open(config)?;
    let options =
        tanya::engine::IngestOptions::with_groups(engine.config().ingest.default_groups.clone());
    let report = engine.ingest(&args.docs, &options, &tanya::engine::Quiet)?;
    eprintln!(
        "ingest: {} indexed, {} unchanged, {} rejected",
        report.indexed.len(),
        report.unchanged,
        report.rejected.len()
    );
    let s = tanya::eval::questions::evaluate(&engine, &set, &access, args.mode)?;
    if args.misses {
        let by_id: std::collections::HashMap<&str, &tanya::eval::questions::SetQuestion> =
            set.iter().map(|q| (q.id.as_str(), q)).collect();
        for o in s.outcomes.iter().filter(|o| !o.right) {
            let q = by_id[o.id.as_str()];
            println!(
                "MISS {} [{}] {}\n  expected {} {:?}; cited {:?}, fact {}\n  {}",
                o.id,
                o.kind,
                q.question,
                q.document.as_deref().unwrap_or("(abstain)"),
                q.answer_contains,
                o.cited,
                o.fact,
                o.answer.chars().take(240).collect::<String>()
            );
        }
    }
    println!(
        "{:<16} {:>6} {:>6} {:>7}",
        "kind", "right", "asked", "share"
    );
    for (kind, t) in s
        .by_kind
        .iter()
        .chain([(&"overall".to_string(), &s.overall)])
    {
        println!(
            "{:<16} {:>6} {:>6} {:>7.3}",
            kind,
            t.right,
            t.asked,
            t.share()
        );
    }
    println!(
        "false abstentions: {} of {} answerable ({:.3})",
        s.false_abstention.right,
        s.false_abstention.asked,
        s.false_abstention.share()
    );
    write_json(args.json, &s)
}

/// The scratch index of a corpus file: `index` or a folder under the cache named by
/// the corpus path.
fn eval_index(index: Option<PathBuf>, corpus: &Path) -> PathBuf {
    index.unwrap_or_else(|| {
        let canonical = corpus
            .canonicalize()
            .unwrap_or_else(|_| corpus.to_path_buf());
        let id = tanya::engine::doc_id_for(&canonical);
        tanya::config::expand_home(Path::new("~/.cache/tanya/eval")).join(id)
    })
}

/// Loads the corpus, writes it into the scratch folder and ingests it.
fn eval_engine(
    mut config: Config,
    corpus: &Path,
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

type Scorer = Box<dyn Fn(RetrievalMode) -> tanya::Result<RetrievalScores>>;

fn retrieval(config: Config, args: RetrievalArgs, access: Access) -> anyhow::Result<()> {
    let queries: Vec<tanya::eval::Query> = tanya::eval::read_jsonl(&args.queries)?;
    let qrels = tanya::eval::read_qrels(&args.qrels)?;
    let queries = tanya::eval::judged_queries(queries, &qrels, args.limit);
    let modes = if args.mode.is_empty() {
        RetrievalMode::ALL.to_vec()
    } else {
        args.mode
    };
    let scored: Scorer = if modes == [RetrievalMode::Bm25] {
        // No vectors needed: an in-memory BM25 index over the same passages.
        let index = eval_index(args.index, &args.corpus);
        let docs: Vec<tanya::eval::CorpusDoc> = tanya::eval::read_jsonl(&args.corpus)?;
        let m = tanya::eval::materialize(&docs, &index.join("docs"))?;
        let t = Instant::now();
        let bm25 = tanya::eval::bm25_index_for(&m, &config)?;
        eprintln!(
            "{} documents, {} chunks in a BM25 index ({}) in {:.1} s",
            docs.len(),
            bm25.count()?,
            match bm25 {
                tanya::eval::LexicalIndex::Tantivy(_) => "tantivy, in memory",
                tanya::eval::LexicalIndex::Qdrant(_) => "sparse vectors on the Qdrant server",
            },
            t.elapsed().as_secs_f64()
        );
        Box::new(move |_| tanya::eval::evaluate_bm25_only(&bm25, &queries, &qrels, &m.ids, &access))
    } else {
        let (engine, m) = eval_engine(config, &args.corpus, args.index)?;
        Box::new(move |mode| {
            tanya::eval::evaluate_retrieval(&engine, mode, &queries, &qrels, &m.ids, &access)
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
    write_json(args.json, &all)
}

fn answers(config: Config, args: AnswersArgs, access: Access) -> anyhow::Result<()> {
    let queries: Vec<tanya::eval::Query> = tanya::eval::read_jsonl(&args.questions)?;
    let gold: Vec<tanya::eval::Gold> = tanya::eval::read_jsonl(&args.answers)?;
    let configured = config.min_relevance();
    let gold = gold.into_iter().map(|g| (g.qid.clone(), g)).collect();
    let (engine, m) = eval_engine(config, &args.corpus, args.index)?;
    let modes = if args.mode.is_empty() {
        vec![AnswerMode::Extractive]
    } else {
        args.mode
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
            &engine, mode, &queries, &gold, &m.ids, &access, args.limit,
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
    if let Some(s) = all.last() {
        print_abstention(s, configured);
    }
    write_json(args.json, &all)
}

/// Answer rates by abstention threshold, from the last mode's run.
fn print_abstention(s: &AnswerScores, configured: f32) {
    println!("\nanswer.min_relevance   answered   answered without the gold document");
    for p in &s.abstention {
        let mark = if (p.threshold - configured).abs() < 1e-4 {
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

fn write_json<T: serde::Serialize>(file: Option<PathBuf>, value: &T) -> anyhow::Result<()> {
    if let Some(file) = file {
        std::fs::write(&file, serde_json::to_vec_pretty(value)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}
