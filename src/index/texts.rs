//! The extracted text of every acknowledged document version, kept at ingest so that the
//! source viewer never parses (or OCRs) a file inside the server: one JSON file per
//! document version, `<data_dir>/texts/<doc_id>.<version>.json`, written before the version
//! is acknowledged and removed after it is superseded or forgotten. With shared state
//! (`[shared] postgres`), the same JSON in the shared records instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::manifest::{write_atomic, Manifest};
use crate::shared::Records;

/// A document's text as the chunk offsets index into it (by `char`), with its pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredText {
    pub text: String,
    /// `(page, char_start, char_end)` of each page (PDF pages, PPTX slides); empty for
    /// formats without pages.
    pub pages: Vec<(u32, usize, usize)>,
}

/// The stored texts: a folder, or the shared records.
pub enum Texts {
    Dir(PathBuf),
    Shared(Records),
}

fn damaged(what: String, e: serde_json::Error) -> Error {
    Error::io(
        what,
        std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    )
}

impl Texts {
    pub fn open(data_dir: &Path) -> Result<Texts> {
        let dir = data_dir.join("texts");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Texts::Dir(dir))
    }

    /// The texts kept in the shared records.
    pub fn shared(records: Records) -> Texts {
        Texts::Shared(records)
    }

    fn path(dir: &Path, doc_id: &str, version: &str) -> PathBuf {
        dir.join(format!("{doc_id}.{version}.json"))
    }

    /// Stores the text of `doc_id` at `version` durably.
    pub fn put(&self, doc_id: &str, version: &str, text: &StoredText) -> Result<()> {
        let json = serde_json::to_string(text)
            .map_err(|e| damaged("serialising a document's text".into(), e))?;
        match self {
            Texts::Shared(records) => records.put_text(doc_id, version, &json),
            Texts::Dir(dir) => write_atomic(&Self::path(dir, doc_id, version), json.as_bytes()),
        }
    }

    /// The stored text of `doc_id` at `version`, if there is one.
    pub fn get(&self, doc_id: &str, version: &str) -> Result<Option<StoredText>> {
        let dir = match self {
            Texts::Shared(records) => {
                return match records.text(doc_id, version)? {
                    Some(json) => serde_json::from_str(&json)
                        .map(Some)
                        .map_err(|e| damaged(format!("reading the text of {doc_id}"), e)),
                    None => Ok(None),
                }
            }
            Texts::Dir(dir) => dir,
        };
        let path = Self::path(dir, doc_id, version);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| damaged(format!("reading {}", path.display()), e))
    }

    /// Whether the text of `doc_id` at `version` is stored.
    pub fn has(&self, doc_id: &str, version: &str) -> bool {
        match self {
            Texts::Shared(records) => records.has_text(doc_id, version).unwrap_or(false),
            Texts::Dir(dir) => Self::path(dir, doc_id, version).is_file(),
        }
    }

    /// Forgets the text of `doc_id` at `version` (nothing if it is not there).
    pub fn remove(&self, doc_id: &str, version: &str) {
        match self {
            Texts::Shared(records) => {
                if let Err(e) = records.remove_text(doc_id, version) {
                    tracing::warn!(error = %e.full_message(), "could not remove a superseded text");
                }
            }
            Texts::Dir(dir) => {
                let _ = std::fs::remove_file(Self::path(dir, doc_id, version));
            }
        }
    }

    /// Removes every stored text that is not of an acknowledged version (left by a run
    /// that stopped between storing a text and acknowledging its version). Returns how
    /// many.
    pub fn retain_acknowledged(&self, manifest: &Manifest) -> usize {
        let dir = match self {
            // The shared records know the acknowledged versions themselves.
            Texts::Shared(records) => return records.retain_acknowledged_texts().unwrap_or(0),
            Texts::Dir(dir) => dir,
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let acknowledged = name
                .strip_suffix(".json")
                .and_then(|stem| stem.split_once('.'))
                .is_some_and(|(id, version)| {
                    manifest
                        .documents
                        .get(id)
                        .is_some_and(|d| d.version == version)
                });
            if !acknowledged && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::manifest::tests::sample_entry;
    use tanya_ingest::Lang;

    #[test]
    fn stores_reads_and_forgets_texts_by_version() {
        let dir = tempfile::tempdir().unwrap();
        let texts = Texts::open(dir.path()).unwrap();
        let t = StoredText {
            text: "Cuti tahunan\n\n14 hari.".into(),
            pages: vec![(1, 0, 12), (2, 14, 22)],
        };
        assert_eq!(texts.get("d1", "v1").unwrap(), None);
        texts.put("d1", "v1", &t).unwrap();
        texts.put("d1", "v0", &t).unwrap();
        texts.put("gone", "v9", &t).unwrap();
        assert_eq!(texts.get("d1", "v1").unwrap(), Some(t.clone()));
        assert!(texts.has("d1", "v1"));
        // Only d1 at version "abc" is acknowledged.
        let mut m = Manifest::new("e/1");
        m.documents
            .insert("d1".into(), sample_entry(Lang::Ms, "public"));
        let abc = m.documents["d1"].version.clone();
        texts.put("d1", &abc, &t).unwrap();
        assert_eq!(texts.retain_acknowledged(&m), 3);
        assert!(texts.has("d1", &abc));
        assert!(!texts.has("d1", "v1") && !texts.has("gone", "v9"));
        texts.remove("d1", &abc);
        assert!(!texts.has("d1", &abc));
    }
}
