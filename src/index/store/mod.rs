//! Vector stores. A trait, because the implementations really swap: the embedded
//! Qdrant edge shard ([`edge::EdgeStore`], the default), one in memory only
//! ([`memory::MemoryStore`]) and, later, a Qdrant server. [`open`] picks one from
//! `[store] kind`; it is the only code outside the implementations that names them.
//! Only this module knows Qdrant. One contract test suite runs over every
//! implementation (see `contract_tests`).

pub mod edge;
pub mod memory;

use std::path::Path;

use crate::config::{StoreConfig, StoreKind};
use crate::error::Result;
use crate::index::passage::{Access, Passage};

/// Opens the vector store `config` names, for vectors of `dim` dimensions. `dir` is the
/// folder a store that keeps files keeps them in (a collection's `vectors/`, created
/// when missing); a store that keeps none ignores it.
pub fn open(config: &StoreConfig, dir: &Path, dim: usize) -> Result<Box<dyn VectorStore>> {
    Ok(match config.kind {
        StoreKind::Edge => Box::new(edge::EdgeStore::open_in_dir(dir, dim)?),
        StoreKind::Memory => Box::new(memory::MemoryStore::new(dim)),
    })
}

/// Dense vectors with their passages, searchable under an access filter.
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces passages with their vectors (same `point_id` = replace). Each
    /// passage has one or more unit vectors (the whole chunk and each of its sentences);
    /// a passage scores by its best-matching vector (MaxSim).
    fn upsert(&self, items: &[(Passage, Vec<Vec<f32>>)]) -> Result<()>;
    /// Removes every chunk of `doc_id` whose version is not `keep_version` (all of them
    /// when `keep_version` is `None`).
    fn delete_document(&self, doc_id: &str, keep_version: Option<&str>) -> Result<()>;
    /// Nearest passages to `vector` among those `access` may see, best first, with the
    /// best cosine similarity among each passage's vectors.
    fn search(&self, vector: &[f32], access: &Access, limit: usize) -> Result<Vec<(Passage, f32)>>;
    /// The stored vectors of the given chunks (the chunk's, then its sentences', in the
    /// order they were upserted); unknown ids are left out.
    fn vectors(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Vec<Vec<f32>>>>;
    /// The stored passages of the given chunks (payloads, without vectors); unknown ids are
    /// left out. Not a search: no access filter (for checks such as `--verify`).
    fn passages(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Passage>>;
    /// Number of chunks of `doc_id` (all versions).
    fn count_document(&self, doc_id: &str) -> Result<usize>;
    /// Number of chunks stored.
    fn count(&self) -> Result<usize>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<()>;
    /// Reorganises what was written for faster searches (for the edge shard: merges
    /// segments and builds the HNSW graph of those past its indexing threshold). Blocking,
    /// and searches keep working meanwhile. Returns whether anything changed.
    fn optimize(&self) -> Result<bool> {
        Ok(false)
    }
    /// Whether what was flushed is still there after the process restarts (false for a
    /// store in memory only).
    fn persistent(&self) -> bool;
}

#[cfg(test)]
pub(crate) mod contract_tests;
