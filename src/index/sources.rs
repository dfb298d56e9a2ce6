//! The original of an acknowledged document, read again only as it was indexed: opened
//! beneath its root through no symlink ([`tanya_ingest::open::open_beneath`]), and served
//! only when its bytes still hash to the acknowledged version. A file swapped for a symlink
//! to a secret, edited, or removed since it was indexed is refused
//! ([`Error::SourceChanged`]), never served.

use tanya_ingest::open::{open_beneath, OpenError};
use tanya_ingest::{Bounded, Format, ParseLimits};

use crate::error::{Error, Result};
use crate::index::manifest::DocumentEntry;

/// The acknowledged bytes of `entry`: its file, or for an email attachment
/// (`mail.eml#name`) the attachment taken out of the email again. `max_bytes` bounds what
/// is read.
pub fn original(entry: &DocumentEntry, max_bytes: u64) -> Result<Vec<u8>> {
    let changed = |why: &str| Error::SourceChanged {
        rel_path: entry.rel_path.clone(),
        why: why.to_string(),
    };
    let file = open_beneath(&entry.root, &entry.source).map_err(|e| match e {
        OpenError::Escapes => changed("now leads through a symlink or out of its folder"),
        OpenError::NotAFile => changed("is no longer a regular file"),
        OpenError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            changed("is no longer in its folder")
        }
        OpenError::Io(e) => Error::io(format!("opening the original of {}", entry.rel_path), e),
    })?;
    let bytes = tanya_ingest::read_to_limit(file, max_bytes).map_err(|e| match e {
        Bounded::TooLarge(_) => changed("has changed since it was indexed"),
        Bounded::Io(e) => Error::io(format!("reading the original of {}", entry.rel_path), e),
    })?;
    let bytes = match attachment_name(entry) {
        None => bytes,
        Some(name) => {
            let limits = ParseLimits {
                max_file_bytes: max_bytes,
                ..ParseLimits::default()
            };
            let email = tanya_ingest::parse(Format::Eml, &bytes, &limits)
                .map_err(|_| changed("has changed since it was indexed"))?;
            email
                .attachments
                .into_iter()
                .find(|a| a.name == name)
                .map(|a| a.bytes)
                .ok_or_else(|| changed("has changed since it was indexed"))?
        }
    };
    if tanya_ingest::content_hash(&bytes) != entry.version {
        return Err(changed("has changed since it was indexed"));
    }
    Ok(bytes)
}

/// For an email attachment (`dir/mail.eml#report.pdf`, whose source is the email), the
/// attachment's name. A file whose own name holds `#` is not an attachment: its relative
/// path ends with its source's file name.
pub fn attachment_name(entry: &DocumentEntry) -> Option<&str> {
    let file_name = entry.source.file_name()?.to_str()?;
    if entry.rel_path.ends_with(file_name) {
        return None;
    }
    let marker = format!("{file_name}#");
    let at = entry.rel_path.find(&marker)?;
    Some(&entry.rel_path[at + marker.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::manifest::tests::sample_entry;
    use tanya_ingest::Lang;

    fn entry_for(root: &std::path::Path, rel: &str, bytes: &[u8]) -> DocumentEntry {
        DocumentEntry {
            source: root.join(rel),
            root: root.to_path_buf(),
            rel_path: rel.to_string(),
            format: Format::Text,
            version: tanya_ingest::content_hash(bytes),
            ..sample_entry(Lang::En, "public")
        }
    }

    #[test]
    fn serves_only_the_acknowledged_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("docs");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let root = root.canonicalize().unwrap();
        std::fs::write(root.join("sub/swapme.txt"), b"cuti tahunan").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"gaji").unwrap();
        let e = entry_for(&root, "sub/swapme.txt", b"cuti tahunan");
        assert_eq!(original(&e, 1 << 20).unwrap(), b"cuti tahunan");
        // Swapped for a symlink to a file outside the folder.
        std::fs::remove_file(root.join("sub/swapme.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("sub/swapme.txt"))
            .unwrap();
        let err = original(&e, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        // Edited in place, or gone.
        std::fs::remove_file(root.join("sub/swapme.txt")).unwrap();
        std::fs::write(root.join("sub/swapme.txt"), b"cuti tahunan, edited").unwrap();
        let err = original(&e, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("has changed"), "{err}");
        std::fs::remove_file(root.join("sub/swapme.txt")).unwrap();
        let err = original(&e, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("no longer in its folder"), "{err}");
    }

    #[test]
    fn a_hash_sign_in_a_file_name_is_not_an_attachment() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("memo #3.txt"), b"memo").unwrap();
        let e = entry_for(&root, "memo #3.txt", b"memo");
        assert_eq!(attachment_name(&e), None);
        assert_eq!(original(&e, 1 << 20).unwrap(), b"memo");
        let mail = DocumentEntry {
            rel_path: "in/m#1.eml#laporan.pdf".into(),
            source: root.join("in/m#1.eml"),
            ..e
        };
        assert_eq!(attachment_name(&mail), Some("laporan.pdf"));
    }
}
