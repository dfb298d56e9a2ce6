//! `tanya ingest`: index files and folders, once or following a folder (`--watch`).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use tanya::config::Config;
use tanya::engine::{Access, IngestOptions, IngestReport};
use tanya::Engine;

use super::remote::{Remote, Target};
use super::Progress;

#[derive(clap::Args)]
pub struct Args {
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Access groups for these documents (default: ingest.default_groups).
    #[arg(long, value_delimiter = ',')]
    groups: Vec<String>,
    /// Move documents indexed already under other groups to these groups. Without it they
    /// keep the groups they have, and the run lists them.
    #[arg(long)]
    regroup: bool,
    /// Put new documents in this collection (a separate knowledge base, e.g. "HR"), which
    /// `ask --collection`, the API and the page can search alone.
    #[arg(long)]
    collection: Option<String>,
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
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let groups = if args.groups.is_empty() {
        config.ingest.default_groups.clone()
    } else {
        args.groups.clone()
    };
    Access::for_groups(groups.clone())?;
    if let Some(c) = &args.collection {
        Access::for_groups([c.clone()]).map_err(|_| {
            tanya::Error::BadRequest(format!("`{c}` is not a valid collection name"))
        })?;
    }
    let engine = match super::remote::open(config)? {
        Target::Engine(engine) => *engine,
        Target::Server(server) => return through_server(&server, &args, groups),
    };
    let options = IngestOptions {
        regroup: args.regroup,
        in_collection: args.collection.clone(),
        ..IngestOptions::with_groups(groups)
    };
    if args.watch {
        let [root] = args.paths.as_slice() else {
            anyhow::bail!(tanya::Error::BadRequest(
                "--watch follows one folder at a time".into()
            ));
        };
        return watch(&engine, root, &options, args.rescan);
    }
    let mut reports = Vec::new();
    for path in &args.paths {
        let observer = Progress::new();
        let r = engine
            .ingest(path, &options, &observer)
            .with_context(|| format!("ingesting {}", path.display()))?;
        observer.finish();
        print_report(path, &r);
        reports.push(r);
    }
    if let Some(file) = args.report {
        std::fs::write(&file, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// The same run, done by the running server (which holds the index).
fn through_server(server: &Remote, args: &Args, groups: Vec<String>) -> anyhow::Result<()> {
    if args.watch {
        anyhow::bail!(tanya::Error::BadRequest(
            "--watch needs the data directory to itself: stop `tanya serve` first, or \
             re-run `tanya ingest` (it goes through the server) when files change"
                .into()
        ));
    }
    let mut reports = Vec::new();
    for path in &args.paths {
        let full = path
            .canonicalize()
            .map_err(|_| tanya::Error::PathNotFound(path.clone()))?;
        let value = server.post(
            "/api/ingest",
            &serde_json::json!({
                "path": full,
                "groups": groups,
                "regroup": args.regroup,
                "collection": args.collection,
            }),
        )?;
        let report: IngestReport = serde_json::from_value(value)?;
        print_report(path, &report);
        reports.push(report);
    }
    if let Some(file) = &args.report {
        std::fs::write(file, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

fn watch(engine: &Engine, root: &Path, options: &IngestOptions, rescan: u64) -> anyhow::Result<()> {
    println!("watching {} (Ctrl+C stops)", root.display());
    let stop = AtomicBool::new(false);
    Ok(engine.watch(
        root,
        options,
        Duration::from_secs(rescan.max(1)),
        &stop,
        &mut |r| {
            let changed = !r.indexed.is_empty() || !r.removed.is_empty() || !r.rejected.is_empty();
            if changed {
                print_report(root, r);
            }
        },
    )?)
}

fn print_report(path: &Path, r: &IngestReport) {
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
    for x in &r.kept_groups {
        println!(
            "  kept groups {} for {} (asked for {}; --regroup moves it)",
            x.from.join(","),
            x.rel_path,
            x.to.join(",")
        );
    }
    for x in &r.regrouped {
        println!(
            "  regrouped {}: {} → {}",
            x.rel_path,
            x.from.join(","),
            x.to.join(",")
        );
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
