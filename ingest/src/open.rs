//! Opening a listed file again, safely: beneath its root, through no symlink.
//!
//! A folder is listed first and read later (seconds later in a long ingest, days later when
//! the server shows an original). In between, anyone who can write in the folder can replace
//! a file, or a folder on its path, with a symlink to a secret elsewhere. Checking the path
//! again would race with that swap, so the file is opened one path component at a time, each
//! relative to the folder opened before it and with `O_NOFOLLOW`: a component that is a
//! symlink now fails the open (`ELOOP` or `ENOTDIR`), and what is opened is checked as an
//! opened file (`fstat`), never by its path.

use std::fs::File;
use std::io;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Why [`open_beneath`] refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A component of the path is a symlink now, or `path` is not under `root`.
    #[error("it now leads through a symlink or out of its folder, so it was not read")]
    Escapes,
    /// The path leads to something other than a regular file (a folder, a pipe, a device).
    #[error("it is no longer a regular file")]
    NotAFile,
    /// Opening or checking failed (not found, permission denied, ...).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Opens `path`, a regular file under the folder `root` (or `root` itself, when the root
/// is a single file), without following any symlink below `root`. Both are canonical paths
/// as the walk records them.
pub fn open_beneath(root: &Path, path: &Path) -> Result<File, OpenError> {
    let (base, rel) = if path == root {
        let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
            return Err(OpenError::Escapes);
        };
        (parent, Path::new(name))
    } else {
        let rel = path.strip_prefix(root).map_err(|_| OpenError::Escapes)?;
        (root, rel)
    };
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(OpenError::Escapes),
        })
        .collect::<Result<_, _>>()?;
    let Some((last, folders)) = names.split_last() else {
        return Err(OpenError::Escapes);
    };
    // The root itself is trusted: the user named it, and it was resolved when listed.
    let mut dir = File::open(base)?;
    for name in folders {
        dir = open_at(&dir, name, OFlags::DIRECTORY)?;
    }
    // O_NONBLOCK: a FIFO put in the file's place must not block the open.
    let file = open_at(&dir, last, OFlags::NONBLOCK | OFlags::NOCTTY)?;
    if !file.metadata()?.is_file() {
        return Err(OpenError::NotAFile);
    }
    Ok(file)
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | extra)`.
fn open_at(dir: &File, name: &std::ffi::OsStr, extra: OFlags) -> Result<File, OpenError> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | extra;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::LOOP | Errno::NOTDIR) => Err(OpenError::Escapes),
        Err(e) => Err(OpenError::Io(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(f: File) -> String {
        let mut s = String::new();
        let mut f = f;
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn opens_files_under_the_root_and_a_single_file_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/x.txt"), "x").unwrap();
        assert_eq!(
            read(open_beneath(&root, &root.join("a/b/x.txt")).unwrap()),
            "x"
        );
        let file = root.join("a/b/x.txt");
        assert_eq!(read(open_beneath(&file, &file).unwrap()), "x");
    }

    #[test]
    fn refuses_a_symlinked_file_or_folder_and_paths_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("secret.txt");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(&outside, "secret").unwrap();
        let root = root.canonicalize().unwrap();
        // The file swapped for a symlink to a secret.
        symlink(&outside, root.join("sub/swapme.txt")).unwrap();
        let e = open_beneath(&root, &root.join("sub/swapme.txt")).unwrap_err();
        assert!(matches!(e, OpenError::Escapes), "{e:?}");
        // A folder on the path swapped for a symlink.
        std::fs::create_dir_all(dir.path().join("elsewhere")).unwrap();
        std::fs::write(dir.path().join("elsewhere/f.txt"), "elsewhere").unwrap();
        symlink(dir.path().join("elsewhere"), root.join("linked")).unwrap();
        let e = open_beneath(&root, &root.join("linked/f.txt")).unwrap_err();
        assert!(matches!(e, OpenError::Escapes), "{e:?}");
        // Not under the root at all, or climbing out of it.
        assert!(matches!(
            open_beneath(&root, &outside).unwrap_err(),
            OpenError::Escapes
        ));
        assert!(matches!(
            open_beneath(&root, &root.join("sub/../../secret.txt")).unwrap_err(),
            OpenError::Escapes
        ));
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("folder.txt")).unwrap();
        assert!(matches!(
            open_beneath(&root, &root.join("folder.txt")).unwrap_err(),
            OpenError::NotAFile
        ));
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("pipe.txt"))
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(
            open_beneath(&root, &root.join("pipe.txt")).unwrap_err(),
            OpenError::NotAFile
        ));
        assert!(matches!(
            open_beneath(&root, &root.join("missing.txt")).unwrap_err(),
            OpenError::Io(_)
        ));
    }
}
