//! Ingestion: walk a folder, skip what is unchanged, parse and chunk on one thread while
//! the embedder keeps the cores busy on another, and commit each document to both stores
//! before acknowledging it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tanya_ingest::{ChunkerConfig, Document, ParseLimits, SourceFile};

use crate::config::{Config, SentenceVectors};
use crate::error::{Error, Result};
use crate::index::collection::{Collection, DocumentCommit};
use crate::index::manifest::DocumentEntry;
use crate::index::passage::{point_id, Passage};
use crate::index::texts::StoredText;
use crate::ingest::isolate::WorkerLimits;
use crate::models::embed::Embedder;

/// Options of one ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Access groups given to the documents this run adds.
    pub groups: Vec<String>,
    /// Whether documents indexed already under other groups are moved to `groups`. Without
    /// it they keep the groups they have (and the report says so): a document's audience
    /// changes only when someone asks for it.
    pub regroup: bool,
    /// Groups recorded outside the collection, by document id, consulted before the
    /// collection's own record: a reindex carries the old index's groups this way.
    pub recorded: std::collections::BTreeMap<String, Vec<String>>,
    /// The collection new documents are put in (`None`: none). A document indexed already
    /// keeps its own unless `regroup`.
    pub in_collection: Option<String>,
}

impl IngestOptions {
    /// New documents get `groups`; documents indexed already keep theirs.
    pub fn with_groups(groups: Vec<String>) -> Self {
        IngestOptions {
            groups,
            regroup: false,
            recorded: Default::default(),
            in_collection: None,
        }
    }
}

/// A document whose recorded groups differ from the run's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupChange {
    pub rel_path: String,
    /// The groups it had.
    pub from: Vec<String>,
    /// The groups the run asked for.
    pub to: Vec<String>,
}

/// A document that was (re)indexed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Indexed {
    pub rel_path: String,
    pub chunks: usize,
    pub seconds: f64,
    /// Pages whose text came from OCR (scanned PDF pages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr_pages: Vec<u32>,
}

/// A file that was not indexed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rejected {
    pub rel_path: String,
    /// Short machine code: unsupported, encrypted, too_large, parse_error, no_text, ...
    pub reason: String,
    pub message: String,
}

/// What an ingest run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestReport {
    pub files_seen: usize,
    pub indexed: Vec<Indexed>,
    pub unchanged: usize,
    pub rejected: Vec<Rejected>,
    pub removed: Vec<String>,
    /// Documents that kept their recorded groups although the run asked for others
    /// (no `regroup`).
    pub kept_groups: Vec<GroupChange>,
    /// Documents moved to the run's groups (`regroup`).
    pub regrouped: Vec<GroupChange>,
    pub chunks_embedded: usize,
    /// Texts run through the embedding model (chunks, and their sentences when those are
    /// embedded alone).
    pub texts_embedded: usize,
    pub elapsed_seconds: f64,
    pub embed_seconds: f64,
    /// Of `elapsed_seconds`, what reorganising the vector store for search took.
    #[serde(default)]
    pub optimize_seconds: f64,
    /// Peak resident memory of this process so far, in MiB (parse workers are separate
    /// processes with their own limits).
    pub peak_rss_mib: Option<f64>,
}

impl IngestReport {
    /// Chunks embedded per second of embedding time.
    pub fn chunks_per_second(&self) -> f64 {
        if self.embed_seconds > 0.0 {
            self.chunks_embedded as f64 / self.embed_seconds
        } else {
            0.0
        }
    }
}

/// Progress callbacks (the CLI draws a bar, the server will publish status).
pub trait IngestObserver: Sync {
    fn start(&self, _files: usize) {}
    fn file_done(&self, _rel_path: &str, _chunks_embedded: usize) {}
}

/// Observer that does nothing.
pub struct Quiet;
impl IngestObserver for Quiet {}

/// The vectors stored for one chunk: the chunk's own, then one per sentence (see
/// [`passage_sentences`]). A chunk then scores by its best vector (MaxSim): whole-chunk
/// context and single-sentence precision, which matters most when the question and the
/// document are in different languages (a 200-token chunk dilutes the one sentence that
/// answers). Sentences are embedded without their headings: measured, headings in front
/// cost two of 21 cross-language questions their top-3 document (docs/quality.md). How a
/// sentence's vector is made is `embedder.sentence_vectors`.
///
/// This is what the stored multivector holds, in order; the answerer embeds with it
/// when a chunk's vectors are missing.
pub fn embed_chunks(embedder: &Embedder, texts: &[&str]) -> Result<Vec<Vec<Vec<f32>>>> {
    let spans: Vec<Vec<std::ops::Range<usize>>> = texts
        .iter()
        .map(|t| {
            passage_sentences(t)
                .into_iter()
                .map(|s| s.start..s.end)
                .collect()
        })
        .collect();
    let items: Vec<(&str, &[std::ops::Range<usize>])> = texts
        .iter()
        .zip(&spans)
        .map(|(t, s)| (*t, s.as_slice()))
        .collect();
    embedder.embed_chunks(&items)
}

/// The sentences of a chunk that get their own vector, in stored order.
pub fn passage_sentences(text: &str) -> Vec<crate::text::sentences::Sentence> {
    crate::text::sentences::split_sentences(text)
        .into_iter()
        .filter(|s| crate::text::sentences::answerable_length(&s.text))
        .collect()
}

/// Embeds every chunk of `docs` in one call (the embedder batches them by length across
/// documents, so a corpus of small files fills batches as well as one large file).
/// Returns, per document, per chunk, its vectors in [`embed_chunks`] order.
fn embed_documents(embedder: &Embedder, docs: &[&Document]) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
    let flat: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.chunks.iter().map(|c| c.text.as_str()))
        .collect();
    let mut vectors = embed_chunks(embedder, &flat)?.into_iter();
    Ok(docs
        .iter()
        .map(|d| vectors.by_ref().take(d.chunks.len()).collect())
        .collect())
}

pub use tanya_ingest::doc_id_for;

/// The most a groups file may hold: a list of names, never a document.
const MAX_GROUPS_FILE_BYTES: u64 = 64 * 1024;

/// Reads the groups file ([`tanya_ingest::GROUPS_FILE`]) of each of `folders` (relative to
/// the canonical `root`), beneath the root only: a path that leaves it, or a symlink in
/// the file's place, is refused. A file that cannot be read or names an invalid group stops
/// the run before anything changes, naming the file and line: documents must never go to
/// an audience nobody meant.
fn folder_groups(root: &Path, folders: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    use std::io::Read;
    let mut out = BTreeMap::new();
    for folder in folders {
        let rel = if folder.is_empty() {
            tanya_ingest::GROUPS_FILE.to_string()
        } else {
            format!("{folder}/{}", tanya_ingest::GROUPS_FILE)
        };
        let bad = |why: String| Error::BadRequest(format!("{rel}: {why}"));
        let file = tanya_ingest::open::open_beneath(root, &root.join(&rel))
            .map_err(|e| bad(format!("cannot be read safely ({e})")))?;
        let mut text = String::new();
        file.take(MAX_GROUPS_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("cannot be read as UTF-8 text ({e})")))?;
        if text.len() as u64 > MAX_GROUPS_FILE_BYTES {
            return Err(bad(format!(
                "is larger than {} KiB; it should list group names, one per line",
                MAX_GROUPS_FILE_BYTES / 1024
            )));
        }
        out.insert(folder.clone(), parse_groups_file(&text).map_err(bad)?);
    }
    Ok(out)
}

/// The groups a groups file lists: one per line (or separated by commas), blank lines and
/// lines starting with `#` ignored, sorted and without duplicates.
fn parse_groups_file(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut groups = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for name in line.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if !crate::config::valid_group(name) {
                return Err(format!(
                    "line {}: `{name}` is not a valid group name (1 to 64 characters, no comma \
                     or control character)",
                    n + 1
                ));
            }
            groups.insert(name.to_string());
        }
    }
    if groups.is_empty() {
        return Err("lists no group: write one group name per line".into());
    }
    Ok(groups.into_iter().collect())
}

/// The groups of the groups file nearest above `rel_path` (its own folder first, the root
/// last), if any.
fn nearest_groups<'m>(
    from_files: &'m BTreeMap<String, Vec<String>>,
    rel_path: &str,
) -> Option<&'m [String]> {
    let mut folder = rel_path;
    loop {
        folder = match folder.rfind('/') {
            Some(i) => &folder[..i],
            None if folder.is_empty() => return None,
            None => "",
        };
        if let Some(groups) = from_files.get(folder) {
            return Some(groups);
        }
        if folder.is_empty() {
            return None;
        }
    }
}

struct Pending {
    file: SourceFile,
    canonical: PathBuf,
    doc_id: String,
    /// The groups it is indexed under: the run's, or the ones it has (see
    /// [`IngestOptions::regroup`]).
    groups: Vec<String>,
    /// Indexed already, unchanged, but its text was not stored (an index built before
    /// texts were): the text is stored, nothing is embedded again.
    text_only: bool,
}

enum Parsed {
    Ok(Box<(Pending, Document)>),
    Rejected(Rejected),
}

/// Parses one file in a worker, and each of its attachments (an email's) as a document
/// of its own, located as `email.eml#attachment.pdf`.
fn parse_with_attachments(
    p: Pending,
    limits: &ParseLimits,
    worker: &WorkerLimits,
    chunker: &ChunkerConfig,
    embedder: &Embedder,
    scratch: Option<&tempfile::TempDir>,
) -> Vec<Parsed> {
    let reject = |p: &Pending, reason: String, message: String| {
        Parsed::Rejected(Rejected {
            rel_path: p.file.rel_path.clone(),
            reason,
            message,
        })
    };
    let mut doc = match crate::ingest::isolate::read_and_parse(&p.file, limits, worker) {
        Ok((hash, parsed)) => {
            tanya_ingest::build_document(&p.file, hash, parsed, chunker, embedder)
        }
        Err(f) => return vec![reject(&p, f.reason, f.message)],
    };
    let attachments = std::mem::take(&mut doc.attachments);
    let mut out = Vec::with_capacity(1 + attachments.len());
    for a in attachments {
        let Some(dir) = scratch else { break };
        let path = dir.path().join(format!("{}-{}", out.len(), a.name));
        let child = Pending {
            file: SourceFile {
                root: dir.path().to_path_buf(),
                path: path.clone(),
                rel_path: format!("{}#{}", p.file.rel_path, a.name),
                size: a.bytes.len() as u64,
                format: a.format,
            },
            canonical: p.canonical.clone(),
            doc_id: doc_id_for(Path::new(&format!("{}#{}", p.canonical.display(), a.name))),
            groups: p.groups.clone(),
            text_only: p.text_only,
        };
        if let Err(e) = std::fs::write(&path, &a.bytes) {
            out.push(reject(
                &child,
                "io".into(),
                format!("cannot stage the attachment: {e}"),
            ));
            continue;
        }
        // One level only: an attachment's own attachments are not followed.
        match crate::ingest::isolate::read_and_parse(&child.file, limits, worker) {
            Ok((hash, parsed)) => {
                let mut d =
                    tanya_ingest::build_document(&child.file, hash, parsed, chunker, embedder);
                d.attachments.clear();
                if d.chunks.is_empty() {
                    out.push(reject(
                        &child,
                        "no_text".into(),
                        "no text could be extracted".into(),
                    ));
                } else {
                    out.push(Parsed::Ok(Box::new((child, d))));
                }
            }
            Err(f) => out.push(reject(&child, f.reason, f.message)),
        }
        let _ = std::fs::remove_file(&path);
    }
    let main = if doc.chunks.is_empty() {
        reject(&p, "no_text".into(), "no text could be extracted".into())
    } else {
        Parsed::Ok(Box::new((p, doc)))
    };
    out.insert(0, main);
    out
}

/// Peak resident set size of this process (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Drops pending files whose content is already indexed under another path.
fn dedupe(
    collection: &Collection,
    pending: Vec<Pending>,
    limits: &ParseLimits,
    report: &mut IngestReport,
) -> Result<Vec<Pending>> {
    // Content and audience: a copy for other groups is not a duplicate (its readers could
    // not see the other), and saying which document it copies would tell them it exists.
    type Key = (String, Vec<String>);
    let mut known: std::collections::HashMap<Key, (String, String)> = collection
        .manifest()
        .documents
        .iter()
        .filter(|(_, e)| e.source.exists())
        .map(|(id, e)| {
            let key = (e.version.clone(), e.groups.clone());
            (key, (id.clone(), e.rel_path.clone()))
        })
        .collect();
    let mut keep = Vec::with_capacity(pending.len());
    for p in pending {
        let Some(hash) = hash_of(&p.file, limits.max_file_bytes) else {
            keep.push(p); // the worker reports why it cannot be read
            continue;
        };
        let key = (hash, p.groups.clone());
        match known.get(&key) {
            Some((other, rel)) if *other != p.doc_id => {
                // An edit that made this file a copy of another: its old text is gone.
                collection.remove_document(&p.doc_id)?;
                report.rejected.push(Rejected {
                    rel_path: p.file.rel_path.clone(),
                    reason: "duplicate".into(),
                    message: format!("the same content as {rel}, which is indexed already"),
                });
            }
            _ => {
                known.insert(key, (p.doc_id.clone(), p.file.rel_path.clone()));
                keep.push(p);
            }
        }
    }
    Ok(keep)
}

/// The content hash of a listed file, read beneath its root; `None` when it cannot be read
/// (the parse worker then says why).
fn hash_of(file: &SourceFile, max: u64) -> Option<String> {
    let bytes = tanya_ingest::read_bounded(file, max).ok()?;
    Some(tanya_ingest::content_hash(&bytes))
}

/// Documents embedded together while more are ready (see [`ingest_path`]).
const GROUP_CHUNKS: usize = 16;

/// The passages (stored chunks) of `doc`, indexed as `doc_id`.
pub fn passages_of(doc_id: &str, doc: &Document, groups: &[String]) -> Vec<Passage> {
    doc.chunks
        .iter()
        .map(|c| Passage {
            point_id: point_id(doc_id, &doc.content_hash, c.ordinal),
            doc_id: doc_id.to_string(),
            version: doc.content_hash.clone(),
            ordinal: c.ordinal,
            rel_path: doc.rel_path.clone(),
            title: doc.title.clone(),
            page: c.page,
            heading_path: c.heading_path.clone(),
            char_start: c.char_start,
            char_end: c.char_end,
            text: c.text.clone(),
            lang: c.lang,
            groups: groups.to_vec(),
            collection: None,
        })
        .collect()
}

/// One ingest of one root: what it reads from and writes to, fixed for the run. The
/// parse thread borrows it while the embedding side fills a [`RunState`].
struct IngestRun<'a> {
    collection: &'a Collection,
    embedder: &'a Embedder,
    config: &'a Config,
    observer: &'a dyn IngestObserver,
    /// The canonical root.
    root: PathBuf,
    /// The run's access groups, sorted and without duplicates.
    groups: Vec<String>,
    /// See [`IngestOptions::regroup`].
    regroup: bool,
    /// See [`IngestOptions::in_collection`].
    in_collection: Option<String>,
    /// See [`IngestOptions::recorded`].
    recorded: &'a std::collections::BTreeMap<String, Vec<String>>,
    limits: ParseLimits,
    worker: WorkerLimits,
    chunker: ChunkerConfig,
}

/// What the index knows of a listed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Unchanged,
    /// Unchanged, but indexed before texts were stored.
    TextMissing,
    Changed,
}

/// What a run has done so far.
#[derive(Default)]
struct RunState {
    report: IngestReport,
    embed_time: Duration,
}

/// Ingests `root` (a file or a folder) into `collection`.
pub fn ingest_path(
    collection: &Collection,
    embedder: &Embedder,
    config: &Config,
    root: &Path,
    options: &IngestOptions,
    observer: &dyn IngestObserver,
) -> Result<IngestReport> {
    let started = Instant::now();
    let run = IngestRun::new(collection, embedder, config, root, options, observer)?;
    let mut state = RunState::default();
    let pending = run.plan(&mut state)?;
    observer.start(pending.len());
    run.parse_and_commit(pending, &mut state)?;
    collection.finish()?;
    let mut report = state.report;
    if report.chunks_embedded > 0 || !report.removed.is_empty() {
        // Merge the run's segments and build the search graph of those past the store's
        // indexing threshold (measured at 100k chunks: search p50 56 → 25 ms; 2 minutes
        // to build, 9 s at 10k; nothing to do for a small index). Acknowledged documents
        // are searchable throughout.
        let t = Instant::now();
        collection.optimize()?;
        report.optimize_seconds = t.elapsed().as_secs_f64();
    }
    report.embed_seconds = state.embed_time.as_secs_f64();
    report.peak_rss_mib = peak_rss_mib();
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report.rejected.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(report)
}

impl<'a> IngestRun<'a> {
    fn new(
        collection: &'a Collection,
        embedder: &'a Embedder,
        config: &'a Config,
        root: &Path,
        options: &'a IngestOptions,
        observer: &'a dyn IngestObserver,
    ) -> Result<Self> {
        if !root.exists() {
            return Err(Error::PathNotFound(root.to_path_buf()));
        }
        let root = root
            .canonicalize()
            .map_err(|e| Error::io(format!("resolving {}", root.display()), e))?;
        let groups: BTreeSet<String> = options.groups.iter().cloned().collect();
        Ok(IngestRun {
            collection,
            embedder,
            config,
            observer,
            root,
            groups: groups.into_iter().collect(),
            regroup: options.regroup,
            in_collection: options.in_collection.clone(),
            recorded: &options.recorded,
            limits: ParseLimits {
                max_file_bytes: config.ingest.max_file_mb * 1024 * 1024,
                ..ParseLimits::default()
            },
            worker: WorkerLimits::of(&config.ingest),
            chunker: config.chunker(),
        })
    }

    /// Walks the root and decides what needs work: unchanged content and groups cost
    /// nothing, files that disappeared leave the index, duplicates are reported.
    fn plan(&self, state: &mut RunState) -> Result<Vec<Pending>> {
        let walk_opts = tanya_ingest::WalkOptions {
            max_file_bytes: self.limits.max_file_bytes,
            ..tanya_ingest::WalkOptions::default()
        };
        let walk = tanya_ingest::walk(&self.root, &walk_opts).map_err(|e| match e {
            tanya_ingest::WalkError::NotFound(p) => Error::PathNotFound(p),
            other => Error::BadRequest(other.to_string()),
        })?;
        let report = &mut state.report;
        report.files_seen = walk.files.len() + walk.skipped.len();
        for s in &walk.skipped {
            report.rejected.push(Rejected {
                rel_path: s.rel_path.clone(),
                reason: s.reason.as_str().to_string(),
                message: s.message.clone(),
            });
        }
        if let Some(link) = walk
            .skipped
            .iter()
            .find(|s| s.rel_path.rsplit('/').next() == Some(tanya_ingest::GROUPS_FILE))
        {
            return Err(Error::BadRequest(format!(
                "{}: a groups file must be a regular file in its folder, not a link or \
                 anything else ({})",
                link.rel_path, link.message
            )));
        }
        let from_files = folder_groups(&self.root, &walk.group_folders)?;
        let mut pending = Vec::new();
        let mut present: HashSet<String> = HashSet::new();
        let mut present_sources: HashSet<PathBuf> = HashSet::new();
        for file in walk.files {
            let canonical = file
                .path
                .canonicalize()
                .unwrap_or_else(|_| file.path.clone());
            let doc_id = doc_id_for(&canonical);
            present.insert(doc_id.clone());
            present_sources.insert(canonical.clone());
            let wanted = nearest_groups(&from_files, &file.rel_path).unwrap_or(&self.groups);
            let groups = self.groups_for(&doc_id, &file.rel_path, wanted, report);
            let known = self.known(&doc_id, &file, &groups);
            if known == Known::Unchanged {
                report.unchanged += 1;
            } else {
                pending.push(Pending {
                    file,
                    canonical,
                    doc_id,
                    groups,
                    text_only: known == Known::TextMissing,
                });
            }
        }
        // Skipped files are still there: a previously indexed version stays.
        for s in &walk.skipped {
            let p = self.root.join(&s.rel_path);
            let canonical = p.canonicalize().unwrap_or(p);
            present.insert(doc_id_for(&canonical));
            present_sources.insert(canonical);
        }
        self.remove_gone(&present, &present_sources, report)?;
        // Identical content is indexed once: a file whose bytes equal an indexed document
        // that still exists (or an earlier file of this run) is reported as a duplicate.
        // Renames are not duplicates: the old path was removed just above.
        dedupe(self.collection, pending, &self.limits, report)
    }

    /// The groups `doc_id` is indexed under in this run: `wanted` (the run's, or its
    /// folder's groups file's) for a new document or with `regroup`; otherwise the ones it
    /// has, and a document whose groups the run would have changed is reported (and logged)
    /// either way.
    fn groups_for(
        &self,
        doc_id: &str,
        rel_path: &str,
        wanted: &[String],
        report: &mut IngestReport,
    ) -> Vec<String> {
        let recorded = match self.recorded.get(doc_id) {
            Some(groups) => Some(groups.clone()),
            None => self
                .collection
                .manifest()
                .documents
                .get(doc_id)
                .map(|e| e.groups.clone()),
        };
        let recorded = match recorded {
            Some(groups) if groups != wanted => groups,
            _ => return wanted.to_vec(),
        };
        let change = GroupChange {
            rel_path: rel_path.to_string(),
            from: recorded.clone(),
            to: wanted.to_vec(),
        };
        if self.regroup {
            tracing::warn!(file = rel_path, from = ?change.from, to = ?change.to, "moving a document to other access groups");
            report.regrouped.push(change);
            wanted.to_vec()
        } else {
            tracing::warn!(file = rel_path, kept = ?change.from, asked = ?change.to, "a document keeps its access groups (regroup to change them)");
            report.kept_groups.push(change);
            recorded
        }
    }

    /// Whether `file` is indexed already with the same content and `groups`, and its text
    /// stored.
    fn known(&self, doc_id: &str, file: &SourceFile, groups: &[String]) -> Known {
        let version = match self.collection.manifest().documents.get(doc_id) {
            Some(entry) if entry.groups == groups && entry.size == file.size => {
                entry.version.clone()
            }
            _ => return Known::Changed,
        };
        if hash_of(file, u64::MAX).is_none_or(|hash| hash != version) {
            Known::Changed
        } else if self.collection.has_text(doc_id, &version) {
            Known::Unchanged
        } else {
            Known::TextMissing
        }
    }

    /// Removes the documents of this root whose files disappeared.
    fn remove_gone(
        &self,
        present: &HashSet<String>,
        present_sources: &HashSet<PathBuf>,
        report: &mut IngestReport,
    ) -> Result<()> {
        let gone: Vec<(String, String)> = self
            .collection
            .manifest()
            .documents
            .iter()
            // An email's attachments live as long as the email (their source).
            .filter(|(id, e)| {
                e.root == self.root
                    && !present.contains(*id)
                    && !present_sources.contains(&e.source)
            })
            .map(|(id, e)| (id.clone(), e.rel_path.clone()))
            .collect();
        for (doc_id, rel_path) in gone {
            self.collection.remove_document(&doc_id)?;
            report.removed.push(rel_path);
        }
        Ok(())
    }

    /// Three stages at once: parsing on one thread (worker processes), embedding on this
    /// one, and committing on a third, so the embedder never waits for a parser or for
    /// the disk. Each embedded group is committed as one batch (one durable write of each
    /// store and of the manifest, see [`Collection::commit_documents`]); at most one
    /// group waits for its commit while the next is embedded.
    fn parse_and_commit(&self, pending: Vec<Pending>, state: &mut RunState) -> Result<()> {
        std::thread::scope(|scope| {
            let (tx, rx) = crossbeam_channel::bounded::<Parsed>(GROUP_CHUNKS);
            scope.spawn(move || {
                // Email attachments are written here for their own parse workers.
                let scratch = tempfile::tempdir().ok();
                for p in pending {
                    let parsed = parse_with_attachments(
                        p,
                        &self.limits,
                        &self.worker,
                        &self.chunker,
                        self.embedder,
                        scratch.as_ref(),
                    );
                    for one in parsed {
                        if tx.send(one).is_err() {
                            return; // the embedder side stopped on an error
                        }
                    }
                }
            });
            let (to_commit, committing) = crossbeam_channel::bounded::<Vec<Prepared>>(1);
            let committer = scope.spawn(move || self.commit_batches(committing));
            let mut embedding = Ok(());
            while let Ok(first) = rx.recv() {
                let group = next_group(first, &rx);
                match self.embed_group(group, state) {
                    Ok(batch) if batch.is_empty() => {}
                    Ok(batch) => {
                        if to_commit.send(batch).is_err() {
                            break; // the committer stopped on an error: it says which
                        }
                    }
                    Err(e) => {
                        embedding = Err(e);
                        break;
                    }
                }
            }
            drop(rx);
            drop(to_commit);
            let (committed, commit_result) = committer
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            let report = &mut state.report;
            for done in committed {
                report.chunks_embedded += done.indexed.chunks;
                report.texts_embedded += done.texts;
                report.indexed.push(done.indexed);
            }
            commit_result.and(embedding)
        })
    }

    /// Embeds a group of parsed documents together; returns them ready to commit.
    fn embed_group(&self, group: Vec<Parsed>, state: &mut RunState) -> Result<Vec<Prepared>> {
        let mut docs: Vec<(Pending, Document)> = Vec::with_capacity(group.len());
        for parsed in group {
            match parsed {
                Parsed::Ok(b) => docs.push(*b),
                Parsed::Rejected(r) => {
                    self.observer.file_done(&r.rel_path, 0);
                    state.report.rejected.push(r);
                }
            }
        }
        // Indexed already as they are, without their text: store it, embed nothing.
        let (refresh, docs): (Vec<_>, Vec<_>) = docs.into_iter().partition(|(p, d)| {
            p.text_only
                && self
                    .collection
                    .manifest()
                    .documents
                    .get(&p.doc_id)
                    .is_some_and(|e| e.version == d.content_hash)
        });
        for (p, doc) in refresh {
            let text = StoredText {
                text: doc.full_text,
                pages: doc.page_spans,
            };
            self.collection
                .store_text(&p.doc_id, &doc.content_hash, &text)?;
            state.report.unchanged += 1;
            self.observer.file_done(&doc.rel_path, 0);
        }
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let refs: Vec<&Document> = docs.iter().map(|(_, d)| d).collect();
        let vectors = embed_documents(self.embedder, &refs)?;
        let embedded = t.elapsed();
        state.embed_time += embedded;
        let group_chunks: usize = docs.iter().map(|(_, d)| d.chunks.len()).sum();
        Ok(docs
            .into_iter()
            .zip(vectors)
            .map(|((p, doc), vectors)| {
                // This document's share of the group's embedding time.
                let share =
                    embedded.as_secs_f64() * doc.chunks.len() as f64 / group_chunks.max(1) as f64;
                self.prepare(p, doc, vectors, share)
            })
            .collect())
    }

    /// Commits each batch the embedder sends, until it stops or a commit fails. Returns
    /// what was committed, and the first error.
    fn commit_batches(
        &self,
        batches: crossbeam_channel::Receiver<Vec<Prepared>>,
    ) -> (Vec<Committed>, Result<()>) {
        let mut committed = Vec::new();
        for batch in batches {
            let t = Instant::now();
            let result = self
                .collection
                .check_free_space(self.config.ingest.min_free_disk_mb)
                .and_then(|()| {
                    self.collection.commit_documents(
                        batch
                            .iter()
                            .map(|d| DocumentCommit {
                                doc_id: &d.doc_id,
                                entry: d.entry.clone(),
                                items: &d.items,
                                text: &d.text,
                            })
                            .collect(),
                    )
                });
            if let Err(e) = result {
                return (committed, Err(e));
            }
            // The batch's commit time, shared by its documents.
            let each = t.elapsed().as_secs_f64() / batch.len() as f64;
            for d in batch {
                let mut indexed = d.indexed;
                indexed.seconds += each;
                self.observer.file_done(&indexed.rel_path, indexed.chunks);
                committed.push(Committed {
                    texts: d
                        .items
                        .iter()
                        .map(|(_, v)| match self.embedder.sentence_vectors() {
                            SentenceVectors::Alone => v.len(),
                            SentenceVectors::InContext => 1,
                        })
                        .sum(),
                    indexed,
                });
            }
        }
        (committed, Ok(()))
    }

    /// One embedded document, ready to commit.
    fn prepare(
        &self,
        p: Pending,
        doc: Document,
        vectors: Vec<Vec<Vec<f32>>>,
        embed_seconds: f64,
    ) -> Prepared {
        let in_collection = match self.collection.manifest().documents.get(&p.doc_id) {
            Some(e) if !self.regroup => e.collection.clone(),
            _ => self.in_collection.clone(),
        };
        let items: Vec<(Passage, Vec<Vec<f32>>)> = passages_of(&p.doc_id, &doc, &p.groups)
            .into_iter()
            .map(|mut passage| {
                passage.collection = in_collection.clone();
                passage
            })
            .zip(vectors)
            .collect();
        let entry = DocumentEntry {
            source: p.canonical.clone(),
            root: self.root.clone(),
            rel_path: doc.rel_path.clone(),
            title: doc.title.clone(),
            format: doc.format,
            lang: doc.lang,
            pages: doc.pages,
            version: doc.content_hash.clone(),
            chunks: items.len() as u32,
            ocr_pages: doc.ocr_pages.clone(),
            groups: p.groups.clone(),
            collection: in_collection,
            size: p.file.size,
            ingested_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        Prepared {
            doc_id: p.doc_id,
            entry,
            text: StoredText {
                text: doc.full_text,
                pages: doc.page_spans,
            },
            indexed: Indexed {
                rel_path: doc.rel_path,
                chunks: items.len(),
                seconds: embed_seconds,
                ocr_pages: doc.ocr_pages,
            },
            items,
        }
    }
}

/// An embedded document on its way to the committer.
struct Prepared {
    doc_id: String,
    entry: DocumentEntry,
    items: Vec<(Passage, Vec<Vec<f32>>)>,
    text: StoredText,
    indexed: Indexed,
}

/// A committed document, for the report.
struct Committed {
    indexed: Indexed,
    texts: usize,
}

/// `first` and the documents that are ready after it, up to [`GROUP_CHUNKS`] chunks:
/// documents that are ready are embedded together, so a folder of small files fills
/// batches.
fn next_group(first: Parsed, rx: &crossbeam_channel::Receiver<Parsed>) -> Vec<Parsed> {
    let mut group = vec![first];
    let mut chunks = 0;
    loop {
        if let Some(Parsed::Ok(b)) = group.last() {
            chunks += b.1.chunks.len();
        }
        if chunks >= GROUP_CHUNKS {
            return group;
        }
        match rx.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => return group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_file_lists_names_per_line_or_comma() {
        let text = "# who may read this folder\nHR\n\n  Kewangan , Awam\nHR\n";
        assert_eq!(
            parse_groups_file(text).unwrap(),
            ["Awam", "HR", "Kewangan"].map(String::from)
        );
        let err = parse_groups_file("HR\nbad\u{7}name\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse_groups_file("# nothing\n\n").is_err());
    }

    #[test]
    fn the_nearest_groups_file_wins() {
        let files: BTreeMap<String, Vec<String>> = [
            (String::new(), vec!["semua".to_string()]),
            ("hr".to_string(), vec!["HR".to_string()]),
            ("hr/gaji/sulit".to_string(), vec!["Gaji".to_string()]),
        ]
        .into();
        let of = |p: &str| nearest_groups(&files, p).map(|g| g[0].as_str());
        assert_eq!(of("a.md"), Some("semua"));
        assert_eq!(of("hr/cuti.md"), Some("HR"));
        assert_eq!(of("hr/gaji/jadual.md"), Some("HR"));
        assert_eq!(of("hr/gaji/sulit/x.pdf"), Some("Gaji"));
        assert_eq!(of("hrx/a.md"), Some("semua"));
        assert_eq!(nearest_groups(&BTreeMap::new(), "hr/a.md"), None);
    }
}
