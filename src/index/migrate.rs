//! `tanya migrate`: moves a data directory's vectors to another persistent store (the
//! embedded shard ⇄ a Qdrant server) with the vectors as they are, no re-embedding.
//!
//! The copy is built beside the live vectors, in `vectors.migrating/`, from the
//! acknowledged chunks the manifest lists, in batches; a run that stops (Ctrl-C, a
//! crash, the server gone) is resumed by the next, which copies only what the new store
//! lacks. A record of the manifest it copied (`migrate.json` there) tells a resumed run
//! whether the index changed in between; if it did, the copy starts over. The copy is
//! verified (every document's chunk count, and the same search results for a sample of
//! queries) before two renames swap it in; the old vectors are removed last. The BM25
//! index, texts and manifest do not move.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::collection::Collection;
use super::passage::{point_id, Access};
use super::store::{self, qdrant, VectorStore};
use crate::config::{StoreConfig, StoreKind};
use crate::error::{Error, Result};

pub const MIGRATING: &str = "vectors.migrating";
pub const OLD: &str = "vectors.old";
const RECORD: &str = "migrate.json";
/// Chunks copied per round trip.
const BATCH: usize = 128;
/// Queries whose results must be the same from both stores.
const SAMPLE_QUERIES: usize = 50;
/// Results compared per query.
const SAMPLE_K: usize = 10;
/// Stops a migration after copying this many chunks, one per batch (tests of resuming).
pub const STOP_AFTER_ENV: &str = "TANYA_TEST_MIGRATE_STOP_AFTER";

/// What a migration did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    pub from: String,
    pub to: String,
    /// Where BM25 is kept now: "qdrant" or "tantivy".
    pub bm25: String,
    /// Where the vectors are now: the shard's folder or the Qdrant collection.
    pub target: String,
    pub documents: usize,
    pub chunks: usize,
    /// Copied by this run, and found already copied by an earlier, interrupted one.
    pub copied: usize,
    pub already_there: usize,
    /// Sample queries run against both stores, and how many gave the same results.
    pub sample_queries: usize,
    pub identical_results: usize,
    pub seconds: f64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Record {
    /// What the copy is of: a digest of every acknowledged document and version.
    manifest: String,
    to: StoreKind,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

/// The store in `dir` (whatever kind it is) removed: its files, and a Qdrant
/// collection it records.
fn discard(dir: &Path, config: &StoreConfig) -> Result<()> {
    if let Some(binding) = qdrant::Binding::read(dir)? {
        qdrant::QdrantStore::delete(config, &binding)?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io("removing", dir, e))?;
    }
    Ok(())
}

/// Ends a migration that stopped during its swap: between the two renames, the old
/// vectors go back; after them, the old vectors are removed. Called when a data
/// directory opens, under its lock.
pub fn finish_interrupted(data_dir: &Path, config: &StoreConfig) -> Result<()> {
    let old = data_dir.join(OLD);
    if !old.exists() {
        return Ok(());
    }
    let live = data_dir.join("vectors");
    if live.exists() {
        discard(&old, config)
    } else {
        std::fs::rename(&old, &live).map_err(|e| io("restoring", &old, e))
    }
}

impl Collection {
    /// Copies every acknowledged chunk's vectors and passage into a new store of
    /// `target` (its kind and settings), verifies the copy and swaps it in for the
    /// vectors of this collection, which must not be used afterwards (drop it; the next
    /// open, with `[store] kind` set to the target's, uses the new store).
    pub fn migrate(
        &self,
        target: &StoreConfig,
        dim: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<MigrateReport> {
        let started = std::time::Instant::now();
        let dir = self.dir().to_path_buf();
        let live = dir.join("vectors");
        let from = store::kind_in(&live).ok_or_else(|| {
            Error::Config(format!(
                "{} holds no persistent vectors to migrate (the \"memory\" store keeps none)",
                dir.display()
            ))
        })?;
        if target.kind == from {
            return Err(Error::Config(format!(
                "the vectors are already in the \"{}\" store",
                from.as_str()
            )));
        }
        if target.kind == StoreKind::Memory {
            return Err(Error::Config(
                "migrate moves vectors to a store that keeps them: --to edge or qdrant".into(),
            ));
        }
        let (ids, record) = {
            let manifest = self.manifest();
            let mut digest = Sha256::new();
            let mut ids = Vec::new();
            for (doc_id, entry) in &manifest.documents {
                digest.update(format!("{doc_id}\0{}\0{}\n", entry.version, entry.chunks));
                ids.extend((0..entry.chunks).map(|i| point_id(doc_id, &entry.version, i)));
            }
            let record = Record {
                manifest: hex::encode(digest.finalize()),
                to: target.kind,
            };
            (ids, record)
        };
        let staging = dir.join(MIGRATING);
        if staging.exists() && read_record(&staging)?.as_ref() != Some(&record) {
            // A copy of another index (documents changed since), or to another kind.
            tracing::info!(
                "discarding a stale partial migration in {}",
                staging.display()
            );
            discard(&staging, target)?;
        }
        let new = store::open(target, &staging, dim)?;
        write_record(&staging, &record)?;
        let mut report = MigrateReport {
            from: from.as_str().into(),
            to: target.kind.as_str().into(),
            documents: self.manifest().documents.len(),
            chunks: ids.len(),
            ..MigrateReport::default()
        };
        let stop_after: Option<usize> = std::env::var(STOP_AFTER_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        let batch_size = if stop_after.is_some() { 1 } else { BATCH };
        for batch in ids.chunks(batch_size) {
            if stop_after.is_some_and(|n| report.copied >= n) {
                return Err(Error::store_msg(format!(
                    "stopped after copying {} chunks ({STOP_AFTER_ENV})",
                    report.copied
                )));
            }
            let there = new.passages(batch)?;
            let missing: Vec<u64> = batch
                .iter()
                .copied()
                .filter(|id| !there.contains_key(id))
                .collect();
            report.already_there += batch.len() - missing.len();
            if !missing.is_empty() {
                let mut passages = self.vectors_store().passages(&missing)?;
                let mut vectors = self.vectors_store().vectors(&missing)?;
                let items = missing
                    .iter()
                    .map(|id| match (passages.remove(id), vectors.remove(id)) {
                        (Some(p), Some(v)) => Ok((p, v)),
                        _ => Err(Error::store_msg(format!(
                            "acknowledged chunk {id} is missing from the vectors being \
                             migrated: run `tanya documents --verify`"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                new.upsert(&items)?;
                report.copied += items.len();
            }
            progress(report.copied + report.already_there, ids.len());
        }
        new.flush()?;
        new.optimize()?;
        self.verify_copy(&*new, &ids, &mut report)?;
        // BM25 moves with the vectors when one of the stores keeps it as sparse vectors:
        // into the server (the local index goes once the swap is done), or out of it (a
        // local index is built from the copied passages first).
        let local_bm25 = dir.join("bm25");
        let staged_bm25 = dir.join("bm25.migrating");
        let target_lexical = new.lexical();
        let build_bm25 = !target_lexical && self.vectors_store().lexical();
        if build_bm25 {
            if staged_bm25.exists() {
                std::fs::remove_dir_all(&staged_bm25)
                    .map_err(|e| io("removing", &staged_bm25, e))?;
            }
            let bm25 = super::bm25::Bm25Index::open_in_dir(&staged_bm25)?;
            for batch in ids.chunks(BATCH) {
                let passages: Vec<_> = new.passages(batch)?.into_values().collect();
                bm25.add(&passages)?;
            }
            bm25.commit()?;
        }
        report.bm25 = if new.lexical() { "qdrant" } else { "tantivy" }.into();
        report.target = match qdrant::Binding::read(&staging)? {
            Some(b) => format!("Qdrant collection {} on {}", b.collection, b.url),
            None => live.display().to_string(),
        };
        drop(new);
        let _ = std::fs::remove_file(staging.join(RECORD));
        // The swap: two renames, undone or finished by `finish_interrupted` if they are
        // interrupted.
        let old = dir.join(OLD);
        std::fs::rename(&live, &old).map_err(|e| io("moving aside", &live, e))?;
        std::fs::rename(&staging, &live).map_err(|e| io("moving into place", &staging, e))?;
        sync_dir(&dir);
        let mut old_config = target.clone();
        old_config.kind = from;
        discard(&old, &old_config)?;
        if build_bm25 {
            if local_bm25.exists() {
                std::fs::remove_dir_all(&local_bm25).map_err(|e| io("removing", &local_bm25, e))?;
            }
            std::fs::rename(&staged_bm25, &local_bm25)
                .map_err(|e| io("moving into place", &staged_bm25, e))?;
        } else if target_lexical && local_bm25.exists() {
            std::fs::remove_dir_all(&local_bm25).map_err(|e| io("removing", &local_bm25, e))?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The copy holds exactly the acknowledged chunks, and answers sample queries as
    /// the original does: for each, the same passages with the same scores (passages
    /// whose scores tie may come in either order).
    fn verify_copy(
        &self,
        new: &dyn VectorStore,
        ids: &[u64],
        report: &mut MigrateReport,
    ) -> Result<()> {
        let counted = new.count()?;
        if counted != ids.len() {
            return Err(Error::store_msg(format!(
                "the new store holds {counted} chunks, the manifest lists {}",
                ids.len()
            )));
        }
        let step = (ids.len() / SAMPLE_QUERIES).max(1);
        let sample: Vec<u64> = ids
            .iter()
            .step_by(step)
            .take(SAMPLE_QUERIES)
            .copied()
            .collect();
        let vectors = self.vectors_store().vectors(&sample)?;
        let everything = Access::everything();
        for id in &sample {
            // A sentence's vector (the last), or the chunk's: like a question's, it is
            // near several chunks, not one.
            let Some(query) = vectors.get(id).and_then(|v| v.last()) else {
                continue;
            };
            let a = self.vectors_store().search(query, &everything, SAMPLE_K)?;
            let b = new.search(query, &everything, SAMPLE_K)?;
            report.sample_queries += 1;
            if same_results(&a, &b) {
                report.identical_results += 1;
            }
        }
        if report.identical_results < report.sample_queries {
            return Err(Error::store_msg(format!(
                "the new store's results differ from the original's on {} of {} sample \
                 queries; the original is untouched",
                report.sample_queries - report.identical_results,
                report.sample_queries
            )));
        }
        Ok(())
    }
}

/// The same results: equal scores rank by rank, and the same passages above the lowest
/// score (at the lowest, a tie may have been cut either way).
fn same_results(
    a: &[(super::passage::Passage, f32)],
    b: &[(super::passage::Passage, f32)],
) -> bool {
    if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| (x.1 - y.1).abs() > 1e-4) {
        return false;
    }
    let Some(last) = a.last().map(|x| x.1) else {
        return true;
    };
    let above = |r: &[(super::passage::Passage, f32)]| {
        let mut ids: Vec<u64> = r
            .iter()
            .filter(|x| x.1 > last + 1e-4)
            .map(|x| x.0.point_id)
            .collect();
        ids.sort_unstable();
        ids
    };
    above(a) == above(b)
}

fn read_record(dir: &Path) -> Result<Option<Record>> {
    let path = dir.join(RECORD);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", &path, e)),
    }
}

fn write_record(dir: &Path, record: &Record) -> Result<()> {
    let json = serde_json::to_vec(record).expect("a record serialises");
    super::manifest::write_atomic(&dir.join(RECORD), &json)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;

    #[test]
    fn ties_at_the_cut_may_differ_and_nothing_else() {
        let p = |d: &str| passage(d, "v", 0, &["g"]);
        let a = vec![(p("a"), 0.9), (p("b"), 0.8), (p("c"), 0.8)];
        let swapped = vec![(p("a"), 0.9), (p("c"), 0.8), (p("b"), 0.8)];
        let cut_other = vec![(p("a"), 0.9), (p("b"), 0.8), (p("d"), 0.8)];
        let other_top = vec![(p("x"), 0.9), (p("b"), 0.8), (p("c"), 0.8)];
        let other_score = vec![(p("a"), 0.9), (p("b"), 0.7), (p("c"), 0.7)];
        assert!(same_results(&a, &a));
        assert!(same_results(&a, &swapped));
        assert!(same_results(&a, &cut_other));
        assert!(!same_results(&a, &other_top));
        assert!(!same_results(&a, &other_score));
        assert!(!same_results(&a, &a[..2]));
        assert!(same_results(&[], &[]));
    }
}
