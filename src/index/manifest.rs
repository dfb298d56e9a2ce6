//! The manifest: which version of which document is acknowledged (searchable), and which
//! embedder built the index. It is the commit point of ingestion: a document counts as
//! ingested only once its entry is in a manifest written atomically (temp file, fsync,
//! rename, fsync of the directory) after both stores were flushed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tanya_ingest::{Format, Lang};

use crate::error::{Error, Result};

pub const MANIFEST_FILE: &str = "manifest.json";
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

    /// Loads `dir/manifest.json`, or `None` when there is none yet.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Io {
            context: format!("{} is damaged", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        if m.format_version != FORMAT_VERSION {
            return Err(Error::Config(format!(
                "{} has format version {}, this Tanya reads {FORMAT_VERSION}",
                path.display(),
                m.format_version
            )));
        }
        Ok(Some(m))
    }

    /// Writes `dir/manifest.json` atomically and durably.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        write_atomic(&dir.join(MANIFEST_FILE), &bytes)
    }

    /// Whether a search hit belongs to the acknowledged version of its document.
    pub fn is_current(&self, doc_id: &str, version: &str) -> bool {
        self.documents
            .get(doc_id)
            .is_some_and(|d| d.version == version)
    }
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
}
