//! A [`Collection`]: one data directory holding the vector store, the BM25 index and the
//! manifest, opened by one process at a time.
//!
//! Invariant: a search only returns chunks of acknowledged document versions (those in
//! the manifest), and a version is acknowledged only after both stores made it durable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use fs4::fs_std::FileExt;

use crate::config::{SharedConfig, StoreConfig};
use crate::error::{Error, Result};
use crate::index::bm25::Bm25Index;
use crate::index::manifest::{DocumentEntry, Manifest};
use crate::index::passage::{Access, Passage};
use crate::index::replicated::{Refresher, Replicated};
use crate::index::store::{self, VectorStore};
use crate::index::texts::{StoredText, Texts};
use crate::shared::{Pg, Records};
use tanya_ingest::Lang;

const LOCK_FILE: &str = "tanya.lock";
/// Folder of write intents: one file per document whose new version is being written,
/// naming that version. Written (and fsynced) before either store is touched, removed
/// after the manifest acknowledges the version; what is left after a crash tells the
/// next start exactly what to clean up.
const PENDING_DIR: &str = "pending";

/// One document's new version, for [`Collection::commit_documents`].
pub struct DocumentCommit<'a> {
    pub doc_id: &'a str,
    pub entry: DocumentEntry,
    pub items: &'a [(Passage, Vec<Vec<f32>>)],
    pub text: &'a StoredText,
}

/// An acknowledged document read back from the stores (see [`Collection::stored_document`]).
pub struct StoredDocument {
    pub entry: DocumentEntry,
    pub items: Vec<(Passage, Vec<Vec<f32>>)>,
    pub text: StoredText,
}

/// Documents regrouped per batch (see [`Collection::regroup_all`]).
const REGROUP_BATCH: usize = 32;

/// Test-only: milliseconds to pause inside the commit protocol (between the stores'
/// writes and the manifest), so that a crash test can land its kills there.
pub const COMMIT_PAUSE_ENV: &str = "TANYA_TEST_COMMIT_PAUSE_MS";

fn test_pause() {
    static PAUSE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms = *PAUSE.get_or_init(|| {
        std::env::var(COMMIT_PAUSE_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    if ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Creates `data_dir` if needed and takes its exclusive lock (held while the file lives).
pub fn lock_data_dir(data_dir: &Path) -> Result<File> {
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
        Ok(true) => Ok(lock),
        Ok(false) => Err(Error::Locked(data_dir.to_path_buf())),
        Err(e) => Err(Error::io(format!("locking {}", lock_path.display()), e)),
    }
}

/// The stores and manifest of one data directory.
pub struct Collection {
    dir: PathBuf,
    _lock: File,
    /// Held shared by every write to the stores, and exclusively by a backup, which so
    /// copies them between writes.
    writes: RwLock<()>,
    manifest: Arc<RwLock<Manifest>>,
    vectors: Box<dyn VectorStore>,
    /// The local BM25 index; `None` when the vector store does lexical search itself
    /// (`[store] bm25 = "qdrant"`: sparse vectors on the server, see `index::sparse`).
    bm25: Option<Bm25Index>,
    texts: Texts,
    /// With `[shared] postgres`: the records every replica shares, and the lease.
    replicated: Option<Arc<Replicated>>,
    _refresher: Option<Refresher>,
}

/// One write in progress (see [`Collection::writer`]).
struct Writer<'a>(Option<&'a Replicated>);

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.0 {
            r.end_write();
        }
    }
}

impl Collection {
    /// Opens (or creates) the collection in `data_dir` for an embedder with `identity`
    /// ("name/dimension") and vectors of `dim`, keeping the vectors in the store `store`
    /// names (see [`store::open`]). Refuses a directory another process holds, an index
    /// built by a different embedder, and, with a store that does not persist, a
    /// directory whose manifest already lists documents (their vectors are not in it).
    pub fn open(data_dir: &Path, identity: &str, dim: usize, store: &StoreConfig) -> Result<Self> {
        let lock = lock_data_dir(data_dir)?;
        super::swap::finish_interrupted(data_dir)?;
        super::migrate::finish_interrupted(data_dir, store)?;
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
        let vectors = store::open(store, &data_dir.join("vectors"), dim)?;
        if !vectors.persistent() && !manifest.documents.is_empty() && vectors.count()? == 0 {
            // The manifest (and BM25 index) on disk outlived the vectors of an earlier
            // run, or belong to a persistent store's index. Neither serving documents
            // without their vectors nor forgetting them silently is right.
            return Err(Error::Config(format!(
                "the data directory {} lists {} documents, but [store] kind = \"{}\" does \
                 not keep vectors across restarts and starts empty, so theirs are not there: \
                 give it a data directory of its own (e.g. \
                 TANYA__PATHS__DATA_DIR=$(mktemp -d)), or a persistent kind",
                data_dir.display(),
                manifest.documents.len(),
                store.kind.as_str(),
            )));
        }
        let bm25 = if vectors.lexical() {
            None
        } else {
            Some(Bm25Index::open_in_dir(&data_dir.join("bm25"))?)
        };
        let collection = Collection {
            dir: data_dir.to_path_buf(),
            _lock: lock,
            writes: RwLock::new(()),
            manifest: Arc::new(RwLock::new(manifest)),
            vectors,
            bm25,
            texts: Texts::open(data_dir)?,
            replicated: None,
            _refresher: None,
        };
        // Searches never see unacknowledged chunks anyway (they filter by the manifest),
        // so a failed clean-up (a full disk) must not stop the index from opening.
        match collection.reconcile() {
            Ok(0) => {}
            Ok(cleaned) => tracing::warn!(
                documents = cleaned,
                "removed the chunks of unacknowledged writes left by an interrupted run"
            ),
            Err(e) => tracing::warn!(
                error = %e.full_message(),
                "could not yet remove what an interrupted run left; will retry at the next start"
            ),
        }
        Ok(collection)
    }

    /// Opens the collection of a replica that shares its records (`[shared] postgres`):
    /// the acknowledged documents, intents and texts in PostgreSQL, the vectors and BM25
    /// in the Qdrant collection the records name. `data_dir` keeps only this replica's
    /// own files (its lock, the record of the Qdrant collection). The first replica to
    /// start creates that collection, or, when `data_dir` already holds an index moved to
    /// Qdrant (`tanya migrate --to qdrant --bm25 qdrant`), publishes it: its manifest
    /// and texts become the shared records.
    pub fn open_shared(
        data_dir: &Path,
        identity: &str,
        dim: usize,
        store: &StoreConfig,
        shared: &SharedConfig,
    ) -> Result<Self> {
        let lock = lock_data_dir(data_dir)?;
        let pg = Arc::new(Pg::connect(shared.postgres.expose())?);
        let records = Records::new(pg.clone());
        let built_with = records.meta_if_absent("embedder", identity)?;
        if built_with != identity {
            return Err(Error::EmbedderMismatch {
                data_dir: PathBuf::from(format!("postgres://{}", pg.shown())),
                built_with,
                configured: identity.to_string(),
            });
        }
        let vectors_dir = data_dir.join("vectors");
        let replicated = Arc::new(Replicated::new(
            records.clone(),
            std::time::Duration::from_secs(shared.lease_wait_secs),
        ));
        let vectors = match records.meta("binding")? {
            Some(json) => {
                store::adopt_binding_record(&vectors_dir, &json)?;
                store::open(store, &vectors_dir, dim)?
            }
            None => {
                // The first replica: under the lease, so that only one makes it.
                let lease =
                    pg.writer_lease(std::time::Duration::from_secs(shared.lease_wait_secs))?;
                match records.meta("binding")? {
                    Some(json) => {
                        store::adopt_binding_record(&vectors_dir, &json)?;
                        store::open(store, &vectors_dir, dim)?
                    }
                    None => {
                        let migrated = store::binding_record(&vectors_dir)?.is_some();
                        let vectors = store::open(store, &vectors_dir, dim)?;
                        if migrated {
                            publish_local(data_dir, identity, &records, lease.pid())?;
                        }
                        let json = store::binding_record(&vectors_dir)?.ok_or_else(|| {
                            Error::store_msg("the Qdrant store wrote no record of its collection")
                        })?;
                        records.meta_if_absent("binding", &json)?;
                        vectors
                    }
                }
            }
        };
        if !vectors.lexical() {
            return Err(Error::Config(
                "shared state needs BM25 on the Qdrant server (store.bm25 = \"qdrant\")".into(),
            ));
        }
        let manifest = Arc::new(RwLock::new(replicated.load(identity)?));
        let refresher = Refresher::start(
            replicated.clone(),
            manifest.clone(),
            std::time::Duration::from_millis(shared.refresh_ms),
        );
        Ok(Collection {
            dir: data_dir.to_path_buf(),
            _lock: lock,
            writes: RwLock::new(()),
            manifest,
            vectors,
            bm25: None,
            texts: Texts::shared(records),
            replicated: Some(replicated),
            _refresher: Some(refresher),
        })
    }

    /// Whether this collection's records are shared by replicas (`[shared] postgres`).
    pub fn is_shared(&self) -> bool {
        self.replicated.is_some()
    }

    /// Starts a write: with shared records, takes the writer lease unless this replica
    /// holds it, and on taking it catches up with the records and cleans up what a
    /// writer that died mid-write left.
    fn writer(&self) -> Result<Writer<'_>> {
        let Some(r) = &self.replicated else {
            return Ok(Writer(None));
        };
        r.begin_write(|| {
            r.refresh(&self.manifest)?;
            match self.reconcile()? {
                0 => {}
                n => tracing::warn!(
                    documents = n,
                    "removed the chunks of writes another replica left unfinished"
                ),
            }
            Ok(())
        })?;
        Ok(Writer(Some(r)))
    }

    /// Holds the writer lease while the returned guard lives (with shared records; a
    /// no-op otherwise), for work that must not interleave with another replica's writes.
    pub fn hold_writer(&self) -> Result<impl Sized + '_> {
        self.writer()
    }

    /// Records `put` and `remove` as acknowledged: in the manifest's files, or in the
    /// shared records.
    fn acknowledge(&self, put: Vec<(String, DocumentEntry)>, remove: Vec<String>) -> Result<()> {
        match &self.replicated {
            Some(r) => r.commit(&self.manifest, put, remove),
            None => self
                .manifest
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .record(&self.dir, put, remove),
        }
    }

    fn pending_dir(&self) -> PathBuf {
        self.dir.join(PENDING_DIR)
    }

    /// Records that `version` of `doc_id` is about to be written (durably, before the
    /// stores are touched).
    fn begin_write(&self, doc_id: &str, version: &str) -> Result<()> {
        if let Some(r) = &self.replicated {
            return r.records.begin_write(doc_id, version);
        }
        let dir = self.pending_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        crate::index::manifest::write_atomic(&dir.join(doc_id), version.as_bytes())
    }

    fn end_write(&self, doc_id: &str) {
        match &self.replicated {
            Some(r) => {
                if let Err(e) = r.records.end_write(doc_id) {
                    tracing::warn!(error = %e.full_message(), "could not clear a write intent");
                }
            }
            None => {
                let _ = std::fs::remove_file(self.pending_dir().join(doc_id));
            }
        }
    }

    /// The write intents: `(doc_id, version)`.
    fn intents(&self) -> Result<Vec<(String, String)>> {
        if let Some(r) = &self.replicated {
            return r.records.pending();
        }
        let Ok(entries) = std::fs::read_dir(self.pending_dir()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A temp file of an interrupted intent write: nothing was stored yet.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            out.push((
                name,
                std::fs::read_to_string(entry.path()).unwrap_or_default(),
            ));
        }
        Ok(out)
    }

    /// Removes from both stores whatever unacknowledged writes left behind (a crash or
    /// `kill -9` between the first store write and the manifest), keeping each
    /// document's acknowledged version. Returns how many documents needed it. The source
    /// files are untouched, so the next ingest of their folder redoes the work.
    pub fn reconcile(&self) -> Result<usize> {
        let stray = self.texts.retain_acknowledged(&self.manifest());
        if stray > 0 {
            tracing::info!(
                texts = stray,
                "removed the stored texts of unacknowledged versions"
            );
        }
        let mut cleaned = Vec::new();
        for (name, _) in self.intents()? {
            let acknowledged = self
                .manifest()
                .documents
                .get(&name)
                .map(|d| d.version.clone());
            self.vectors
                .delete_document(&name, acknowledged.as_deref())?;
            if let Some(bm25) = &self.bm25 {
                bm25.delete_document(&name, acknowledged.as_deref())?;
            }
            cleaned.push(name);
        }
        if cleaned.is_empty() {
            return Ok(0);
        }
        self.finish()?;
        for name in &cleaned {
            self.end_write(name);
        }
        Ok(cleaned.len())
    }

    /// The stored text of `doc_id`'s acknowledged version; `None` for an unknown document
    /// or one indexed before texts were stored.
    pub fn text(&self, doc_id: &str) -> Result<Option<StoredText>> {
        let version = self
            .manifest()
            .documents
            .get(doc_id)
            .map(|d| d.version.clone());
        match version {
            Some(v) => self.texts.get(doc_id, &v),
            None => Ok(None),
        }
    }

    /// Stores the text of `doc_id`'s acknowledged `version` (one indexed before texts
    /// were stored). Refused for any other version: a text belongs to what was indexed.
    pub fn store_text(&self, doc_id: &str, version: &str, text: &StoredText) -> Result<()> {
        let acknowledged = self
            .manifest()
            .documents
            .get(doc_id)
            .is_some_and(|d| d.version == version);
        if !acknowledged {
            return Err(Error::BadRequest(format!(
                "{doc_id} at {version} is not an acknowledged version"
            )));
        }
        let _writing = self.writing();
        self.texts.put(doc_id, version, text)
    }

    /// A shared hold on the stores for one write (see [`Self::copy_to`]).
    fn writing(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.writes.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies the whole data directory but its lock (and what `skip` names, relative to
    /// it) into the empty or new folder `dest`, with every write held off meanwhile:
    /// a copy that opens as this index did between two writes (an unfinished write's
    /// intent is copied with it and cleaned up when the copy is opened). Returns the
    /// files and bytes copied.
    pub fn copy_to(&self, dest: &Path, skip: &[&str]) -> Result<(usize, u64)> {
        let _no_writes = self.writes.write().unwrap_or_else(|p| p.into_inner());
        self.vectors.flush()?;
        let mut skipped: Vec<&str> = vec![LOCK_FILE];
        skipped.extend_from_slice(skip);
        copy_dir(&self.dir, dest, &skipped)
            .map_err(|e| Error::io(format!("copying the index to {}", dest.display()), e))
    }

    /// Whether the text of `doc_id` at `version` is stored.
    pub fn has_text(&self, doc_id: &str, version: &str) -> bool {
        self.texts.has(doc_id, version)
    }

    /// The vector store itself (for a migration's copy).
    pub(super) fn vectors_store(&self) -> &dyn VectorStore {
        &*self.vectors
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the vectors outlive this process (see [`VectorStore::persistent`]).
    pub fn persistent(&self) -> bool {
        self.vectors.persistent()
    }

    /// The acknowledged documents.
    pub fn manifest(&self) -> RwLockReadGuard<'_, Manifest> {
        self.manifest.read().unwrap_or_else(|p| p.into_inner())
    }

    /// How many acknowledged documents `access` may see.
    pub fn visible_documents(&self, access: &Access) -> usize {
        self.manifest()
            .documents
            .values()
            .filter(|d| access.admits(&d.groups, d.collection.as_deref()))
            .count()
    }

    /// The share of the documents `access` may see that are in `lang` (1 when it sees
    /// none): whether an answer can be in another language than the question's.
    pub fn language_share(&self, lang: Lang, access: &Access) -> f32 {
        let manifest = self.manifest();
        let (mut seen, mut same) = (0usize, 0usize);
        for d in manifest.documents.values() {
            if access.admits(&d.groups, d.collection.as_deref()) {
                seen += 1;
                same += usize::from(d.lang == lang);
            }
        }
        if seen == 0 {
            1.0
        } else {
            same as f32 / seen as f32
        }
    }

    /// Stores a new version of a document and acknowledges it (see
    /// [`Self::commit_documents`]).
    pub fn commit_document(
        &self,
        doc_id: &str,
        entry: DocumentEntry,
        items: &[(Passage, Vec<Vec<f32>>)],
        text: &StoredText,
    ) -> Result<()> {
        self.commit_documents(vec![DocumentCommit {
            doc_id,
            entry,
            items,
            text,
        }])
    }

    /// Stores new versions of several documents and acknowledges them together, with one
    /// durable write of each store and one of the manifest for the whole batch: until the
    /// manifest is written the old versions (if any) stay the ones searches see, and a
    /// crash before it leaves none of the batch acknowledged (each document's write
    /// intent tells the next start what to clean up). Afterwards the old versions' chunks
    /// are deleted (in memory at once, durably at the next [`Self::finish`]).
    pub fn commit_documents(&self, batch: Vec<DocumentCommit<'_>>) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        if !batch.iter().all(|c| seen.insert(c.doc_id)) {
            // One version of a document per batch: commit such a batch one by one.
            for one in batch {
                self.commit_documents(vec![one])?;
            }
            return Ok(());
        }
        let _writer = self.writer()?;
        let previous: Vec<Option<String>> = {
            let m = self.manifest();
            batch
                .iter()
                .map(|c| m.documents.get(c.doc_id).map(|d| d.version.clone()))
                .collect()
        };
        for c in &batch {
            self.begin_write(c.doc_id, &c.entry.version)?;
        }
        // Drop leftovers of any unacknowledged attempt, keep the acknowledged version —
        // unless this is that version again (the same content under other groups): its
        // BM25 entries go in the same commit as their replacements, so none keeps the old
        // groups. (The vector store replaces them by point id.)
        let _writing = self.writing();
        for (c, previous) in batch.iter().zip(&previous) {
            let keep = previous.as_deref().filter(|p| *p != c.entry.version);
            if let Some(bm25) = &self.bm25 {
                bm25.delete_document(c.doc_id, keep)?;
            }
        }
        // Each document's points as they are (no copy of the batch's vectors); one flush
        // below makes them all durable.
        for c in &batch {
            self.vectors.upsert(c.items)?;
        }
        test_pause();
        let passages: Vec<Passage> = batch
            .iter()
            .flat_map(|c| c.items.iter().map(|(p, _)| p.clone()))
            .collect();
        if let Some(bm25) = &self.bm25 {
            bm25.add(&passages)?;
        }
        self.vectors.flush()?;
        self.commit_bm25()?;
        for c in &batch {
            self.texts.put(c.doc_id, &c.entry.version, c.text)?;
        }
        test_pause();
        let versions: Vec<(&str, String)> = batch
            .iter()
            .map(|c| (c.doc_id, c.entry.version.clone()))
            .collect();
        self.acknowledge(
            batch
                .into_iter()
                .map(|c| (c.doc_id.to_string(), c.entry))
                .collect(),
            Vec::new(),
        )?;
        for ((doc_id, version), previous) in versions.iter().zip(previous) {
            self.vectors.delete_document(doc_id, Some(version))?;
            if let Some(bm25) = &self.bm25 {
                bm25.delete_document(doc_id, Some(version))?;
            }
            if let Some(previous) = previous.filter(|p| p != version) {
                self.texts.remove(doc_id, &previous);
            }
        }
        // The superseded chunks are deleted in memory; the intents stay until that is
        // durable too, so a crash before then still cleans them up at the next start.
        // (A Qdrant server's deletions are durable when they return.)
        if self.replicated.is_some() {
            for (doc_id, _) in &versions {
                self.end_write(doc_id);
            }
        }
        Ok(())
    }

    /// Gives an acknowledged document other access groups without embedding it again:
    /// its chunks and vectors are read back from the vector store and committed as the
    /// same version under `groups` (so no chunk keeps the old ones; see
    /// [`Self::commit_document`]). Durable when this returns.
    pub fn regroup(&self, doc_id: &str, groups: &[String]) -> Result<()> {
        self.regroup_all(&[doc_id.to_string()], groups)
    }

    /// [`Self::regroup`] for several documents, committed in batches of
    /// [`REGROUP_BATCH`] (one durable write of each store and of the manifest per batch,
    /// and a bounded number of documents' vectors in memory at once).
    pub fn regroup_all(&self, doc_ids: &[String], groups: &[String]) -> Result<()> {
        for ids in doc_ids.chunks(REGROUP_BATCH) {
            let read: Vec<(&str, StoredDocument)> = ids
                .iter()
                .map(|id| Ok((id.as_str(), self.stored_document(id, groups)?)))
                .collect::<Result<_>>()?;
            self.commit_documents(
                read.iter()
                    .map(|(doc_id, d)| DocumentCommit {
                        doc_id,
                        entry: d.entry.clone(),
                        items: &d.items,
                        text: &d.text,
                    })
                    .collect(),
            )?;
        }
        self.finish()
    }

    /// An acknowledged document as stored, its entry and chunks given `groups`.
    pub fn stored_document(&self, doc_id: &str, groups: &[String]) -> Result<StoredDocument> {
        let entry = self
            .manifest()
            .documents
            .get(doc_id)
            .cloned()
            .ok_or_else(|| Error::BadRequest(format!("no indexed document `{doc_id}`")))?;
        let text = self.text(doc_id)?.ok_or_else(|| {
            Error::BadRequest(format!(
                "`{}` was indexed by an older Tanya without its text: ingest its folder again \
                 with --groups and --regroup",
                entry.rel_path
            ))
        })?;
        let ids: Vec<u64> = (0..entry.chunks)
            .map(|ordinal| crate::index::passage::point_id(doc_id, &entry.version, ordinal))
            .collect();
        let mut passages = self.vectors.passages(&ids)?;
        let mut vectors = self.vectors.vectors(&ids)?;
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            let (Some(mut p), Some(v)) = (passages.remove(id), vectors.remove(id)) else {
                return Err(Error::Store {
                    context: format!(
                        "`{}` is not whole in the vector store (run `tanya documents --verify`)",
                        entry.rel_path
                    ),
                    source: None,
                });
            };
            p.groups = groups.to_vec();
            items.push((p, v));
        }
        let entry = DocumentEntry {
            groups: groups.to_vec(),
            ..entry
        };
        Ok(StoredDocument { entry, items, text })
    }

    /// Forgets a document: unacknowledge first, then delete its chunks.
    pub fn remove_document(&self, doc_id: &str) -> Result<()> {
        let _writer = self.writer()?;
        let _writing = self.writing();
        let Some(version) = self
            .manifest()
            .documents
            .get(doc_id)
            .map(|d| d.version.clone())
        else {
            return Ok(());
        };
        // An empty version: the intent is to have none.
        self.begin_write(doc_id, "")?;
        self.acknowledge(Vec::new(), vec![doc_id.to_string()])?;
        self.vectors.delete_document(doc_id, None)?;
        if let Some(bm25) = &self.bm25 {
            bm25.delete_document(doc_id, None)?;
        }
        self.texts.remove(doc_id, &version);
        if self.replicated.is_some() {
            self.end_write(doc_id);
        }
        Ok(())
    }

    /// Makes pending deletions durable and clears the intents they belonged to.
    /// Reorganises the vector store for faster searches (see [`VectorStore::optimize`]).
    /// Takes no write lock: searches and commits go on meanwhile.
    pub fn optimize(&self) -> Result<bool> {
        self.vectors.optimize()
    }

    fn commit_bm25(&self) -> Result<()> {
        match &self.bm25 {
            Some(bm25) => bm25.commit(),
            None => Ok(()),
        }
    }

    pub fn finish(&self) -> Result<()> {
        let _writing = self.writing();
        self.vectors.flush()?;
        self.commit_bm25()?;
        let intents = self.intents()?;
        {
            let m = self.manifest();
            for (name, version) in intents {
                // Only intents whose version is acknowledged are done; others belong to a
                // write still in progress on another thread, or to a crash.
                let done = match m.documents.get(&name) {
                    Some(d) => d.version == version,
                    None => version.is_empty(),
                };
                if done {
                    self.end_write(&name);
                }
            }
        }
        Ok(())
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
        let fetch = limit + limit / 2 + 2;
        let hits = match &self.bm25 {
            Some(bm25) => bm25.search(query, access, fetch)?,
            None => {
                self.vectors
                    .lexical_search(&super::sparse::query_vector(query), access, fetch)?
            }
        };
        Ok(self.current_only(hits, access, limit))
    }

    /// [`Self::bm25_search`] for a question carried into the other language.
    pub fn bm25_search_translated(
        &self,
        translation: &crate::text::lexicon::Translation,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        let fetch = limit + limit / 2 + 2;
        let hits = match &self.bm25 {
            Some(bm25) => bm25.search_translated(translation, access, fetch)?,
            None => self.vectors.lexical_search(
                &super::sparse::translated_vector(translation),
                access,
                fetch,
            )?,
        };
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
            .filter(|(p, _)| access.admits(&p.groups, p.collection.as_deref()))
            .take(limit)
            .collect()
    }

    /// Stored vectors of chunks (see [`VectorStore::vectors`]).
    pub fn vectors(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Vec<Vec<f32>>>> {
        self.vectors.vectors(ids)
    }

    /// Fails with [`Error::DiskFull`] when the data directory's disk has less than
    /// `min_free_mb` free: writing into a memory map on a full disk would kill the
    /// process mid-write.
    pub fn check_free_space(&self, min_free_mb: u64) -> Result<()> {
        let available = fs4::available_space(&self.dir)
            .map_err(|e| Error::io(format!("checking free space of {}", self.dir.display()), e))?;
        let available_mb = available / (1024 * 1024);
        if available_mb < min_free_mb {
            return Err(Error::DiskFull {
                dir: self.dir.clone(),
                available_mb,
                required_mb: min_free_mb,
            });
        }
        Ok(())
    }

    /// Chunks in (vector store, BM25 index), all documents and versions.
    pub fn total_counts(&self) -> Result<(usize, usize)> {
        let vectors = self.vectors.count()?;
        // With lexical search in the vector store, its points are the BM25 index too.
        let bm25 = match &self.bm25 {
            Some(bm25) => bm25.count() as usize,
            None => vectors,
        };
        Ok((vectors, bm25))
    }

    /// Chunk counts of a document in (vector store, BM25 index), all versions.
    /// Whether every chunk of `entry`'s version of `doc_id` carries exactly the groups
    /// the manifest records, in the vector store and in the BM25 index (the access
    /// filters inside both searches read the chunks' groups, not the manifest's).
    pub fn groups_as_recorded(&self, doc_id: &str, entry: &DocumentEntry) -> Result<bool> {
        let ids: Vec<u64> = (0..entry.chunks)
            .map(|ordinal| crate::index::passage::point_id(doc_id, &entry.version, ordinal))
            .collect();
        let in_vectors = self
            .vectors
            .passages(&ids)?
            .values()
            .all(|p| p.groups == entry.groups);
        let in_bm25 = match &self.bm25 {
            Some(bm25) => bm25
                .passages_of(doc_id)?
                .iter()
                .filter(|p| p.version == entry.version)
                .all(|p| p.groups == entry.groups),
            None => true,
        };
        Ok(in_vectors && in_bm25)
    }

    pub fn chunk_counts(&self, doc_id: &str) -> Result<(usize, usize)> {
        let vectors = self.vectors.count_document(doc_id)?;
        let bm25 = match &self.bm25 {
            Some(bm25) => bm25.count_document(doc_id)?,
            None => vectors,
        };
        Ok((vectors, bm25))
    }
}

/// Publishes the index in `data_dir` (its vectors and BM25 already moved to Qdrant) as
/// the shared records: its acknowledged documents and their texts, in one commit.
fn publish_local(data_dir: &Path, identity: &str, records: &Records, lease_pid: i32) -> Result<()> {
    let Some(manifest) = Manifest::load(data_dir)? else {
        return Ok(());
    };
    if manifest.embedder != identity {
        return Err(Error::EmbedderMismatch {
            data_dir: data_dir.to_path_buf(),
            built_with: manifest.embedder,
            configured: identity.to_string(),
        });
    }
    let texts = Texts::open(data_dir)?;
    let shared_texts = Texts::shared(records.clone());
    let mut changes = crate::shared::records::Changes::default();
    for (doc_id, entry) in &manifest.documents {
        if let Some(text) = texts.get(doc_id, &entry.version)? {
            shared_texts.put(doc_id, &entry.version, &text)?;
        }
        changes.put.push((
            doc_id.clone(),
            entry.version.clone(),
            serde_json::to_string(entry).expect("an entry serialises"),
        ));
    }
    records.commit(lease_pid, &changes)?;
    tracing::info!(
        documents = manifest.documents.len(),
        "published this data directory's index as the shared records"
    );
    Ok(())
}

/// Copies the files below `from` into `to` (created), but for the paths relative to
/// `from` that `skip` names; symlinks are not followed (there are none in a data
/// directory or a backup). Files and bytes copied.
pub fn copy_dir(from: &Path, to: &Path, skip: &[&str]) -> std::io::Result<(usize, u64)> {
    copy_tree(from, to, from, skip)
}

fn copy_tree(from: &Path, to: &Path, root: &Path, skip: &[&str]) -> std::io::Result<(usize, u64)> {
    std::fs::create_dir_all(to)?;
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        if skip.iter().any(|s| rel == Path::new(s)) {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            let (f, b) = copy_tree(&path, &target, root, skip)?;
            files += f;
            bytes += b;
        } else if kind.is_file() {
            bytes += std::fs::copy(&path, &target)?;
            files += 1;
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreKind;
    use crate::index::manifest::tests::sample_entry as entry;
    use crate::index::store::contract_tests::passage;

    fn edge_store() -> StoreConfig {
        StoreConfig::of(StoreKind::Edge)
    }
    fn memory_store() -> StoreConfig {
        StoreConfig::of(StoreKind::Memory)
    }

    fn no_text() -> StoredText {
        StoredText {
            text: String::new(),
            pages: Vec::new(),
        }
    }

    /// Commits document `doc` (version "abc", as [`entry`] says) with one public chunk.
    fn commit_one(c: &Collection, doc: &str) -> Passage {
        let p = passage(doc, "abc", 0, &["public"]);
        c.commit_document(
            doc,
            entry(Lang::En, "public"),
            &[(p.clone(), vec![vec![1.0, 0.0, 0.0, 0.0]])],
            &no_text(),
        )
        .unwrap();
        c.finish().unwrap();
        p
    }

    #[test]
    fn the_same_version_under_other_groups_leaves_no_chunk_with_the_old_ones() {
        for store in [edge_store(), memory_store()] {
            let dir = tempfile::tempdir().unwrap();
            let c = Collection::open(dir.path(), "test/4", 4, &store).unwrap();
            let v = vec![vec![1.0, 0.0, 0.0, 0.0]];
            let public = passage("d", "abc", 0, &["public"]);
            c.commit_document(
                "d",
                entry(Lang::En, "public"),
                &[(public, v.clone())],
                &no_text(),
            )
            .unwrap();
            c.finish().unwrap();
            // Moved to hr (the content, so the version and the chunk ids, unchanged).
            let hr = passage("d", "abc", 0, &["hr"]);
            c.commit_document(
                "d",
                entry(Lang::En, "hr"),
                &[(hr.clone(), v.clone())],
                &no_text(),
            )
            .unwrap();
            c.finish().unwrap();
            assert_eq!(c.chunk_counts("d").unwrap(), (1, 1), "{store:?}");
            let outsider = Access::for_groups(["public"]).unwrap();
            assert!(c.bm25_search("text d", &outsider, 5).unwrap().is_empty());
            assert!(c.dense_search(&v[0], &outsider, 5).unwrap().is_empty());
            let member = Access::for_groups(["hr"]).unwrap();
            assert_eq!(c.bm25_search("text d", &member, 5).unwrap()[0].0, hr);
            let recorded = c.manifest().documents["d"].clone();
            assert!(c.groups_as_recorded("d", &recorded).unwrap());
        }
    }

    #[test]
    fn regrouping_keeps_the_vectors_and_moves_every_chunk() {
        for store in [edge_store(), memory_store()] {
            let dir = tempfile::tempdir().unwrap();
            let c = Collection::open(dir.path(), "test/4", 4, &store).unwrap();
            let v = vec![vec![0.0, 1.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 0.0]];
            let public = passage("d", "abc", 0, &["public"]);
            let one_chunk = DocumentEntry {
                chunks: 1,
                ..entry(Lang::En, "public")
            };
            c.commit_document("d", one_chunk, &[(public.clone(), v.clone())], &no_text())
                .unwrap();
            c.finish().unwrap();
            c.regroup("d", &["HR-1".to_string()]).unwrap();
            assert_eq!(c.manifest().documents["d"].groups, ["HR-1"]);
            assert_eq!(c.chunk_counts("d").unwrap(), (1, 1), "{store:?}");
            let outsider = Access::for_groups(["public"]).unwrap();
            assert!(c.bm25_search("text d", &outsider, 5).unwrap().is_empty());
            assert!(c.dense_search(&v[0], &outsider, 5).unwrap().is_empty());
            let member = Access::for_groups(["HR-1"]).unwrap();
            let hits = c.dense_search(&v[1], &member, 5).unwrap();
            assert_eq!(hits[0].0.groups, ["HR-1"], "{store:?}");
            assert_eq!(c.bm25_search("text d", &member, 5).unwrap().len(), 1);
            // The vectors are the ones embedded at ingest, both of them.
            let id = public.point_id;
            assert_eq!(c.vectors(&[id]).unwrap()[&id].len(), 2);
            let recorded = c.manifest().documents["d"].clone();
            assert!(c.groups_as_recorded("d", &recorded).unwrap());
            assert!(c.regroup("nope", &["x".to_string()]).is_err());
        }
    }

    #[test]
    fn memory_store_serves_a_collection_and_writes_no_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let c = Collection::open(dir.path(), "test/4", 4, &memory_store()).unwrap();
        assert!(!c.persistent());
        let p = commit_one(&c, "a");
        let public = Access::for_groups(["public"]).unwrap();
        let hits = c.dense_search(&[1.0, 0.0, 0.0, 0.0], &public, 5).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, p);
        assert_eq!(c.total_counts().unwrap(), (1, 1));
        assert!(!dir.path().join("vectors").exists());
    }

    #[test]
    fn memory_store_refuses_a_directory_whose_manifest_lists_documents() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Collection::open(dir.path(), "test/4", 4, &memory_store()).unwrap();
            commit_one(&c, "a");
        }
        // A restart lost the vectors the manifest speaks of.
        let e = Collection::open(dir.path(), "test/4", 4, &memory_store())
            .err()
            .expect("refused");
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("memory"), "{e}");
        assert!(e.to_string().contains("1 documents"), "{e}");
        // Nothing was thrown away.
        assert!(Manifest::load(dir.path())
            .unwrap()
            .unwrap()
            .documents
            .contains_key("a"));

        // Nor may it mask an index an edge store holds.
        let dir = tempfile::tempdir().unwrap();
        let p = {
            let c = Collection::open(dir.path(), "test/4", 4, &edge_store()).unwrap();
            assert!(c.persistent());
            commit_one(&c, "b")
        };
        assert!(Collection::open(dir.path(), "test/4", 4, &memory_store()).is_err());
        let c = Collection::open(dir.path(), "test/4", 4, &edge_store()).unwrap();
        let public = Access::for_groups(["public"]).unwrap();
        let hits = c.dense_search(&[1.0, 0.0, 0.0, 0.0], &public, 5).unwrap();
        assert_eq!(hits[0].0, p);
    }

    #[test]
    fn memory_store_reopens_a_directory_whose_manifest_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Collection::open(dir.path(), "test/4", 4, &memory_store()).unwrap();
            commit_one(&c, "a");
            c.remove_document("a").unwrap();
            c.finish().unwrap();
        }
        let c = Collection::open(dir.path(), "test/4", 4, &memory_store()).unwrap();
        assert!(c.manifest().documents.is_empty());
        commit_one(&c, "b");
        assert_eq!(c.total_counts().unwrap().0, 1);
    }

    #[test]
    fn language_share_counts_only_the_documents_the_caller_may_see() {
        let dir = tempfile::tempdir().unwrap();
        let c = Collection::open(dir.path(), "test/4", 4, &edge_store()).unwrap();
        let public = Access::for_groups(["public"]).unwrap();
        let hr = Access::for_groups(["public", "hr"]).unwrap();
        // Nothing to see: nothing says the answer is in another language.
        assert_eq!(c.language_share(Lang::En, &public), 1.0);
        c.commit_document("a", entry(Lang::Ms, "public"), &[], &no_text())
            .unwrap();
        c.commit_document("b", entry(Lang::Ms, "public"), &[], &no_text())
            .unwrap();
        c.commit_document("c", entry(Lang::En, "public"), &[], &no_text())
            .unwrap();
        c.commit_document("d", entry(Lang::En, "hr"), &[], &no_text())
            .unwrap();
        assert!((c.language_share(Lang::Ms, &public) - 2.0 / 3.0).abs() < 1e-6);
        assert!((c.language_share(Lang::En, &public) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(c.language_share(Lang::En, &hr), 0.5);
        assert_eq!(c.language_share(Lang::Ms, &hr), 0.5);
    }
}
