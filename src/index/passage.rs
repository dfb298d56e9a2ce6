//! The unit Tanya stores and retrieves: a [`Passage`] (one chunk of one version of one
//! document, with its location), and the [`Access`] filter every search must carry.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tanya_ingest::Lang;

use crate::error::{Error, Result};

/// One indexed chunk with everything needed to cite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// Store-wide id of this chunk (see [`point_id`]).
    pub point_id: u64,
    pub doc_id: String,
    /// Content hash of the document version this chunk belongs to.
    pub version: String,
    pub ordinal: u32,
    pub rel_path: String,
    pub title: String,
    /// 1-based page for paged formats (PDF).
    pub page: Option<u32>,
    pub heading_path: Vec<String>,
    /// Character offsets into the document's extracted text.
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
    pub lang: Lang,
    /// Access groups that may see this chunk.
    pub groups: Vec<String>,
    /// The collection (a separate knowledge base, e.g. "HR") its document was put in;
    /// `None` for one put in none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
}

impl Passage {
    /// "title, p. 3" / "title › Section" — how a citation names its place.
    pub fn location(&self) -> String {
        let mut s = self.rel_path.clone();
        if let Some(p) = self.page {
            s.push_str(&format!(", p. {p}"));
        }
        if let Some(h) = self.heading_path.last() {
            s.push_str(&format!(" — {h}"));
        }
        s
    }
}

/// Deterministic 63-bit id of a chunk: the same document version always gets the same
/// ids, so a retried write overwrites instead of duplicating.
pub fn point_id(doc_id: &str, version: &str, ordinal: u32) -> u64 {
    let digest = Sha256::digest(format!("{doc_id}\0{version}\0{ordinal}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(b) >> 1
}

/// What a caller may see. A search sees a chunk only if the chunk shares at least one
/// group with the caller, or the caller is an administrator ([`Access::everything`]),
/// who alone sees documents with no group. An empty set of groups sees nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    groups: BTreeSet<String>,
    everything: bool,
    /// Only the documents of this collection, when set (a narrowing, never a widening).
    collection: Option<String>,
}

impl Access {
    /// A caller in `groups`; names are validated like configuration group names.
    pub fn for_groups<I, S>(groups: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let groups: BTreeSet<String> = groups.into_iter().map(Into::into).collect();
        if let Some(bad) = groups.iter().find(|g| !crate::config::valid_group(g)) {
            return Err(Error::BadRequest(format!(
                "invalid access group name `{bad}`"
            )));
        }
        Ok(Access {
            groups,
            everything: false,
            collection: None,
        })
    }

    /// An administrator's access: every document, including those with no group.
    pub fn everything() -> Self {
        Access {
            groups: BTreeSet::new(),
            everything: true,
            collection: None,
        }
    }

    /// The same access narrowed to the documents of `collection` (all of them for `None`).
    pub fn within(mut self, collection: Option<String>) -> Self {
        self.collection = collection;
        self
    }

    /// The collection searches are narrowed to, if any.
    pub fn collection(&self) -> Option<&str> {
        self.collection.as_deref()
    }

    /// Whether a document or chunk with `groups`, in `collection`, is visible.
    pub fn admits(&self, groups: &[String], collection: Option<&str>) -> bool {
        self.allows(groups)
            && self
                .collection
                .as_deref()
                .is_none_or(|c| collection == Some(c))
    }

    /// Whether this is [`Access::everything`] (no filter is applied).
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(String::as_str)
    }

    /// Whether this sees nothing at all.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.groups.is_empty()
    }

    /// Whether a chunk with `chunk_groups` is visible (used to double-check results).
    pub fn allows(&self, chunk_groups: &[String]) -> bool {
        self.everything || chunk_groups.iter().any(|g| self.groups.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_and_distinct() {
        assert_eq!(point_id("a", "v1", 0), point_id("a", "v1", 0));
        assert_ne!(point_id("a", "v1", 0), point_id("a", "v1", 1));
        assert_ne!(point_id("a", "v1", 0), point_id("a", "v2", 0));
        assert!(point_id("x", "y", 7) < (1u64 << 63));
    }

    #[test]
    fn access_checks() {
        let a = Access::for_groups(["hr", "public"]).unwrap();
        assert!(a.allows(&["hr".into()]));
        assert!(!a.allows(&["finance".into()]));
        assert!(!a.allows(&[]));
        assert!(Access::for_groups([" hr"]).is_err());
        assert!(Access::for_groups(["a,b"]).is_err());
        assert!(!Access::for_groups(Vec::<String>::new())
            .unwrap()
            .allows(&["public".into()]));
        assert!(Access::everything().allows(&[]));
        assert!(Access::everything().allows(&["finance".into()]));
        let hr = Access::for_groups(["hr"])
            .unwrap()
            .within(Some("HR".into()));
        assert!(hr.admits(&["hr".into()], Some("HR")));
        assert!(!hr.admits(&["hr".into()], Some("Kewangan")));
        assert!(!hr.admits(&["hr".into()], None));
        assert!(!hr.admits(&["public".into()], Some("HR")));
        assert!(Access::everything().admits(&[], Some("x")));
        let cased = Access::for_groups(["HR-1"]).unwrap();
        for other in ["hr-1", "HR-10", "HR-", "НR-1", "HR-1 "] {
            assert!(!cased.allows(&[other.into()]), "{other}");
        }
    }
}
