//! The manifest: which version of which document is acknowledged (searchable), and which
//! embedder built the index. It is the commit point of ingestion: a document counts as
//! ingested only once its entry is durably recorded after both stores were flushed.
//!
//! On disk it is a snapshot, `manifest.json` (written atomically: temp file, fsync, rename,
//! fsync of the directory), and a log, `manifest.log`: one JSON line per recorded batch of
//! changes, appended and fsynced ([`Manifest::record`]). Rewriting the whole snapshot for
//! every batch grew with the square of the collection (21 MB per batch at 38,856
//! documents); an appended line costs what the batch holds. When the log outgrows the
//! snapshot (and 1 MiB), a new snapshot replaces both. Loading reads the snapshot and
//! replays the log; a torn last line (a crash during its append, so never acknowledged) is
//! ignored. Replaying a line twice changes nothing, so a crash between writing a new
//! snapshot and removing the log loses nothing either.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tanya_ingest::{Format, Lang};

use crate::error::{Error, Result};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_LOG: &str = "manifest.log";
/// The log is folded into a new snapshot when it grows past the snapshot and this.
const MIN_LOG_BYTES_TO_FOLD: u64 = 1 << 20;
const FORMAT_VERSION: u32 = 1;

/// One acknowledged document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentEntry {
    /// Canonical path of the source file.
    pub source: PathBuf,
    /// The ingest root it was found under (for detecting deletions).
    pub root: PathBuf,
    /// Path relative to the root, as shown in citations.
    pub rel_path: String,
    pub title: String,
    pub format: Format,
    pub lang: Lang,
    pub pages: Option<u32>,
    /// Content hash of the acknowledged version.
    pub version: String,
    pub chunks: u32,
    /// Pages whose text came from OCR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr_pages: Vec<u32>,
    pub groups: Vec<String>,
    /// The collection it was put in (see [`crate::index::passage::Passage::collection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub ingested_at: u64,
}

/// One recorded batch of changes: a line of the log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Change {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    put: BTreeMap<String, DocumentEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    remove: Vec<String>,
}

/// The set of acknowledged documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Identity of the embedder that built the vectors ("name/dimension").
    pub embedder: String,
    pub documents: BTreeMap<String, DocumentEntry>,
}

impl Manifest {
    pub fn new(embedder: &str) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            embedder: embedder.to_string(),
            documents: BTreeMap::new(),
        }
    }

    /// Loads `dir/manifest.json` with `dir/manifest.log` replayed over it, or `None` when
    /// there is no manifest yet.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let damaged = |path: &Path, e: serde_json::Error| Error::Io {
            context: format!("{} is damaged", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        };
        let mut m: Manifest = serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e))?;
        if m.format_version != FORMAT_VERSION {
            return Err(Error::Config(format!(
                "{} has format version {}, this Tanya reads {FORMAT_VERSION}",
                path.display(),
                m.format_version
            )));
        }
        let log = dir.join(MANIFEST_LOG);
        let text = match std::fs::read(&log) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(m)),
            Err(e) => return Err(Error::io(format!("reading {}", log.display()), e)),
        };
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        for (n, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Change>(line) {
                Ok(change) => m.apply(change),
                // The last line without its newline: its append never finished, so its
                // batch was never acknowledged.
                Err(_) if n + 1 == lines.len() => {
                    tracing::warn!("ignoring the torn last line of {}", log.display());
                }
                Err(e) => return Err(damaged(&log, e)),
            }
        }
        Ok(Some(m))
    }

    /// Writes `dir/manifest.json` atomically and durably, then removes the log it holds.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        write_atomic(&dir.join(MANIFEST_FILE), &bytes)?;
        let log = dir.join(MANIFEST_LOG);
        match std::fs::remove_file(&log) {
            Ok(()) => sync_dir(dir, &log),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", log.display()), e)),
        }
    }

    /// Records durably that the documents of `put` are acknowledged as given and those of
    /// `remove` are not, then applies it. Returns only once the change is on disk: one
    /// line appended to the log and fsynced (or, before any snapshot exists, the first
    /// snapshot). Nothing is applied when writing fails.
    pub fn record(
        &mut self,
        dir: &Path,
        put: Vec<(String, DocumentEntry)>,
        remove: Vec<String>,
    ) -> Result<()> {
        let change = Change {
            put: put.into_iter().collect(),
            remove,
        };
        let snapshot = dir.join(MANIFEST_FILE);
        let Ok(snapshot_bytes) = std::fs::metadata(&snapshot).map(|m| m.len()) else {
            let mut next = self.clone();
            next.apply(change);
            next.save(dir)?;
            *self = next;
            return Ok(());
        };
        let log = dir.join(MANIFEST_LOG);
        let io = |what: &str, e| Error::io(format!("{what} {}", log.display()), e);
        let mut line = serde_json::to_vec(&change).expect("a change serialises");
        line.push(b'\n');
        let created = !log.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(|e| io("opening", e))?;
        file.write_all(&line).map_err(|e| io("appending to", e))?;
        file.sync_data().map_err(|e| io("syncing", e))?;
        if created {
            sync_dir(dir, &log)?;
        }
        self.apply(change);
        let log_bytes = file
            .metadata()
            .map_err(|e| io("reading the size of", e))?
            .len();
        if log_bytes > MIN_LOG_BYTES_TO_FOLD.max(snapshot_bytes) {
            self.save(dir)?;
        }
        Ok(())
    }

    /// Applies acknowledged changes recorded elsewhere (the shared records): entries to
    /// put, documents to forget.
    pub(crate) fn apply_changes(&mut self, put: Vec<(String, DocumentEntry)>, remove: Vec<String>) {
        self.apply(Change {
            put: put.into_iter().collect(),
            remove,
        });
    }

    /// Applies rows of the shared records: `(doc_id, entry as JSON, or None: removed)`.
    pub(crate) fn apply_rows(&mut self, rows: Vec<(String, Option<String>)>) -> Result<()> {
        for (doc_id, entry) in rows {
            match entry {
                Some(json) => {
                    let entry: DocumentEntry =
                        serde_json::from_str(&json).map_err(|e| Error::Shared {
                            context: format!("the shared record of document {doc_id} is damaged"),
                            source: Some(Box::new(e)),
                        })?;
                    self.documents.insert(doc_id, entry);
                }
                None => {
                    self.documents.remove(&doc_id);
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, change: Change) {
        self.documents.extend(change.put);
        for id in change.remove {
            self.documents.remove(&id);
        }
    }

    /// Whether a search hit belongs to the acknowledged version of its document.
    pub fn is_current(&self, doc_id: &str, version: &str) -> bool {
        self.documents
            .get(doc_id)
            .is_some_and(|d| d.version == version)
    }
}

/// Makes a created or removed `file`'s entry in `dir` durable.
fn sync_dir(dir: &Path, file: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing the directory of {}", file.display()), e))
}

/// Temp file in the same directory, fsync, rename over `path`, fsync the directory: a
/// crash leaves either the old or the new file, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| io("creating temp file for", e))?;
    tmp.write_all(bytes).map_err(|e| io("writing", e))?;
    tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
    tmp.persist(path).map_err(|e| io("replacing", e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of", e))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PDF document entry (version "abc", 3 pages, 4 chunks) in `lang`, seen by `group`.
    pub(crate) fn sample_entry(lang: Lang, group: &str) -> DocumentEntry {
        DocumentEntry {
            source: "/x/a.pdf".into(),
            root: "/x".into(),
            rel_path: "a.pdf".into(),
            title: "A".into(),
            format: Format::Pdf,
            lang,
            pages: Some(3),
            version: "abc".into(),
            chunks: 4,
            ocr_pages: Vec::new(),
            groups: vec![group.into()],
            collection: None,
            size: 10,
            ingested_at: 1,
        }
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Manifest::load(dir.path()).unwrap().is_none());
        let mut m = Manifest::new("e5/384");
        m.documents
            .insert("d1".into(), sample_entry(Lang::Ms, "public"));
        m.save(dir.path()).unwrap();
        m.save(dir.path()).unwrap();
        let back = Manifest::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, m);
        assert!(back.is_current("d1", "abc"));
        assert!(!back.is_current("d1", "old"));
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp files left behind");

        std::fs::write(dir.path().join(MANIFEST_FILE), b"{ torn").unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }

    #[test]
    fn changes_are_appended_replayed_and_folded_into_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(MANIFEST_LOG);
        let entry = |v: &str| DocumentEntry {
            version: v.into(),
            ..sample_entry(Lang::En, "public")
        };
        let mut m = Manifest::new("e5/384");
        // The first change writes the first snapshot.
        m.record(dir.path(), vec![("d1".into(), entry("v1"))], vec![])
            .unwrap();
        assert!(!log.exists());
        let snapshot = std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap();
        // Later ones are appended: the snapshot stays as it was.
        m.record(dir.path(), vec![("d2".into(), entry("v1"))], vec![])
            .unwrap();
        m.record(
            dir.path(),
            vec![("d1".into(), entry("v2"))],
            vec!["d2".into()],
        )
        .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap(),
            snapshot
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
        let back = Manifest::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, m);
        assert!(back.is_current("d1", "v2") && !back.documents.contains_key("d2"));
        // A torn last line (a crash during its append) was never acknowledged.
        let valid = std::fs::read(&log).unwrap();
        let mut torn = valid.clone();
        torn.extend_from_slice(br#"{"put":{"d3":{"source"#);
        std::fs::write(&log, &torn).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap().unwrap(), m);
        // A damaged line before the last is an error, not a guess.
        let mut bad = b"{ no\n".to_vec();
        bad.extend_from_slice(&torn);
        std::fs::write(&log, &bad).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        // Replayed twice (a crash between a new snapshot and removing the log): the same.
        std::fs::write(&log, [valid.clone(), valid].concat()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap().unwrap(), m);
        // Past the snapshot's size and 1 MiB, the log is folded into a new snapshot.
        for n in 0..3000 {
            m.record(dir.path(), vec![(format!("x{n}"), entry("v1"))], vec![])
                .unwrap();
        }
        assert!(
            std::fs::metadata(&log).map_or(0, |f| f.len())
                <= MIN_LOG_BYTES_TO_FOLD.max(
                    std::fs::metadata(dir.path().join(MANIFEST_FILE))
                        .unwrap()
                        .len()
                )
        );
        assert_eq!(Manifest::load(dir.path()).unwrap().unwrap(), m);
        // A saved snapshot holds everything: no log is left to replay.
        m.save(dir.path()).unwrap();
        assert!(!log.exists());
    }
}
