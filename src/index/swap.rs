//! The reindex swap: a complete new index built in `<data_dir>/reindex/` replaces the
//! old one. When the new stores and manifest are complete, `reindex/READY` is written
//! (atomically). From then on the swap is decided: the old manifest's log is parked (the
//! new manifest is one snapshot), the old `vectors/`, `bm25/` and `manifest.json` move to
//! `reindex-old/`, the new ones move up, and both folders are removed. [`finish_interrupted`] (run whenever a collection opens) completes a swap that
//! a crash cut short, or discards a build that never became READY. The driver that builds
//! the new index is `crate::ingest::reindex`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const STAGING: &str = "reindex";
const OLD: &str = "reindex-old";
pub const READY: &str = "READY";
/// What a swap moves.
const ITEMS: [&str; 3] = ["vectors", "bm25", super::manifest::MANIFEST_FILE];
pub(crate) fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
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
pub fn swap(data_dir: &Path) -> Result<()> {
    let staging = data_dir.join(STAGING);
    let old = data_dir.join(OLD);
    std::fs::create_dir_all(&old).map_err(|e| io("creating", &old, e))?;
    // The log belongs to the old snapshot (a staged index holds none): never replay it
    // over the new one. Parked before the snapshot moves, so a repeat finds it gone.
    let log = data_dir.join(super::manifest::MANIFEST_LOG);
    if log.exists() {
        let parked = old.join(super::manifest::MANIFEST_LOG);
        std::fs::rename(&log, &parked).map_err(|e| io("moving", &log, e))?;
    }
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

/// The staging folder of a reindex of `data_dir`.
pub fn staging_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(STAGING)
}
