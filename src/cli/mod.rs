//! The `tanya` subcommands, one file each. Each has its clap `Args` and a `run`; they
//! use the library's [`tanya::Engine`] (and [`tanya::eval`], [`tanya::server`],
//! [`tanya::accounts`]) only.

pub mod ask;
pub mod backup;
pub mod bench;
pub mod config;
pub mod documents;
pub mod eval;
pub mod ingest;
pub mod migrate;
pub mod parse_worker;
pub mod reindex;
mod remote;
pub mod search;
pub mod serve;
pub mod users;

mod progress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use progress::Progress;

#[derive(Parser)]
#[command(
    name = "tanya",
    version,
    about = "Ask your own documents, privately, offline"
)]
pub struct Cli {
    /// Configuration file layered over the built-in defaults.
    #[arg(long, global = true, env = "TANYA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides paths.data_dir).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// More logging (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Index files and folders (PDF, DOCX, XLSX, PPTX, CSV, email, HTML, Markdown, text).
    /// Re-running only processes what changed; files deleted from a folder leave the index.
    Ingest(ingest::Args),
    /// Hybrid search: ranked passages with document, page and a snippet.
    Search(search::Args),
    /// Answer a question from the documents, with citations.
    Ask(ask::Args),
    /// Serve the browser page, the JSON API and the OpenAI-compatible endpoint.
    Serve(serve::Args),
    /// Rebuild the index with the configured embedder (after changing embedder.model):
    /// every indexed folder and upload is ingested again beside the old index, which
    /// keeps its place until the new one is complete.
    Reindex,
    /// Move the vectors to another store (the embedded shard, or the Qdrant server of
    /// `[store] url`) as they are, without re-embedding: resumable, verified by counts
    /// and by the same search results on sample queries, then swapped in.
    Migrate(migrate::Args),
    /// Measure retrieval or answer quality on a data set in BEIR layout.
    Eval {
        #[command(subcommand)]
        what: eval::Command,
    },
    /// (Internal) Parse one file in this process under resource limits and print the
    /// result as JSON: the isolated worker that `ingest` runs for every file.
    #[command(hide = true)]
    ParseWorker(parse_worker::Args),
    /// List the indexed documents.
    Documents(documents::Args),
    /// Print the effective configuration.
    Config,
    /// Measure search and answer latency (medians) and peak memory on the current index.
    Bench(bench::Args),
    /// Manage the people who may use Tanya (the accounts database in the data directory;
    /// works while `tanya serve` runs).
    Users {
        #[command(subcommand)]
        what: users::UsersCommand,
    },
    /// Copy the index, uploads, audit log and accounts into a new folder, consistently,
    /// also while `tanya serve` runs.
    Backup(backup::BackupArgs),
    /// Put a backup in place as a new (empty) data directory, and check it.
    Restore(backup::RestoreArgs),
    /// Manage API tokens for programs (shown once, stored hashed, revocable).
    Tokens {
        #[command(subcommand)]
        what: users::TokensCommand,
    },
}

/// Logs to stderr: warnings by default, `-v` info, `-vv` debug, or `TANYA_LOG`. With
/// `TANYA_LOG_FILE` set, every event passing `TANYA_LOG_FILE_FILTER` (default `debug`) is
/// also appended to that file, whatever stderr shows: a service's full log beside its
/// terse console (the test command runs the whole suite this way at trace level).
/// Whatever the filters say, `tokenizers` logs at `info` at most: its trace level writes
/// out the text it normalises, character by character, and document text never goes
/// to a log.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = match verbose {
        0 => "warn,qdrant_edge=error",
        1 => "info,llama_cpp_2=warn",
        _ => "debug",
    };
    let no_text = |f: EnvFilter| {
        f.add_directive(
            tanya::config::NO_TEXT_LOG_DIRECTIVE
                .parse()
                .expect("a valid directive"),
        )
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(no_text(
            EnvFilter::try_from_env("TANYA_LOG").unwrap_or_else(|_| EnvFilter::new(filter)),
        ));
    let file = std::env::var_os("TANYA_LOG_FILE").and_then(|path| {
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        match opened {
            Ok(f) => Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(f))
                    .with_filter(no_text(
                        EnvFilter::try_from_env("TANYA_LOG_FILE_FILTER")
                            .unwrap_or_else(|_| EnvFilter::new("debug")),
                    )),
            ),
            Err(e) => {
                eprintln!(
                    "warning: cannot open the log file {}: {e}",
                    std::path::Path::new(&path).display()
                );
                None
            }
        }
    });
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .init();
}

/// `text` on one line, cut to `max` characters.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}
