//! `tanya parse-worker` (hidden): parses one file in this process under resource limits
//! and prints the result as JSON — the isolated worker that `ingest` runs for every file.

use std::path::PathBuf;

use tanya::engine::{worker_main, WorkerArgs};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    format: String,
    /// The folder the file was listed under: it is opened beneath it, through no symlink.
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    rel_path: String,
    #[arg(long)]
    max_file_bytes: u64,
    #[arg(long)]
    memory_bytes: u64,
    #[arg(long)]
    cpu_seconds: u64,
    path: PathBuf,
}

/// No configuration, no models: only the parser runs here. Returns the exit code.
pub fn run(args: Args) -> i32 {
    worker_main(WorkerArgs {
        root: args.root,
        path: args.path,
        rel_path: args.rel_path,
        format: args.format,
        max_file_bytes: args.max_file_bytes,
        memory_bytes: args.memory_bytes,
        cpu_seconds: args.cpu_seconds,
    })
}
