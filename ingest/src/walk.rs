//! Safe folder walking: lists the supported files under a root, in a deterministic order, and
//! says why every other entry was left out.
//!
//! Nothing outside the root is ever listed: symlinked folders are not followed at all, and a
//! symlinked file is listed only when its canonical target lies inside the canonical root.
//! Special files (FIFOs, sockets, devices) are never opened, so the walk cannot block on them.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detect::Format;

/// Options for [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkOptions {
    /// Files larger than this are skipped with [`SkipReason::TooLarge`]. Default 100 MiB.
    pub max_file_bytes: u64,
    /// Folders nested deeper than this below the root are skipped with [`SkipReason::TooDeep`].
    /// Default 64.
    pub max_depth: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            max_file_bytes: 100 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// One file to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// The canonical root it was listed under: reading it again never leaves this folder
    /// (see [`crate::open::open_beneath`]). For a single-file root, the file itself.
    pub root: PathBuf,
    /// Absolute path to read from (for a symlink, its canonical target), under `root`.
    pub path: PathBuf,
    /// `/`-separated path relative to the root given; for a single-file root, its file name.
    pub rel_path: String,
    /// Size in bytes when listed.
    pub size: u64,
    /// Format, by extension.
    pub format: Format,
}

/// Why an entry was not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not one of the supported extensions.
    Unsupported,
    /// Larger than [`WalkOptions::max_file_bytes`].
    TooLarge,
    /// Name starts with `.`.
    Hidden,
    /// A symlink that is dangling, leads to a folder, or leads outside the root.
    Symlink,
    /// A FIFO, socket or device.
    Special,
    /// Could not be read (permissions, vanished during the walk).
    Unreadable,
    /// Nested deeper than [`WalkOptions::max_depth`].
    TooDeep,
}

impl SkipReason {
    /// A short machine code, the same as the serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Unsupported => "unsupported",
            SkipReason::TooLarge => "too_large",
            SkipReason::Hidden => "hidden",
            SkipReason::Symlink => "symlink",
            SkipReason::Special => "special",
            SkipReason::Unreadable => "unreadable",
            SkipReason::TooDeep => "too_deep",
        }
    }
}

/// An entry left out of the walk, with a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// `/`-separated path relative to the root.
    pub rel_path: String,
    /// Machine-readable reason.
    pub reason: SkipReason,
    /// Human-readable explanation.
    pub message: String,
}

/// The result of a walk: files to read and entries left out, both sorted by `rel_path`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walk {
    /// Supported files, sorted by `rel_path`.
    pub files: Vec<SourceFile>,
    /// Entries left out, sorted by `rel_path`.
    pub skipped: Vec<Skipped>,
    /// The folders below the root (`""` for the root itself) holding a regular file named
    /// [`GROUPS_FILE`], sorted. The file is not read here: reading it beneath the root is the
    /// caller's ([`crate::open::open_beneath`]).
    #[serde(default)]
    pub group_folders: Vec<String>,
}

/// The file that sets the access groups of the documents in its folder and below (the
/// nearest one above a document wins). A hidden file: it is never indexed itself.
pub const GROUPS_FILE: &str = ".tanya-groups";

/// Errors that stop a walk before it starts. Problems below the root become [`Skipped`] entries.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The root does not exist.
    #[error("{} does not exist: check the path and try again", .0.display())]
    NotFound(PathBuf),
    /// The root exists but could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The root.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Lists the supported files under `root` (a folder or a single file).
///
/// Hidden entries, special files, symlinked folders, symlinks leading outside the root, files
/// over the size limit and unsupported extensions are reported in [`Walk::skipped`]. An empty
/// folder gives an empty walk: the caller decides how to report it.
pub fn walk(root: &Path, opts: &WalkOptions) -> Result<Walk, WalkError> {
    let io_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            WalkError::NotFound(root.to_path_buf())
        } else {
            WalkError::Io {
                path: root.to_path_buf(),
                source,
            }
        }
    };
    // The root itself may be a symlink: the user named it, so follow it.
    let meta = fs::metadata(root).map_err(io_err)?;
    let canonical_root = fs::canonicalize(root).map_err(io_err)?;
    let mut out = Walk::default();

    if !meta.is_dir() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| canonical_root.to_string_lossy().into_owned());
        let target = canonical_root.clone();
        consider_file(&mut out, &canonical_root, name, target, &meta, opts);
        return Ok(out);
    }

    // The root must be listable; below it, unreadable folders are only skipped.
    let root_entries = fs::read_dir(&canonical_root).map_err(io_err)?;
    let walker = Walker {
        root: &canonical_root,
        opts,
    };
    let mut stack: Vec<Pending> =
        vec![(canonical_root.clone(), String::new(), 0, Some(root_entries))];
    while let Some(folder) = stack.pop() {
        walker.folder(&mut out, folder, &mut stack);
    }
    out.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    out.skipped.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    out.group_folders.sort();
    Ok(out)
}

type Pending = (PathBuf, String, usize, Option<fs::ReadDir>);

struct Walker<'a> {
    root: &'a Path,
    opts: &'a WalkOptions,
}

impl Walker<'_> {
    /// Lists one folder, reading it now unless it was read already: its entries go to
    /// `out`, and its subfolders onto `stack`.
    fn folder(
        &self,
        out: &mut Walk,
        (dir, rel, depth, entries): Pending,
        stack: &mut Vec<Pending>,
    ) {
        let entries = match entries {
            Some(e) => e,
            None => match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    out.skipped.push(skip(
                        rel,
                        SkipReason::Unreadable,
                        format!("cannot read this folder: {e}"),
                    ));
                    return;
                }
            },
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.skipped.push(skip(
                        rel.clone(),
                        SkipReason::Unreadable,
                        format!("cannot list this folder completely: {e}"),
                    ));
                    break;
                }
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if name == GROUPS_FILE
                && entry.file_type().is_ok_and(|t| t.is_file())
                && depth <= self.opts.max_depth
            {
                out.group_folders.push(rel.clone());
                continue;
            }
            if name.starts_with('.') {
                out.skipped.push(skip(
                    child_rel,
                    SkipReason::Hidden,
                    "hidden files and folders are not read".into(),
                ));
                continue;
            }
            if let Some(child) = self.entry(out, &entry, child_rel, depth) {
                stack.push(child);
            }
        }
    }

    /// Handles one directory entry; returns a folder to descend into.
    fn entry(
        &self,
        out: &mut Walk,
        entry: &fs::DirEntry,
        rel: String,
        depth: usize,
    ) -> Option<Pending> {
        let path = entry.path();
        // symlink_metadata: never follows the entry itself.
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                out.skipped.push(skip(
                    rel,
                    SkipReason::Unreadable,
                    format!("cannot read this entry: {e}"),
                ));
                return None;
            }
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            if depth + 1 > self.opts.max_depth {
                out.skipped.push(skip(
                    rel,
                    SkipReason::TooDeep,
                    format!(
                        "folders nested more than {} levels deep are not read",
                        self.opts.max_depth
                    ),
                ));
                return None;
            }
            return Some((path, rel, depth + 1, None));
        }
        if ft.is_symlink() {
            let target = match fs::canonicalize(&path) {
                Ok(t) => t,
                Err(_) => {
                    out.skipped.push(skip(
                        rel,
                        SkipReason::Symlink,
                        "this link points to something that does not exist".into(),
                    ));
                    return None;
                }
            };
            if !target.starts_with(self.root) {
                out.skipped.push(skip(
                    rel,
                    SkipReason::Symlink,
                    "this link points outside the folder being read".into(),
                ));
                return None;
            }
            let target_meta = match fs::metadata(&target) {
                Ok(m) => m,
                Err(e) => {
                    out.skipped.push(skip(
                        rel,
                        SkipReason::Unreadable,
                        format!("cannot read the target of this link: {e}"),
                    ));
                    return None;
                }
            };
            if target_meta.is_dir() {
                out.skipped.push(skip(
                    rel,
                    SkipReason::Symlink,
                    "links to folders are not followed".into(),
                ));
                return None;
            }
            consider_file(out, self.root, rel, target, &target_meta, self.opts);
            return None;
        }
        consider_file(out, self.root, rel, path, &meta, self.opts);
        None
    }
}

/// Lists or skips one non-folder entry whose metadata (not following links) is `meta`.
fn consider_file(
    out: &mut Walk,
    root: &Path,
    rel: String,
    path: PathBuf,
    meta: &fs::Metadata,
    opts: &WalkOptions,
) {
    if !meta.is_file() {
        out.skipped.push(skip(
            rel,
            SkipReason::Special,
            "not a regular file (a pipe, socket or device)".into(),
        ));
        return;
    }
    let Some(format) = Format::from_path(Path::new(&rel)) else {
        out.skipped.push(skip(
            rel,
            SkipReason::Unsupported,
            "unsupported file type (Tanya reads PDF, DOCX, XLSX, PPTX, CSV, email, HTML, Markdown and text files)".into(),
        ));
        return;
    };
    let size = meta.len();
    if size > opts.max_file_bytes {
        out.skipped.push(skip(
            rel,
            SkipReason::TooLarge,
            format!(
                "the file is {} but the limit is {}",
                human_bytes(size),
                human_bytes(opts.max_file_bytes)
            ),
        ));
        return;
    }
    out.files.push(SourceFile {
        root: root.to_path_buf(),
        path,
        rel_path: rel,
        size,
        format,
    });
}

fn skip(rel_path: String, reason: SkipReason, message: String) -> Skipped {
    Skipped {
        rel_path,
        reason,
        message,
    }
}

/// `1536` → `"1.5 KiB"`: sizes in messages people read.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 * 1024 * 1024), "100.0 MiB");
    }

    #[test]
    fn walks_a_folder_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("b/c/z.md"), "# Z").unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        fs::write(root.join("b/y.PDF"), "%PDF-").unwrap();
        fs::write(root.join("b/notes.rtf"), "x").unwrap();
        fs::write(root.join(".hidden.md"), "x").unwrap();
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".git/HEAD.txt"), "x").unwrap();
        let w = walk(root, &WalkOptions::default()).unwrap();
        let rels: Vec<_> = w.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(rels, ["a.txt", "b/c/z.md", "b/y.PDF"]);
        assert!(w.files.iter().all(|f| f.path.is_absolute()));
        assert_eq!(w.files[2].format, Format::Pdf);
        let skipped: Vec<_> = w
            .skipped
            .iter()
            .map(|s| (s.rel_path.as_str(), s.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                (".git", SkipReason::Hidden),
                (".hidden.md", SkipReason::Hidden),
                ("b/notes.rtf", SkipReason::Unsupported)
            ]
        );
    }

    #[test]
    fn groups_files_are_listed_not_indexed_and_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("hr/cuti")).unwrap();
        fs::create_dir_all(root.join("kewangan")).unwrap();
        fs::write(root.join(GROUPS_FILE), "semua").unwrap();
        fs::write(root.join("hr").join(GROUPS_FILE), "HR").unwrap();
        fs::write(root.join("hr/cuti/a.md"), "# A").unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("g"), "admin").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("g"),
            root.join("kewangan").join(GROUPS_FILE),
        )
        .unwrap();
        let w = walk(root, &WalkOptions::default()).unwrap();
        assert_eq!(w.group_folders, ["", "hr"]);
        assert_eq!(w.files.len(), 1);
        assert_eq!(w.skipped.len(), 1, "{:?}", w.skipped);
        assert_eq!(w.skipped[0].rel_path, "kewangan/.tanya-groups");
    }

    #[test]
    fn single_file_root_uses_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dasar.md");
        fs::write(&file, "# Dasar").unwrap();
        let w = walk(&file, &WalkOptions::default()).unwrap();
        assert_eq!(w.files.len(), 1);
        assert_eq!(w.files[0].rel_path, "dasar.md");
        assert_eq!(w.files[0].size, 7);
    }

    #[test]
    fn too_large_and_too_deep_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("big.txt"), vec![b'a'; 100]).unwrap();
        fs::create_dir_all(root.join("d1/d2")).unwrap();
        fs::write(root.join("d1/d2/deep.txt"), "x").unwrap();
        let opts = WalkOptions {
            max_file_bytes: 10,
            max_depth: 1,
        };
        let w = walk(root, &opts).unwrap();
        assert!(w.files.is_empty());
        let reasons: Vec<_> = w.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(reasons, [SkipReason::TooLarge, SkipReason::TooDeep]);
        assert!(w.skipped[0].message.contains("limit"));
    }

    #[test]
    fn missing_root_is_not_found() {
        let err = walk(
            Path::new("/no/such/folder/anywhere"),
            &WalkOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, WalkError::NotFound(_)));
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
