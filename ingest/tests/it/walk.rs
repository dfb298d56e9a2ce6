//! Walking real folders: symlinks that escape, symlinked folders, FIFOs, hidden entries.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use tanya_ingest::{walk, SkipReason, WalkError, WalkOptions};

fn reasons(w: &tanya_ingest::Walk) -> Vec<(&str, SkipReason)> {
    w.skipped
        .iter()
        .map(|s| (s.rel_path.as_str(), s.reason))
        .collect()
}

#[test]
fn symlinks_never_lead_outside_the_root() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.txt"), "rahsia").unwrap();
    fs::create_dir(outside.path().join("dir")).unwrap();
    fs::write(outside.path().join("dir/more.txt"), "lagi").unwrap();

    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir(r.join("docs")).unwrap();
    fs::write(r.join("docs/real.md"), "# Real").unwrap();
    symlink(outside.path().join("secret.txt"), r.join("escape.txt")).unwrap();
    symlink(outside.path().join("dir"), r.join("escape_dir")).unwrap();
    symlink(r.join("docs"), r.join("inside_dir")).unwrap();
    symlink(r.join("docs/real.md"), r.join("alias.md")).unwrap();
    symlink("../../../../../../etc/passwd", r.join("relative.txt")).unwrap();
    symlink(r.join("missing.txt"), r.join("dangling.txt")).unwrap();

    let w = walk(r, &WalkOptions::default()).unwrap();
    let files: Vec<_> = w.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(files, ["alias.md", "docs/real.md"]);
    let canonical = fs::canonicalize(r).unwrap();
    assert!(w.files.iter().all(|f| f.path.starts_with(&canonical)));
    assert_eq!(
        reasons(&w),
        [
            ("dangling.txt", SkipReason::Symlink),
            ("escape.txt", SkipReason::Symlink),
            ("escape_dir", SkipReason::Symlink),
            ("inside_dir", SkipReason::Symlink),
            ("relative.txt", SkipReason::Symlink),
        ]
    );
    assert!(
        w.skipped[1].message.contains("outside"),
        "{}",
        w.skipped[1].message
    );
}

#[test]
fn fifo_is_skipped_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    let fifo = root.path().join("pipe.txt");
    // mkfifo (coreutils) is on every Linux: a failure here is a failure of the test.
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("cannot run mkfifo");
    assert!(made.success(), "mkfifo {} failed: {made}", fifo.display());
    fs::write(root.path().join("ok.txt"), "ok").unwrap();
    let w = walk(root.path(), &WalkOptions::default()).unwrap();
    assert_eq!(w.files.len(), 1);
    assert_eq!(reasons(&w), [("pipe.txt", SkipReason::Special)]);
    // A FIFO given as the root is skipped too, not opened.
    let w = walk(&fifo, &WalkOptions::default()).unwrap();
    assert!(w.files.is_empty());
    assert_eq!(w.skipped[0].reason, SkipReason::Special);
}

#[test]
fn hidden_entries_are_skipped_and_reported_once() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join(".git/objects")).unwrap();
    fs::write(r.join(".git/objects/a.txt"), "x").unwrap();
    fs::write(r.join(".env.md"), "x").unwrap();
    fs::create_dir(r.join("sub")).unwrap();
    fs::write(r.join("sub/.draft.md"), "x").unwrap();
    fs::write(r.join("sub/final.md"), "x").unwrap();
    let w = walk(r, &WalkOptions::default()).unwrap();
    let files: Vec<_> = w.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(files, ["sub/final.md"]);
    assert_eq!(
        reasons(&w),
        [
            (".env.md", SkipReason::Hidden),
            (".git", SkipReason::Hidden),
            ("sub/.draft.md", SkipReason::Hidden)
        ]
    );
}

#[test]
fn missing_root_and_empty_root() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("tiada");
    match walk(&missing, &WalkOptions::default()) {
        Err(WalkError::NotFound(p)) => assert_eq!(p, missing),
        other => panic!("{other:?}"),
    }
    let w = walk(root.path(), &WalkOptions::default()).unwrap();
    assert!(w.files.is_empty() && w.skipped.is_empty());
}

#[test]
fn walk_is_deterministic() {
    let root = tempfile::tempdir().unwrap();
    for name in ["b.md", "a.md", "c/z.txt", "c/a.txt", "B.md"] {
        let p = root.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, "x").unwrap();
    }
    let first = walk(root.path(), &WalkOptions::default()).unwrap();
    let second = walk(Path::new(root.path()), &WalkOptions::default()).unwrap();
    assert_eq!(first, second);
    let files: Vec<_> = first.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(files, ["B.md", "a.md", "b.md", "c/a.txt", "c/z.txt"]);
}
