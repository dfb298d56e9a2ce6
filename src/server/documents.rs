//! Documents over HTTP: the list (indexed documents and uploads in flight), uploads
//! streamed to disk under a size limit and ingested in the background one at a time,
//! deletion, and the original file and its extracted text for the source viewer.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::TryStreamExt;
use tanya_ingest::Format;

use sha2::Digest;

use super::auth::Principal;
use super::error::ApiError;
use super::metrics::Metrics;
use super::types::{Deleted, DocumentList, DocumentText, DocumentView, PageSpan};
use super::AppState;
use crate::engine::{doc_id_for, IngestOptions, Quiet};
use crate::engine::{Access, DocumentEntry};
use crate::Engine;

/// Folder under the data directory where uploads are kept, one space (subfolder) per set
/// of access groups.
pub const UPLOADS_DIR: &str = "uploads";
/// How an upload space's folder name starts (then 16 hex digits of its groups' hash).
const SPACE_PREFIX: &str = "g-";
/// The file in an upload space that lists its groups, one per line.
const GROUPS_FILE: &str = ".groups";
/// The file in an upload space that names its collection (absent: none).
const COLLECTION_FILE: &str = ".collection";

/// Where an upload goes: who may see it, its space, its collection.
struct Destination {
    groups: Vec<String>,
    space: PathBuf,
    collection: Option<String>,
}
/// Where an upload is written until it is complete.
const INCOMING_DIR: &str = ".incoming";
/// Where complete uploads wait for their turn to be ingested (kept across restarts).
const QUEUED_DIR: &str = ".queued";
/// Where the indexed version of a file waits while its new upload is ingested: put back if
/// the new one is rejected, removed once it is acknowledged.
const PREVIOUS_DIR: &str = ".previous";
/// How often a replica looks in the shared upload spaces for uploads left by others.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Multipart framing allowed on top of the file bytes when checking `Content-Length`.
const MULTIPART_SLACK: u64 = 64 * 1024;
/// Longest stored file name, in bytes.
const MAX_NAME_BYTES: usize = 120;

#[derive(Debug, Clone)]
enum JobStatus {
    Queued,
    Indexing,
    Rejected { reason: String, message: String },
}

#[derive(Debug, Clone)]
struct Job {
    name: String,
    /// The access groups it is indexed with (those of its upload space).
    groups: Vec<String>,
    /// Its upload space: the folder it is indexed from.
    space: PathBuf,
    /// The collection it goes into (that of its space).
    collection: Option<String>,
    /// Where it is indexed from (its document id is this path's).
    path: PathBuf,
    /// Where it waits until its turn (under [`QUEUED_DIR`]).
    staged: PathBuf,
    size: u64,
    format: Format,
    status: JobStatus,
}

/// Uploads waiting for, in, or rejected by ingestion, and the worker that ingests them.
pub struct Uploads {
    dir: PathBuf,
    jobs: Mutex<BTreeMap<String, Job>>,
    queue: crossbeam_channel::Sender<String>,
    depth: AtomicUsize,
}

impl Uploads {
    /// Creates the uploads folders, puts back what an interrupted ingest left half-swapped,
    /// starts the ingest worker and re-queues every upload that was stored but never
    /// acknowledged (the server stopped while it waited or was being ingested).
    pub fn start(engine: Arc<Engine>, metrics: Arc<Metrics>) -> crate::Result<Arc<Uploads>> {
        let dir = match engine.config().shared.uploads_dir.as_str() {
            "" => engine.data_dir().join(UPLOADS_DIR),
            shared => PathBuf::from(shared),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::Error::io(format!("creating {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| crate::Error::io(format!("resolving {}", dir.display()), e))?;
        let (tx, rx) = crossbeam_channel::unbounded::<String>();
        let uploads = Arc::new(Uploads {
            dir,
            jobs: Mutex::new(BTreeMap::new()),
            queue: tx,
            depth: AtomicUsize::new(0),
        });
        let shared = engine.is_shared();
        for (space, groups, collection) in uploads.all_spaces(&engine) {
            prepare_space(&space)?;
            if shared {
                // Another replica may be receiving into, or ingesting from, the shared
                // spaces right now: the worker sweeps them under the writer lease.
                continue;
            }
            // Half-written uploads of a previous run: never acknowledged, never queued.
            for e in files_in(&space.join(INCOMING_DIR)) {
                let _ = std::fs::remove_file(e);
            }
            uploads.requeue(&engine, &space, &groups, collection.as_deref());
        }
        let worker = Arc::clone(&uploads);
        std::thread::Builder::new()
            .name("tanya-uploads".into())
            .spawn(move || worker.run(&engine, &metrics, rx))
            .map_err(|e| crate::Error::io("starting the ingest worker", e))?;
        Ok(uploads)
    }

    /// The upload spaces made so far, with their groups and collection.
    fn spaces(&self) -> Vec<(PathBuf, Vec<String>, Option<String>)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| e.file_name().to_string_lossy().starts_with(SPACE_PREFIX))
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path().join(GROUPS_FILE)).ok()?;
                let groups: Vec<String> = text.lines().map(str::to_string).collect();
                let collection = std::fs::read_to_string(e.path().join(COLLECTION_FILE))
                    .ok()
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty());
                (!groups.is_empty()).then(|| (e.path(), groups, collection))
            })
            .collect()
    }

    /// The folder uploads visible to exactly `groups`, into `collection`, are kept in,
    /// made on first use. Each set of groups (and collection) has its own, so two people
    /// who cannot see each other's documents never replace one another's file of the
    /// same name.
    fn space_for(&self, groups: &[String], collection: Option<&str>) -> crate::Result<PathBuf> {
        let mut sorted = groups.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut key = sorted.join("\n");
        if let Some(c) = collection {
            key.push_str(&format!("\n\u{1}{c}"));
        }
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let space = self.dir.join(format!("{SPACE_PREFIX}{hex}"));
        prepare_space(&space)?;
        let groups_file = space.join(GROUPS_FILE);
        if !groups_file.is_file() {
            let tmp = space.join(format!("{GROUPS_FILE}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(sorted.join("\n").as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &groups_file)
            };
            write().map_err(|e| crate::Error::io("recording an upload space's groups", e))?;
            if let Some(c) = collection {
                std::fs::write(space.join(COLLECTION_FILE), c)
                    .map_err(|e| crate::Error::io("recording an upload space's collection", e))?;
            }
        }
        Ok(space)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Uploads waiting to be ingested (queued or in progress).
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    fn enqueue(
        &self,
        name: String,
        to: Destination,
        staged: PathBuf,
        path: PathBuf,
        size: u64,
        format: Format,
    ) -> String {
        let id = doc_id_for(&path);
        let mut jobs = self.lock();
        let already = matches!(jobs.get(&id).map(|j| &j.status), Some(JobStatus::Queued));
        jobs.insert(
            id.clone(),
            Job {
                name,
                groups: to.groups,
                space: to.space,
                collection: to.collection,
                path,
                staged,
                size,
                format,
                status: JobStatus::Queued,
            },
        );
        drop(jobs);
        // A file re-uploaded while still queued is ingested once, in its latest form.
        if !already {
            self.depth.fetch_add(1, Ordering::Relaxed);
            let _ = self.queue.send(id.clone());
        }
        id
    }

    fn run(&self, engine: &Engine, metrics: &Metrics, rx: crossbeam_channel::Receiver<String>) {
        let shared = engine.is_shared();
        if shared {
            self.sweep(engine);
        }
        loop {
            let id = match rx.recv_timeout(SWEEP_EVERY) {
                Ok(id) => id,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if shared {
                        self.sweep(engine);
                    }
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            };
            let job = {
                let mut jobs = self.lock();
                match jobs.get_mut(&id) {
                    Some(job) if matches!(job.status, JobStatus::Queued) => {
                        job.status = JobStatus::Indexing;
                        Some(job.clone())
                    }
                    _ => None, // deleted while queued
                }
            };
            let Some(job) = job else {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                continue;
            };
            // With replicas, the whole job (the files in the shared upload space and the
            // ingest) runs under the writer lease: no other replica's job interleaves.
            let done = engine.while_writing(|| self.ingest_job(engine, metrics, &job));
            let mut jobs = self.lock();
            match done {
                Ok(Some(rejection)) => {
                    let (reason, message) = rejection;
                    if let Some(job) = jobs.get_mut(&id) {
                        let message = super::error::redact_paths(&message);
                        job.status = JobStatus::Rejected { reason, message };
                    }
                }
                Ok(None) => {
                    if matches!(jobs.get(&id).map(|j| &j.status), Some(JobStatus::Indexing)) {
                        jobs.remove(&id);
                    }
                }
                Err(e) => {
                    // Another replica kept the lease: try again in a while.
                    tracing::info!(error = %e.full_message(), file = %job.name, "upload waits for the writer lease");
                    if let Some(j) = jobs.get_mut(&id) {
                        j.status = JobStatus::Queued;
                    }
                    drop(jobs);
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    let _ = self.queue.send(id);
                    continue;
                }
            }
            self.depth.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Ingests one upload: puts it in place (the indexed version, if any, aside), ingests
    /// it, and puts the indexed version back if it is rejected. The rejection, if any.
    fn ingest_job(
        &self,
        engine: &Engine,
        metrics: &Metrics,
        job: &Job,
    ) -> Option<(String, String)> {
        let Job {
            staged,
            path,
            space,
            groups,
            collection,
            ..
        } = job;
        if !staged.is_file() {
            // Another replica ingested it already (its upload space is shared).
            return None;
        }
        let options = IngestOptions {
            in_collection: collection.clone(),
            ..IngestOptions::with_groups(groups.clone())
        };
        let previous = space.join(PREVIOUS_DIR).join(file_name(path));
        let outcome = match swap_in(staged, path, &previous) {
            Err(e) => Ok(Err(crate::Error::io("putting the upload in place", e))),
            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.ingest(path, &options, &Quiet)
            })),
        };
        let rejection = match outcome {
            Ok(Ok(report)) => {
                for i in &report.indexed {
                    metrics.ingested("indexed", i.chunks);
                }
                for _ in 0..report.unchanged {
                    metrics.ingested("unchanged", 0);
                }
                report.rejected.first().map(|r| {
                    metrics.ingested("rejected", 0);
                    (r.reason.clone(), r.message.clone())
                })
            }
            Ok(Err(e)) => {
                metrics.ingested("rejected", 0);
                let reason = if e.is_user_error() {
                    "rejected"
                } else {
                    "error"
                };
                Some((reason.to_string(), e.full_message()))
            }
            Err(_) => {
                metrics.ingested("rejected", 0);
                Some((
                    "error".into(),
                    "the ingest worker failed on this file".into(),
                ))
            }
        };
        match &rejection {
            Some((reason, message)) => {
                tracing::warn!(file = %path.display(), %reason, %message, "upload rejected");
                // A rejected upload is not kept: nothing would ever use it. The version
                // indexed before it, if any, goes back in place, whole.
                let _ = std::fs::remove_file(staged);
                if previous.is_file() {
                    let _ = std::fs::rename(&previous, path);
                } else {
                    let _ = std::fs::remove_file(path);
                }
            }
            None => {
                // Indexed: the manifest is the record from now on.
                let _ = std::fs::remove_file(&previous);
            }
        }
        rejection
    }

    /// Every upload space: `(folder, groups, collection)`, the folder itself first
    /// (uploads made before spaces existed, with the default groups).
    fn all_spaces(&self, engine: &Engine) -> Vec<(PathBuf, Vec<String>, Option<String>)> {
        let mut spaces = vec![(
            self.dir.clone(),
            engine.config().ingest.default_groups.clone(),
            None,
        )];
        spaces.extend(self.spaces());
        spaces
    }

    /// Puts back what a stopped ingest left in `space` and queues every upload stored
    /// there but never acknowledged that is not queued here yet.
    fn requeue(&self, engine: &Engine, space: &Path, groups: &[String], collection: Option<&str>) {
        recover(engine, space);
        for staged in files_in(&space.join(QUEUED_DIR)) {
            let name = file_name(&staged);
            let dest = space.join(&name);
            let known = matches!(
                self.lock().get(&doc_id_for(&dest)).map(|j| &j.status),
                Some(JobStatus::Queued | JobStatus::Indexing)
            );
            if known {
                continue;
            }
            if let Some(format) = Format::from_path(&staged) {
                let size = std::fs::metadata(&staged).map(|m| m.len()).unwrap_or(0);
                tracing::info!(file = %name, "re-queueing an upload that was never indexed");
                let to = Destination {
                    groups: groups.to_vec(),
                    space: space.to_path_buf(),
                    collection: collection.map(str::to_string),
                };
                self.enqueue(name, to, staged, dest, size, format);
            }
        }
    }

    /// With replicas: under the writer lease, puts back what a replica that stopped
    /// during an upload's ingest left in the shared upload spaces, and takes up the
    /// uploads another replica stored but never ingested. Only when there is something
    /// to do (the lease is not taken for nothing).
    fn sweep(&self, engine: &Engine) {
        let spaces = self.all_spaces(engine);
        let work = spaces.iter().any(|(space, _, _)| {
            !files_in(&space.join(PREVIOUS_DIR)).is_empty()
                || files_in(&space.join(QUEUED_DIR)).iter().any(|staged| {
                    let id = doc_id_for(&space.join(file_name(staged)));
                    !self.lock().contains_key(&id)
                })
        });
        if !work {
            return;
        }
        let swept = engine.while_writing(|| {
            for (space, groups, collection) in &spaces {
                self.requeue(engine, space, groups, collection.as_deref());
            }
        });
        if let Err(e) = swept {
            tracing::info!(error = %e.full_message(), "the upload sweep waits for the writer lease");
        }
    }

    fn is_upload(&self, source: &Path) -> bool {
        source.starts_with(&self.dir)
    }
}

/// Makes an upload space's folders.
fn prepare_space(space: &Path) -> crate::Result<()> {
    for sub in [INCOMING_DIR, QUEUED_DIR, PREVIOUS_DIR] {
        let d = space.join(sub);
        std::fs::create_dir_all(&d)
            .map_err(|e| crate::Error::io(format!("creating {}", d.display()), e))?;
    }
    Ok(())
}

/// The regular files directly in `dir`, but for hidden ones (`.groups`; an upload's
/// name never starts with a dot).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Puts a queued upload where it is indexed from, moving the version there now (if any)
/// aside to `previous` first.
fn swap_in(staged: &Path, dest: &Path, previous: &Path) -> std::io::Result<()> {
    if dest.is_file() {
        std::fs::rename(dest, previous)?;
    }
    std::fs::rename(staged, dest)
}

/// Whether `path` holds exactly the bytes of an acknowledged version.
fn holds_version(path: &Path, version: Option<&str>) -> bool {
    version.is_some_and(|v| std::fs::read(path).is_ok_and(|b| tanya_ingest::content_hash(&b) == v))
}

/// Puts back what a server that stopped during an upload's ingest left: the acknowledged
/// version in place, and every upload that was not acknowledged in the queue.
fn recover(engine: &Engine, dir: &Path) {
    let version_of = |path: &Path| {
        engine
            .manifest()
            .documents
            .get(&doc_id_for(path))
            .map(|d| d.version.clone())
    };
    let queued = dir.join(QUEUED_DIR);
    for previous in files_in(&dir.join(PREVIOUS_DIR)) {
        let name = file_name(&previous);
        let dest = dir.join(&name);
        let version = version_of(&dest);
        if holds_version(&dest, version.as_deref()) {
            let _ = std::fs::remove_file(&previous); // the new upload was acknowledged
        } else if holds_version(&previous, version.as_deref()) {
            // The new upload was not: back in the queue (unless a newer one waits), and
            // the acknowledged version back in place.
            if dest.is_file() && !queued.join(&name).exists() {
                let _ = std::fs::rename(&dest, queued.join(&name));
            }
            let _ = std::fs::rename(&previous, &dest);
        } else {
            let _ = std::fs::remove_file(&previous);
        }
    }
    for path in files_in(dir) {
        let version = version_of(&path);
        if !holds_version(&path, version.as_deref()) {
            let staged = queued.join(file_name(&path));
            if staged.exists() {
                let _ = std::fs::remove_file(&path);
            } else {
                let _ = std::fs::rename(&path, staged);
            }
        }
    }
}

fn view_of_entry(id: &str, e: &DocumentEntry, uploads: &Uploads) -> DocumentView {
    DocumentView {
        id: id.to_string(),
        name: e.rel_path.clone(),
        title: e.title.clone(),
        format: e.format.as_str().to_string(),
        lang: Some(e.lang.as_str().to_string()),
        pages: e.pages,
        ocr_pages: e.ocr_pages.clone(),
        chunks: Some(e.chunks),
        size: e.size,
        origin: if uploads.is_upload(&e.source) {
            "upload"
        } else {
            "folder"
        }
        .to_string(),
        status: "indexed".to_string(),
        reason: None,
        message: None,
        ingested_at: Some(e.ingested_at),
        collection: e.collection.clone(),
        groups: Some(e.groups.clone()),
    }
}

fn apply_job(view: &mut DocumentView, job: &Job) {
    let (status, reason, message) = match &job.status {
        JobStatus::Queued => ("queued", None, None),
        JobStatus::Indexing => ("indexing", None, None),
        JobStatus::Rejected { reason, message } => {
            ("rejected", Some(reason.clone()), Some(message.clone()))
        }
    };
    view.status = status.to_string();
    view.reason = reason;
    view.message = message;
    view.size = job.size;
}

fn view_of_job(id: &str, job: &Job) -> DocumentView {
    let mut v = DocumentView {
        id: id.to_string(),
        name: job.name.clone(),
        title: job.name.clone(),
        format: job.format.as_str().to_string(),
        lang: None,
        pages: None,
        ocr_pages: Vec::new(),
        chunks: None,
        size: job.size,
        origin: "upload".to_string(),
        status: String::new(),
        reason: None,
        message: None,
        ingested_at: None,
        collection: job.collection.clone(),
        groups: Some(job.groups.clone()),
    };
    apply_job(&mut v, job);
    v
}

/// Every document the caller may see, and every upload in flight they may see.
fn all_documents(state: &AppState, access: &Access) -> Vec<DocumentView> {
    let mut out: BTreeMap<String, DocumentView> = BTreeMap::new();
    {
        let m = state.engine.manifest();
        for (id, e) in &m.documents {
            if access.allows(&e.groups) {
                out.insert(id.clone(), view_of_entry(id, e, &state.uploads));
            }
        }
    }
    for (id, job) in state.uploads.lock().iter() {
        if !access.allows(&job.groups) {
            continue;
        }
        match out.get_mut(id) {
            Some(v) => apply_job(v, job),
            None => {
                out.insert(id.clone(), view_of_job(id, job));
            }
        }
    }
    let mut docs: Vec<DocumentView> = out.into_values().map(|v| for_whom(v, access)).collect();
    docs.sort_by_key(|d| d.name.to_lowercase());
    docs
}

/// `view` as `access` may see it: a document's groups are shown to administrators only
/// (they are what the page's access controls edit; a reader would learn the names of
/// groups they are not in).
fn for_whom(mut view: DocumentView, access: &Access) -> DocumentView {
    if !access.is_everything() {
        view.groups = None;
    }
    view
}

/// One document or upload in flight, looked up directly (the page polls this while an
/// upload is ingested).
fn find_document(state: &AppState, access: &Access, id: &str) -> Result<DocumentView, ApiError> {
    let indexed = entry(state, access, id)
        .ok()
        .map(|e| view_of_entry(id, &e, &state.uploads));
    let jobs = state.uploads.lock();
    let view = match (indexed, jobs.get(id).filter(|j| access.allows(&j.groups))) {
        (Some(mut v), Some(job)) => {
            apply_job(&mut v, job);
            v
        }
        (Some(v), None) => v,
        (None, Some(job)) => view_of_job(id, job),
        (None, None) => return Err(ApiError::not_found(format!("no document with id `{id}`"))),
    };
    Ok(for_whom(view, access))
}

/// The acknowledged entry of `id`, if the caller may see it.
fn entry(state: &AppState, access: &Access, id: &str) -> Result<DocumentEntry, ApiError> {
    state
        .engine
        .manifest()
        .documents
        .get(id)
        .filter(|e| access.allows(&e.groups))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no indexed document with id `{id}`")))
}

#[utoipa::path(get, path = "/api/documents", tag = "documents",
    responses((status = 200, body = DocumentList)))]
pub async fn list(state: web::Data<AppState>, asker: Principal) -> web::Json<DocumentList> {
    web::Json(DocumentList {
        documents: all_documents(&state, &asker.access),
        queue_depth: state.uploads.depth(),
    })
}

#[utoipa::path(get, path = "/api/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = DocumentView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    asker: Principal,
    id: web::Path<String>,
) -> Result<web::Json<DocumentView>, ApiError> {
    Ok(web::Json(find_document(&state, &asker.access, &id)?))
}

/// A safe file name for an upload: the last path component, without control characters,
/// separators or leading dots, at most [`MAX_NAME_BYTES`].
pub fn sanitize_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    name = name.trim().trim_start_matches('.').trim().to_string();
    if name.len() > MAX_NAME_BYTES {
        // Keep the extension: it decides the format.
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let keep = MAX_NAME_BYTES.saturating_sub(ext.len() + 1);
        let mut stem: String = String::new();
        for c in name.chars() {
            if stem.len() + c.len_utf8() > keep {
                break;
            }
            stem.push(c);
        }
        name = if ext.is_empty() {
            stem
        } else {
            format!("{stem}.{ext}")
        };
    }
    (!name.is_empty()).then_some(name)
}

/// An error storing an upload: a full disk is its own status (507), with what to do.
fn store_error(e: std::io::Error) -> ApiError {
    if crate::error::is_disk_full(&e) {
        ApiError::new(
            actix_web::http::StatusCode::INSUFFICIENT_STORAGE,
            "disk_full",
            "the disk holding Tanya's data is full: free some space and upload again",
        )
    } else {
        ApiError::internal(format!("storing the upload: {e}"))
    }
}

fn multipart_error(e: actix_multipart::MultipartError) -> ApiError {
    use actix_multipart::MultipartError as M;
    match e {
        M::ContentTypeMissing | M::ContentTypeParse | M::ContentTypeIncompatible => {
            ApiError::unsupported("upload files as multipart/form-data, in parts named `file`")
        }
        M::Payload(e) if super::slow::is_too_slow(&e) => super::error::too_slow(),
        other => ApiError::bad_request(format!("reading the upload: {other}")),
    }
}

#[utoipa::path(post, path = "/api/documents", tag = "documents",
    request_body(content_type = "multipart/form-data", description = "one or more parts named `file`"),
    responses((status = 202, body = DocumentList),
              (status = 413, body = super::error::ErrorBody),
              (status = 415, body = super::error::ErrorBody)))]
pub async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    uploader: Principal,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let max = state.max_upload_bytes;
    let limit_message = || {
        format!(
            "the upload is larger than the limit of {} MB",
            state.engine.config().server.max_upload_mb
        )
    };
    // Refuse on the declared length, before reading a byte of the body.
    if let Some(len) = declared_length(&req) {
        if len > max + MULTIPART_SLACK {
            return Err(ApiError::too_large(limit_message()));
        }
    }
    // A nearly full disk refuses uploads before their bytes are stored.
    state.engine.check_free_space()?;
    let mut parts = Multipart::new(req.headers(), payload);
    let mut chosen: Option<Vec<String>> = None;
    let mut into: Option<String> = None;
    let mut space: Option<(PathBuf, Vec<String>)> = None;
    let mut accepted = Vec::new();
    let mut total: u64 = 0;
    while let Some(mut field) = parts.try_next().await.map_err(multipart_error)? {
        if matches!(field.name(), Some("groups" | "collection")) {
            if space.is_some() {
                return Err(ApiError::bad_request(
                    "send the `groups` and `collection` fields before the files",
                ));
            }
            let values = read_groups_field(&mut field).await?;
            if field.name() == Some("groups") {
                chosen = Some(values);
            } else {
                into = upload_collection(values)?;
            }
            continue;
        }
        if field.name() != Some("file") {
            continue; // other form fields are ignored (the stream skips their bytes)
        }
        if space.is_none() {
            let groups = upload_groups(&state, &uploader, chosen.take())?;
            let uploads = Arc::clone(&state.uploads);
            let (g, c) = (groups.clone(), into.clone());
            let dir = web::block(move || uploads.space_for(&g, c.as_deref())).await??;
            space = Some((dir, groups));
        }
        let (space_dir, groups) = space.clone().expect("set above");
        let incoming = space_dir.join(INCOMING_DIR);
        let raw = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request("a `file` part needs a file name"))?;
        let name = sanitize_name(&raw)
            .ok_or_else(|| ApiError::bad_request(format!("`{raw}` is not a usable file name")))?;
        let format = Format::from_path(Path::new(&name)).ok_or_else(|| {
            ApiError::unsupported(format!(
                "`{name}` is not a format Tanya reads (PDF, DOCX, XLSX, PPTX, CSV, email, HTML, Markdown or text)"
            ))
        })?;
        let staged = space_dir.join(QUEUED_DIR).join(&name);
        let size = receive_file(
            &mut field,
            &incoming,
            &staged,
            &mut total,
            max,
            &limit_message,
        )
        .await?;
        let dest = space_dir.join(&name);
        state.audit.record(
            "upload",
            Some(&uploader.user.name),
            serde_json::json!({ "file": name, "groups": groups, "bytes": size }),
        );
        let to = Destination {
            groups,
            space: space_dir,
            collection: into.clone(),
        };
        let id = state.uploads.enqueue(name, to, staged, dest, size, format);
        accepted.push(id);
    }
    if accepted.is_empty() {
        return Err(ApiError::bad_request(
            "no file in the upload: send multipart/form-data with parts named `file`",
        ));
    }
    let documents = accepted
        .iter()
        .filter_map(|id| find_document(&state, &uploader.access, id).ok())
        .collect();
    Ok(HttpResponse::Accepted().json(DocumentList {
        documents,
        queue_depth: state.uploads.depth(),
    }))
}

/// The groups an upload is made visible to: those the uploader chose (all of them their
/// own, unless they are an administrator), or else all of the uploader's groups (an
/// administrator without groups: `ingest.default_groups`).
fn upload_groups(
    state: &AppState,
    uploader: &Principal,
    chosen: Option<Vec<String>>,
) -> Result<Vec<String>, ApiError> {
    let own = &uploader.user.groups;
    let admin = uploader.access.is_everything();
    let groups = match chosen {
        Some(g) if !g.is_empty() => g,
        _ if admin && own.is_empty() => state.engine.config().ingest.default_groups.clone(),
        _ => own.clone(),
    };
    if groups.is_empty() {
        return Err(ApiError::bad_request(
            "say which groups may see these files: a `groups` field (comma-separated) \
             before the files",
        ));
    }
    if let Some(bad) = groups.iter().find(|g| !crate::config::valid_group(g)) {
        return Err(ApiError::bad_request(format!(
            "`{bad}` is not a valid group name"
        )));
    }
    if !admin {
        if let Some(other) = groups.iter().find(|g| !own.contains(g)) {
            return Err(ApiError::forbidden(
                "forbidden",
                format!("you are not in the group `{other}`: upload only to your own groups"),
            ));
        }
    }
    Ok(groups)
}

/// The collection of a `collection` form field: one name, as group names go; empty or
/// `default` for none.
fn upload_collection(values: Vec<String>) -> Result<Option<String>, ApiError> {
    match values.as_slice() {
        [] => Ok(None),
        [one] if one == "default" => Ok(None),
        [one] if crate::config::valid_group(one) => Ok(Some(one.clone())),
        _ => Err(ApiError::bad_request(
            "`collection` is one name: 1 to 64 characters, no comma, no control characters",
        )),
    }
}

/// The comma-separated values of a `groups` (or `collection`) form field (at most 4 KiB).
async fn read_groups_field(field: &mut actix_multipart::Field) -> Result<Vec<String>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(multipart_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 4096 {
            return Err(ApiError::bad_request("the `groups` field is too long"));
        }
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the `groups` field is not UTF-8"))?;
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect())
}

/// The `Content-Length` the client declared, if any.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Streams one `file` part to a `.part` file under `incoming` and renames it to
/// `dest` once complete; `total` counts the bytes of the whole upload against `max`.
/// Returns the file's size; on an error the `.part` file is removed.
async fn receive_file(
    field: &mut actix_multipart::Field,
    incoming: &Path,
    dest: &Path,
    total: &mut u64,
    max: u64,
    limit_message: &impl Fn() -> String,
) -> Result<u64, ApiError> {
    let part = incoming.join(format!("{}.part", uuid::Uuid::new_v4()));
    let mut file = std::fs::File::create(&part).map_err(store_error)?;
    let cleanup = |e: ApiError| {
        let _ = std::fs::remove_file(&part);
        e
    };
    let mut size: u64 = 0;
    loop {
        let chunk = match field.try_next().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(cleanup(multipart_error(e))),
        };
        size += chunk.len() as u64;
        *total += chunk.len() as u64;
        if *total > max {
            return Err(cleanup(ApiError::too_large(limit_message())));
        }
        file.write_all(&chunk)
            .map_err(|e| cleanup(store_error(e)))?;
    }
    file.sync_all().map_err(|e| cleanup(store_error(e)))?;
    drop(file);
    std::fs::rename(&part, dest).map_err(|e| cleanup(store_error(e)))?;
    Ok(size)
}

#[utoipa::path(delete, path = "/api/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = Deleted), (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    asker: Principal,
    id: web::Path<String>,
) -> Result<web::Json<Deleted>, ApiError> {
    let id = id.into_inner();
    let job = state
        .uploads
        .lock()
        .get(&id)
        .filter(|j| asker.access.allows(&j.groups))
        .cloned();
    if let Some(job) = &job {
        if matches!(job.status, JobStatus::Indexing) {
            return Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "conflict",
                "the document is being indexed; delete it when that is done",
            ));
        }
    }
    let acknowledged = entry(&state, &asker.access, &id).ok();
    if job.is_none() && acknowledged.is_none() {
        return Err(ApiError::not_found(format!("no document with id `{id}`")));
    }
    state.uploads.lock().remove(&id);
    state.audit.record(
        "delete",
        Some(&asker.user.name),
        serde_json::json!({ "document": id }),
    );
    if let Some(e) = acknowledged {
        let engine = Arc::clone(&state.engine);
        let doc = id.clone();
        web::block(move || -> crate::Result<()> { engine.remove_document(&doc) }).await??;
        if state.uploads.is_upload(&e.source) {
            let _ = std::fs::remove_file(&e.source);
        }
    } else if let Some(job) = job {
        let _ = std::fs::remove_file(&job.staged);
    }
    Ok(web::Json(Deleted { deleted: id }))
}

/// `PATCH /api/documents/{id}` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct GroupsChange {
    /// The document's new access groups (an empty list: administrators only).
    pub groups: Vec<String>,
}

#[utoipa::path(patch, path = "/api/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")), request_body = GroupsChange,
    responses((status = 200, body = DocumentView), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn set_groups(
    state: web::Data<AppState>,
    admin: Principal,
    id: web::Path<String>,
    body: web::Json<GroupsChange>,
) -> Result<web::Json<DocumentView>, ApiError> {
    let id = id.into_inner();
    let groups = body.into_inner().groups;
    let before = entry(&state, &admin.access, &id)?.groups;
    let engine = Arc::clone(&state.engine);
    let (doc, new) = (id.clone(), groups.clone());
    web::block(move || engine.set_document_groups(&doc, &new)).await??;
    state.audit.record(
        "document_groups",
        Some(&admin.user.name),
        serde_json::json!({ "document": id, "from": before, "to": groups }),
    );
    Ok(web::Json(find_document(&state, &admin.access, &id)?))
}

/// Content type and disposition of a served original: only PDFs are shown inline (to
/// pdf.js); everything else is plain text or a download, never a page of this origin.
fn source_type(format: Format) -> (&'static str, bool) {
    match format {
        Format::Pdf => ("application/pdf", true),
        Format::Docx => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            false,
        ),
        Format::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            false,
        ),
        Format::Pptx => (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            false,
        ),
        Format::Html | Format::Markdown | Format::Text | Format::Csv | Format::Eml => {
            ("text/plain; charset=utf-8", true)
        }
    }
}

#[utoipa::path(get, path = "/api/documents/{id}/source", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, description = "the original file"),
              (status = 404, body = super::error::ErrorBody)))]
pub async fn source(
    state: web::Data<AppState>,
    asker: Principal,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let e = entry(&state, &asker.access, &id)?;
    state.audit.record(
        "document_opened",
        Some(&asker.user.name),
        serde_json::json!({ "document": id.as_str(), "view": "source" }),
    );
    let engine = Arc::clone(&state.engine);
    let acknowledged = e.clone();
    let bytes = web::block(move || engine.original(&acknowledged)).await??;
    let (content_type, inline) = source_type(e.format);
    let file_name = Path::new(&e.rel_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    let disposition = header::ContentDisposition {
        disposition: if inline {
            header::DispositionType::Inline
        } else {
            header::DispositionType::Attachment
        },
        parameters: disposition_names(&file_name),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(disposition)
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes))
}

#[utoipa::path(get, path = "/api/documents/{id}/text", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = DocumentText), (status = 404, body = super::error::ErrorBody)))]
pub async fn text(
    state: web::Data<AppState>,
    asker: Principal,
    id: web::Path<String>,
) -> Result<web::Json<DocumentText>, ApiError> {
    let e = entry(&state, &asker.access, &id)?;
    state.audit.record(
        "document_opened",
        Some(&asker.user.name),
        serde_json::json!({ "document": id.as_str(), "view": "text" }),
    );
    let engine = Arc::clone(&state.engine);
    let doc = id.clone();
    let stored = web::block(move || engine.document_text(&doc))
        .await??
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the text of `{}` was not stored when it was indexed (by an older Tanya): \
                 ingest its folder again",
                e.rel_path
            ))
        })?;
    let pages = stored
        .pages
        .into_iter()
        .map(|(page, char_start, char_end)| PageSpan {
            page,
            char_start,
            char_end,
        })
        .collect();
    Ok(web::Json(DocumentText {
        id: id.into_inner(),
        title: e.title,
        format: e.format.as_str().to_string(),
        text: stored.text,
        pages,
    }))
}

/// The file name of a served original, for `Content-Disposition`: plain ASCII (anything
/// else, control characters included, becomes `_`) and the exact name UTF-8-encoded
/// (RFC 6266), so that no name can break the header.
fn disposition_names(name: &str) -> Vec<header::DispositionParam> {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    vec![
        header::DispositionParam::Filename(ascii),
        header::DispositionParam::FilenameExt(header::ExtendedValue {
            charset: header::Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: name.as_bytes().to_vec(),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("a.pdf").as_deref(), Some("a.pdf"));
        assert_eq!(
            sanitize_name("../../etc/passwd.txt").as_deref(),
            Some("passwd.txt")
        );
        assert_eq!(sanitize_name("C:\\x\\evil.md").as_deref(), Some("evil.md"));
        assert_eq!(sanitize_name("..hidden.txt").as_deref(), Some("hidden.txt"));
        assert_eq!(
            sanitize_name("a\u{0}b\nc.txt").as_deref(),
            Some("a_b_c.txt")
        );
        assert_eq!(
            sanitize_name("polisi cuti.pdf").as_deref(),
            Some("polisi cuti.pdf")
        );
        assert!(sanitize_name("..").is_none());
        assert!(sanitize_name("/").is_none());
        let long = format!("{}.pdf", "é".repeat(200));
        let s = sanitize_name(&long).unwrap();
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".pdf"), "{s}");
    }
}
