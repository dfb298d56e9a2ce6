//! `tanya reindex`: rebuilds the index with the configured embedder (after a model
//! change) beside the old one, then swaps it in. Searches keep using the old index until
//! the new one is complete; a crash at any point leaves either the old index or the new
//! one, never a mix.
//!
//! Layout: the new stores and manifest are built in `<data_dir>/reindex/`. When they are
//! complete, `reindex/READY` is written (atomically). From then on the swap is decided:
//! the old `vectors/`, `bm25/` and `manifest.json` move to `reindex-old/`, the new ones
//! move up, and both folders are removed. [`finish_interrupted`] (run whenever a
//! collection opens) completes a swap that a crash cut short, or discards a build that
//! never became READY.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::pipeline::{IngestObserver, IngestOptions};
use crate::Engine;

const STAGING: &str = "reindex";
const OLD: &str = "reindex-old";
const READY: &str = "READY";
/// What a swap moves.
const ITEMS: [&str; 3] = ["vectors", "bm25", crate::manifest::MANIFEST_FILE];
/// Test-only: stop right after READY is written, as a crash would.
pub const STOP_AFTER_READY_ENV: &str = "TANYA_TEST_REINDEX_STOP_AFTER_READY";

/// What a reindex did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReindexReport {
    pub previous_embedder: String,
    pub embedder: String,
    pub documents_before: usize,
    pub documents_after: usize,
    /// Folders (or files) that were indexed before but no longer exist.
    pub missing_roots: Vec<PathBuf>,
    pub chunks_embedded: usize,
    pub seconds: f64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

/// Completes or discards an interrupted reindex of `data_dir`. The caller holds the
/// data directory's lock.
pub fn finish_interrupted(data_dir: &Path) -> Result<()> {
    let staging = data_dir.join(STAGING);
    if !staging.exists() {
        return Ok(());
    }
    if !staging.join(READY).exists() {
        // The build never finished: the old index is intact and stays.
        tracing::warn!("discarding an unfinished reindex in {}", staging.display());
        return std::fs::remove_dir_all(&staging).map_err(|e| io("removing", &staging, e));
    }
    swap(data_dir)
}

/// Moves the READY staging index into place (idempotent: safe to repeat after a crash).
fn swap(data_dir: &Path) -> Result<()> {
    let staging = data_dir.join(STAGING);
    let old = data_dir.join(OLD);
    std::fs::create_dir_all(&old).map_err(|e| io("creating", &old, e))?;
    for item in ITEMS {
        let new = staging.join(item);
        if !new.exists() {
            continue; // moved already
        }
        let current = data_dir.join(item);
        if current.exists() {
            let parked = old.join(item);
            if parked.exists() {
                remove_any(&current)?;
            } else {
                std::fs::rename(&current, &parked).map_err(|e| io("moving", &current, e))?;
            }
        }
        std::fs::rename(&new, &current).map_err(|e| io("moving", &new, e))?;
    }
    sync_dir(data_dir);
    std::fs::remove_dir_all(&staging).map_err(|e| io("removing", &staging, e))?;
    std::fs::remove_dir_all(&old).map_err(|e| io("removing", &old, e))?;
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
    .map_err(|e| io("removing", p, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Rebuilds the index of `config.paths.data_dir` with `config`'s embedder: every folder
/// and upload that was indexed is ingested again into a new index beside the old one
/// (same document ids and access groups), which then replaces it.
pub fn reindex(config: Config, observer: &dyn IngestObserver) -> Result<ReindexReport> {
    let started = std::time::Instant::now();
    let data_dir = config.paths.data_dir.clone();
    let _lock = crate::collection::lock_data_dir(&data_dir)?;
    finish_interrupted(&data_dir)?;
    let old = Manifest::load(&data_dir)?.ok_or_else(|| {
        Error::BadRequest(format!(
            "there is no index in {} to rebuild",
            data_dir.display()
        ))
    })?;
    let staging = data_dir.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io("removing", &staging, e))?;
    }
    // Each ingest root with the groups its documents had.
    let mut roots: BTreeSet<(PathBuf, Vec<String>)> = BTreeSet::new();
    for d in old.documents.values() {
        roots.insert((d.root.clone(), d.groups.clone()));
    }
    let mut staged = config.clone();
    staged.paths.data_dir = staging.clone();
    let engine = Engine::open(staged)?;
    let mut report = ReindexReport {
        previous_embedder: old.embedder.clone(),
        embedder: engine.embedder.identity(),
        documents_before: old.documents.len(),
        ..ReindexReport::default()
    };
    for (root, groups) in roots {
        if !root.exists() {
            report.missing_roots.push(root);
            continue;
        }
        let r = engine.ingest(&root, &IngestOptions { groups }, observer)?;
        report.chunks_embedded += r.chunks_embedded;
    }
    report.documents_after = engine.collection.manifest().documents.len();
    drop(engine);
    let _ = std::fs::remove_file(staging.join("tanya.lock"));
    crate::manifest::write_atomic(&staging.join(READY), b"ready\n")?;
    if std::env::var_os(STOP_AFTER_READY_ENV).is_some() {
        std::process::exit(0);
    }
    swap(&data_dir)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
