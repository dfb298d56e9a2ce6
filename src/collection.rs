//! A [`Collection`]: one data directory holding the vector store, the BM25 index and the
//! manifest, opened by one process at a time.
//!
//! Invariant: a search only returns chunks of acknowledged document versions (those in
//! the manifest), and a version is acknowledged only after both stores made it durable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use fs4::fs_std::FileExt;

use crate::bm25::Bm25Index;
use crate::error::{Error, Result};
use crate::manifest::{DocumentEntry, Manifest};
use crate::passage::{Access, Passage};
use crate::store::edge::EdgeStore;
use crate::store::VectorStore;

const LOCK_FILE: &str = "tanya.lock";

/// The stores and manifest of one data directory.
pub struct Collection {
    dir: PathBuf,
    _lock: File,
    manifest: RwLock<Manifest>,
    vectors: Box<dyn VectorStore>,
    bm25: Bm25Index,
}

impl Collection {
    /// Opens (or creates) the collection in `data_dir` for an embedder with `identity`
    /// ("name/dimension") and vectors of `dim`. Refuses a directory another process holds
    /// and an index built by a different embedder.
    pub fn open(data_dir: &Path, identity: &str, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| Error::io(format!("creating data directory {}", data_dir.display()), e))?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("opening {}", lock_path.display()), e))?;
        match lock.try_lock_exclusive() {
            Ok(true) => {}
            Ok(false) => return Err(Error::Locked(data_dir.to_path_buf())),
            Err(e) => return Err(Error::io(format!("locking {}", lock_path.display()), e)),
        }
        let manifest = match Manifest::load(data_dir)? {
            Some(m) if m.embedder != identity => {
                return Err(Error::EmbedderMismatch {
                    data_dir: data_dir.to_path_buf(),
                    built_with: m.embedder,
                    configured: identity.to_string(),
                })
            }
            Some(m) => m,
            None => Manifest::new(identity),
        };
        let vectors = EdgeStore::open_in_dir(&data_dir.join("vectors"), dim)?;
        let bm25 = Bm25Index::open_in_dir(&data_dir.join("bm25"))?;
        Ok(Collection {
            dir: data_dir.to_path_buf(),
            _lock: lock,
            manifest: RwLock::new(manifest),
            vectors: Box::new(vectors),
            bm25,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The acknowledged documents.
    pub fn manifest(&self) -> RwLockReadGuard<'_, Manifest> {
        self.manifest.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a new version of a document and acknowledges it. Until the manifest is
    /// written the old version (if any) stays the one searches see; afterwards the old
    /// version's chunks are deleted (in memory at once, durably at the next
    /// [`Self::finish`]).
    pub fn commit_document(
        &self,
        doc_id: &str,
        entry: DocumentEntry,
        items: &[(Passage, Vec<Vec<f32>>)],
    ) -> Result<()> {
        let previous = self
            .manifest()
            .documents
            .get(doc_id)
            .map(|d| d.version.clone());
        // Drop leftovers of any unacknowledged attempt, keep the acknowledged version.
        self.bm25.delete_document(doc_id, previous.as_deref())?;
        self.vectors.upsert(items)?;
        let passages: Vec<Passage> = items.iter().map(|(p, _)| p.clone()).collect();
        self.bm25.add(&passages)?;
        self.vectors.flush()?;
        self.bm25.commit()?;
        let version = entry.version.clone();
        {
            let mut m = self.manifest.write().unwrap_or_else(|p| p.into_inner());
            let mut next = m.clone();
            next.documents.insert(doc_id.to_string(), entry);
            next.save(&self.dir)?;
            *m = next;
        }
        self.vectors.delete_document(doc_id, Some(&version))?;
        self.bm25.delete_document(doc_id, Some(&version))?;
        Ok(())
    }

    /// Forgets a document: unacknowledge first, then delete its chunks.
    pub fn remove_document(&self, doc_id: &str) -> Result<()> {
        {
            let mut m = self.manifest.write().unwrap_or_else(|p| p.into_inner());
            if !m.documents.contains_key(doc_id) {
                return Ok(());
            }
            let mut next = m.clone();
            next.documents.remove(doc_id);
            next.save(&self.dir)?;
            *m = next;
        }
        self.vectors.delete_document(doc_id, None)?;
        self.bm25.delete_document(doc_id, None)?;
        Ok(())
    }

    /// Makes pending deletions durable.
    pub fn finish(&self) -> Result<()> {
        self.vectors.flush()?;
        self.bm25.commit()
    }

    /// Dense search restricted to `access` and to acknowledged versions.
    pub fn dense_search(
        &self,
        vector: &[f32],
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        // Over-fetch a little: superseded chunks awaiting deletion are dropped here.
        let hits = self.vectors.search(vector, access, limit + limit / 2 + 2)?;
        Ok(self.current_only(hits, access, limit))
    }

    /// BM25 search restricted to `access` and to acknowledged versions.
    pub fn bm25_search(
        &self,
        query: &str,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        let hits = self.bm25.search(query, access, limit + limit / 2 + 2)?;
        Ok(self.current_only(hits, access, limit))
    }

    fn current_only(
        &self,
        hits: Vec<(Passage, f32)>,
        access: &Access,
        limit: usize,
    ) -> Vec<(Passage, f32)> {
        let m = self.manifest();
        hits.into_iter()
            .filter(|(p, _)| m.is_current(&p.doc_id, &p.version))
            // The filter already ran inside the store; this is a second lock on the door.
            .filter(|(p, _)| access.allows(&p.groups))
            .take(limit)
            .collect()
    }

    /// Stored vectors of chunks (see [`VectorStore::vectors`]).
    pub fn vectors(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Vec<Vec<f32>>>> {
        self.vectors.vectors(ids)
    }

    /// Chunk counts of a document in (vector store, BM25 index), all versions.
    pub fn chunk_counts(&self, doc_id: &str) -> Result<(usize, usize)> {
        Ok((
            self.vectors.count_document(doc_id)?,
            self.bm25.count_document(doc_id)?,
        ))
    }
}
