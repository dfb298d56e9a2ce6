//! Vector stores. A trait, because the implementations really swap: the embedded
//! Qdrant edge shard ([`edge::EdgeStore`], the default), one in memory only
//! ([`memory::MemoryStore`]) and a Qdrant server or cluster ([`qdrant::QdrantStore`]). [`open`] picks one from
//! `[store] kind`; it is the only code outside the implementations that names them.
//! Only this module knows Qdrant. One contract test suite runs over every
//! implementation (see `contract_tests`).

pub mod edge;
pub mod memory;
pub mod qdrant;

use std::path::Path;

use crate::config::{StoreConfig, StoreKind};
use crate::error::{Error, Result};
use crate::index::passage::{Access, Passage};

/// Opens the vector store `config` names, for vectors of `dim` dimensions. `dir` is the
/// folder a store that keeps files keeps them in (a collection's `vectors/`, created
/// when missing); a store that keeps none ignores it.
pub fn open(config: &StoreConfig, dir: &Path, dim: usize) -> Result<Box<dyn VectorStore>> {
    if let Some(held) = kind_in(dir) {
        if held != config.kind {
            // Opening the other kind here would start an empty index beside the real
            // one (after `tanya migrate`, before the config says so).
            return Err(Error::Config(format!(
                "the vectors in {} are kept by the \"{}\" store, but [store] kind = \"{}\": \
                 set kind = \"{}\" (or move them with `tanya migrate --to {}`)",
                dir.display(),
                held.as_str(),
                config.kind.as_str(),
                held.as_str(),
                config.kind.as_str(),
            )));
        }
    }
    Ok(match config.kind {
        StoreKind::Edge => Box::new(edge::EdgeStore::open_in_dir(dir, dim)?),
        StoreKind::Memory => Box::new(memory::MemoryStore::new(dim)),
        StoreKind::Qdrant => Box::new(qdrant::QdrantStore::open(config, dir, dim)?),
    })
}

/// The record of the Qdrant collection that holds `dir`'s vectors, as written there (for
/// replicas that share one collection through the shared records); `None` without one.
pub fn binding_record(dir: &Path) -> Result<Option<String>> {
    let path = qdrant::Binding::path(dir);
    match std::fs::read_to_string(&path) {
        Ok(json) => Ok(Some(json)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Makes `dir`'s vectors those of the collection `json` records (see [`binding_record`]).
pub fn adopt_binding_record(dir: &Path, json: &str) -> Result<()> {
    serde_json::from_str::<qdrant::Binding>(json)
        .map_err(|e| Error::store("the shared record of the Qdrant collection is damaged", e))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    crate::index::manifest::write_atomic(&qdrant::Binding::path(dir), json.as_bytes())
}

/// Which persistent store's files `dir` holds, if any.
pub fn kind_in(dir: &Path) -> Option<StoreKind> {
    if dir.join(edge::CONFIG_FILE).is_file() {
        Some(StoreKind::Edge)
    } else if qdrant::Binding::path(dir).is_file() {
        Some(StoreKind::Qdrant)
    } else {
        None
    }
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
    /// Whether this store also keeps each chunk's BM25 sparse vector
    /// ([`crate::index::sparse`]) and answers [`VectorStore::lexical_search`], so that no
    /// local BM25 index is needed.
    fn lexical(&self) -> bool {
        false
    }
    /// The passages `access` may see that share terms with `query` (a sparse vector of
    /// [`crate::index::sparse`]), by BM25, best first. Only for a store that says
    /// [`VectorStore::lexical`].
    fn lexical_search(
        &self,
        _query: &crate::index::sparse::Sparse,
        _access: &Access,
        _limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        Err(Error::store_msg("this store does no lexical search"))
    }
}

#[cfg(test)]
pub(crate) mod contract_tests;
