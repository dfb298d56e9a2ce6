//! The audit log: who did what, as JSON lines appended to `<data_dir>/audit/audit.jsonl`,
//! rotated at [`MAX_BYTES`] (the last [`KEEP`] files are kept as `audit.jsonl.1` … ).
//!
//! It records sign-ins and their failures, questions (by whom, and which passages they
//! were shown, by document and chunk), documents opened, uploads, deletions and changes
//! to people and tokens. It never records a password, a token or session secret, a
//! question's words or any document text: ids, names and counts only.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value};

/// The folder in the data directory.
pub const DIR: &str = "audit";
/// The current file's name.
pub const FILE: &str = "audit.jsonl";
/// Size at which the file is rotated.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Rotated files kept.
pub const KEEP: usize = 5;

pub struct Audit {
    path: PathBuf,
    file: Mutex<Option<File>>,
    max_bytes: u64,
}

impl Audit {
    /// Opens (creating) the audit log under `data_dir`.
    pub fn open(data_dir: &Path) -> crate::Result<Audit> {
        Self::with_limit(data_dir, MAX_BYTES)
    }

    fn with_limit(data_dir: &Path, max_bytes: u64) -> crate::Result<Audit> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::Error::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(FILE);
        let file = open_append(&path)
            .map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
        Ok(Audit {
            path,
            file: Mutex::new(Some(file)),
            max_bytes,
        })
    }

    /// Appends one event: `{"ts", "event", "user", …fields}`. A failure to write is logged
    /// and never fails the request.
    pub fn record(&self, event: &str, user: Option<&str>, fields: Value) {
        let mut line = json!({
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "event": event,
            "user": user,
        });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let mut text = line.to_string();
        text.push('\n');
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = self.append(&mut guard, text.as_bytes()) {
            tracing::error!(error = %e, "writing the audit log failed");
        }
    }

    fn append(&self, slot: &mut Option<File>, bytes: &[u8]) -> std::io::Result<()> {
        let len = slot
            .as_ref()
            .map(|f| f.metadata().map(|m| m.len()))
            .transpose()?
            .unwrap_or(0);
        if len + bytes.len() as u64 > self.max_bytes && len > 0 {
            *slot = None;
            rotate(&self.path)?;
        }
        if slot.is_none() {
            *slot = Some(open_append(&self.path)?);
        }
        let f = slot.as_mut().expect("opened above");
        f.write_all(bytes)?;
        f.sync_data()
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// `audit.jsonl` → `.1`, `.1` → `.2`, …; the oldest beyond [`KEEP`] is dropped.
fn rotate(path: &Path) -> std::io::Result<()> {
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
    let _ = std::fs::remove_file(numbered(KEEP));
    for n in (1..KEEP).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_and_the_file_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::with_limit(dir.path(), 400).unwrap();
        for i in 0..60 {
            audit.record(
                "search",
                Some("siti"),
                json!({ "shown": [format!("doc{i}#0")] }),
            );
        }
        let current = std::fs::read_to_string(dir.path().join(DIR).join(FILE)).unwrap();
        let first: Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
        assert_eq!(first["event"], "search");
        assert_eq!(first["user"], "siti");
        assert!(first["ts"].as_str().unwrap().ends_with('Z'));
        assert!(current.len() <= 400);
        let rotated: Vec<_> = (1..=KEEP + 1)
            .map(|n| dir.path().join(DIR).join(format!("{FILE}.{n}")))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(rotated.len(), KEEP, "{rotated:?}");
        // Nothing was lost but what rotated past the last kept file; the newest is last.
        assert!(current.contains("doc59#0"), "{current}");
    }
}
