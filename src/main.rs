//! The `tanya` command line: a thin layer over [`tanya::Engine`]. This file only parses
//! the arguments and dispatches to `cli/`, one file per subcommand. Only this binary uses
//! `anyhow`; it prints errors with their causes and picks the exit code (2 for the
//! user's mistakes, 1 for ours).

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tanya::config::Config;

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
    /// Index files and folders (PDF, DOCX, XLSX, PPTX, CSV, email, HTML, Markdown, text).
    /// Re-running only processes what changed; files deleted from a folder leave the index.
    Ingest(cli::ingest::Args),
    /// Hybrid search: ranked passages with document, page and a snippet.
    Search(cli::search::Args),
    /// Answer a question from the documents, with citations.
    Ask(cli::ask::Args),
    /// Serve the browser page, the JSON API and the OpenAI-compatible endpoint.
    Serve(cli::serve::Args),
    /// Rebuild the index with the configured embedder (after changing embedder.model):
    /// every indexed folder and upload is ingested again beside the old index, which
    /// keeps its place until the new one is complete.
    Reindex,
    /// Measure retrieval or answer quality on a data set in BEIR layout.
    Eval {
        #[command(subcommand)]
        what: cli::eval::Command,
    },
    /// (Internal) Parse one file in this process under resource limits and print the
    /// result as JSON: the isolated worker that `ingest` runs for every file.
    #[command(hide = true)]
    ParseWorker(cli::parse_worker::Args),
    /// List the indexed documents.
    Documents(cli::documents::Args),
    /// Print the effective configuration.
    Config,
    /// Measure search and answer latency (medians) and peak memory on the current index.
    Bench(cli::bench::Args),
}

fn main() {
    // libgomp reads OMP_WAIT_POLICY before main runs; spinning OpenMP threads make
    // generation several times slower on a busy 2-core machine. Re-exec once with it set.
    if let Err(e) = tanya::engine::ensure_passive_openmp() {
        eprintln!("warning: could not restart with OMP_WAIT_POLICY=PASSIVE: {e}");
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        // By errno anywhere in the chain (a store or tantivy failing on a full disk
        // included), never by message text.
        let disk_full = err.chain().any(|e| {
            e.downcast_ref::<tanya::Error>()
                .is_some_and(tanya::Error::is_disk_full)
                || e.downcast_ref::<std::io::Error>()
                    .is_some_and(tanya::error::is_disk_full)
        });
        if disk_full {
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

fn init_logging(verbose: u8) {
    let filter = match verbose {
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
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::ParseWorker(args) = cli.command {
        // No configuration, no models: only the parser runs here.
        std::process::exit(cli::parse_worker::run(args));
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.paths.data_dir = dir;
    }
    match cli.command {
        Command::Ingest(args) => cli::ingest::run(config, args),
        Command::Search(args) => cli::search::run(config, args),
        Command::Ask(args) => cli::ask::run(config, args),
        Command::Serve(args) => cli::serve::run(config, args),
        Command::Reindex => cli::reindex::run(config),
        Command::Eval { what } => cli::eval::run(config, what),
        Command::Documents(args) => cli::documents::run(config, args),
        Command::Config => cli::config::run(&config),
        Command::Bench(args) => cli::bench::run(config, args),
        Command::ParseWorker(_) => unreachable!("handled before the configuration is read"),
    }
}
