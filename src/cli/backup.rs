//! `tanya backup DIR` and `tanya restore DIR`: a consistent copy of the index, uploads,
//! audit log and accounts, made while `tanya serve` runs (through it) or not; and putting
//! one in place as a new data directory, checked before it is used.

use std::path::PathBuf;

use tanya::accounts::Accounts;
use tanya::config::Config;
use tanya::server::local::{self, BackupReport};
use tanya::Engine;

use super::remote::Target;

#[derive(clap::Args)]
pub struct BackupArgs {
    /// A new (or empty) folder to copy into.
    dest: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A folder made by `tanya backup`.
    backup: PathBuf,
}

pub fn backup(config: Config, args: BackupArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dest)?;
    let dest = args.dest.canonicalize()?;
    let report = match super::remote::open(config)? {
        Target::Engine(engine) => {
            let accounts = Accounts::open_with(engine.data_dir(), &engine.config().shared)?;
            local::backup(&engine, &accounts, &dest)?
        }
        Target::Server(server) => {
            let value = server.post("/api/backup", &serde_json::json!({ "dest": dest }))?;
            serde_json::from_value(value)?
        }
    };
    print_report("backed up", &dest, &report);
    Ok(())
}

pub fn restore(config: Config, args: RestoreArgs) -> anyhow::Result<()> {
    let data_dir = config.paths.data_dir.clone();
    let report = local::restore(&args.backup, &data_dir)?;
    // Opened, the copy finishes any write that was under way when it was made; then
    // every document must be whole.
    let engine = Engine::open(config)?;
    let check = engine.verify()?;
    print_report("restored", &data_dir, &report);
    let whole = check
        .documents
        .iter()
        .all(|d| d.whole && d.text_stored && d.groups_as_recorded)
        && check.stored_vectors_total == check.acknowledged_chunks
        && check.stored_bm25_total == check.acknowledged_chunks;
    if !whole {
        anyhow::bail!(
            "the restored index is not whole: run `tanya documents --verify` for the details"
        );
    }
    println!("  checked: every document is whole in both stores, with its text and groups");
    let elsewhere = check
        .documents
        .iter()
        .filter(|d| d.source_problem.is_some())
        .count();
    if elsewhere > 0 {
        println!(
            "  {elsewhere} documents' original files are not where they were indexed from on \
             this machine: answers and the text view work; the original view needs the files"
        );
    }
    Ok(())
}

fn print_report(what: &str, dir: &std::path::Path, r: &BackupReport) {
    println!(
        "{what} {}: {} documents, {} people, {} files, {:.1} MB (backup of {})",
        dir.display(),
        r.documents,
        r.users,
        r.files,
        r.bytes as f64 / 1e6,
        chrono::DateTime::from_timestamp(r.created_at, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    );
}
