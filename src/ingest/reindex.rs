//! `tanya reindex`: rebuilds the index with the configured embedder (after a model
//! change) beside the old one, then swaps it in. Searches keep using the old index until
//! the new one is complete; a crash at any point leaves either the old index or the new
//! one, never a mix.
//! The new index is built in `<data_dir>/reindex/` and swapped in by
//! [`crate::index::swap`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::collection::Collection;
use crate::index::manifest::Manifest;
use crate::index::swap::{finish_interrupted, io, staging_dir, swap, READY};
use crate::ingest::pipeline::ingest_path;
use crate::ingest::pipeline::{IngestObserver, IngestOptions};
use crate::models::embed::Embedder;

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

/// Rebuilds the index of `config.paths.data_dir` with `config`'s embedder: every folder
/// and upload that was indexed is ingested again into a new index beside the old one
/// (same document ids and access groups), which then replaces it.
pub fn reindex(config: Config, observer: &dyn IngestObserver) -> Result<ReindexReport> {
    let started = std::time::Instant::now();
    if config.shared.enabled() {
        return Err(Error::BadRequest(
            "`tanya reindex` rebuilds one data directory's index, and [shared] postgres is \
             set: reindex a copy without shared state, then publish it (docs/deploy.md)"
                .into(),
        ));
    }
    let data_dir = config.paths.data_dir.clone();
    let _lock = crate::index::collection::lock_data_dir(&data_dir)?;
    finish_interrupted(&data_dir)?;
    let old = Manifest::load(&data_dir)?.ok_or_else(|| {
        Error::BadRequest(format!(
            "there is no index in {} to rebuild",
            data_dir.display()
        ))
    })?;
    let staging = staging_dir(&data_dir);
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
    let embedder = Embedder::from_config(&staged)?;
    let collection = Collection::open(
        &staged.paths.data_dir,
        &embedder.identity(),
        embedder.kind().dimension(),
        &staged.store,
    )?;
    if !collection.persistent() {
        // The new index would be gone by the time it replaces the old one. (The staging
        // folder left behind is discarded when the data directory next opens.)
        return Err(Error::Config(format!(
            "`tanya reindex` needs a vector store that keeps what it builds, and [store] \
             kind = \"{}\" does not: reindex with a persistent kind",
            staged.store.kind.as_str()
        )));
    }
    let mut report = ReindexReport {
        previous_embedder: old.embedder.clone(),
        embedder: embedder.identity(),
        documents_before: old.documents.len(),
        ..ReindexReport::default()
    };
    for (root, groups) in roots {
        if !root.exists() {
            report.missing_roots.push(root);
            continue;
        }
        // Every document keeps the groups it had, whichever root lists it first.
        let options = IngestOptions {
            recorded: old
                .documents
                .iter()
                .map(|(id, e)| (id.clone(), e.groups.clone()))
                .collect(),
            ..IngestOptions::with_groups(groups)
        };
        let r = ingest_path(&collection, &embedder, &staged, &root, &options, observer)?;
        report.chunks_embedded += r.chunks_embedded;
    }
    report.documents_after = collection.manifest().documents.len();
    // The new index's manifest as one snapshot: the swap moves no log.
    collection.manifest().save(&staging)?;
    drop(collection);
    drop(embedder);
    let _ = std::fs::remove_file(staging.join("tanya.lock"));
    crate::index::manifest::write_atomic(&staging.join(READY), b"ready\n")?;
    if std::env::var_os(STOP_AFTER_READY_ENV).is_some() {
        std::process::exit(0);
    }
    // A Qdrant store's vectors are not in the folders the swap removes: its old
    // collection goes once the new one is in place.
    let old_binding = crate::index::store::qdrant::Binding::read(&data_dir.join("vectors"))?;
    swap(&data_dir)?;
    if let Some(binding) = old_binding {
        crate::index::store::qdrant::QdrantStore::delete(&config.store, &binding)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
