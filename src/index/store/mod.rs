//! Vector stores. A trait, because the implementations really swap: the embedded
//! Qdrant edge shard ([`edge::EdgeStore`], the default) and, later, a Qdrant server.
//! Only this module knows Qdrant. One contract test suite runs over every
//! implementation (see `contract_tests`).

pub mod edge;

use crate::error::Result;
use crate::index::passage::{Access, Passage};

/// Dense vectors with their passages, searchable under an access filter.
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces passages with their vectors (same `point_id` = replace). Each
    /// passage has one or more unit vectors (the whole chunk and each of its sentences);
    /// a passage scores by its best-matching vector (MaxSim).
    fn upsert(&self, items: &[(Passage, Vec<Vec<f32>>)]) -> Result<()>;
    /// Removes every chunk of `doc_id` whose version is not `keep_version` (all of them
    /// when `keep_version` is `None`).
    fn delete_document(&self, doc_id: &str, keep_version: Option<&str>) -> Result<()>;
    /// Nearest passages to `vector` among those `access` may see, best first, with the
    /// best cosine similarity among each passage's vectors.
    fn search(&self, vector: &[f32], access: &Access, limit: usize) -> Result<Vec<(Passage, f32)>>;
    /// The stored vectors of the given chunks (the chunk's, then its sentences', in the
    /// order they were upserted); unknown ids are left out.
    fn vectors(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Vec<Vec<f32>>>>;
    /// Number of chunks of `doc_id` (all versions).
    fn count_document(&self, doc_id: &str) -> Result<usize>;
    /// Number of chunks stored.
    fn count(&self) -> Result<usize>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<()>;
}

#[cfg(test)]
pub(crate) mod contract_tests {
    //! The behaviour every [`VectorStore`] must have.
    use super::*;
    use tanya_ingest::Lang;

    pub fn passage(doc: &str, version: &str, ordinal: u32, groups: &[&str]) -> Passage {
        Passage {
            point_id: crate::index::passage::point_id(doc, version, ordinal),
            doc_id: doc.into(),
            version: version.into(),
            ordinal,
            rel_path: format!("{doc}.txt"),
            title: doc.into(),
            page: Some(ordinal + 1),
            heading_path: vec!["Section".into()],
            char_start: 0,
            char_end: 4,
            text: format!("text {doc} {ordinal}"),
            lang: Lang::En,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn unit(i: usize, dim: usize) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        v[i % dim] = 1.0;
        v
    }

    pub fn run_all(store: &dyn VectorStore, dim: usize) {
        let public = Access::for_groups(["public"]).unwrap();
        let hr = Access::for_groups(["hr"]).unwrap();
        let items = vec![
            (passage("a", "v1", 0, &["public"]), vec![unit(0, dim)]),
            (
                passage("a", "v1", 1, &["public"]),
                vec![unit(3, dim), unit(1, dim)],
            ),
            (passage("b", "v1", 0, &["hr"]), vec![unit(0, dim)]),
        ];
        store.upsert(&items).unwrap();
        store.flush().unwrap();
        assert_eq!(store.count().unwrap(), 3);

        // Best match first (by its best vector), payload round-trips.
        let hits = store.search(&unit(1, dim), &public, 10).unwrap();
        assert_eq!(hits[0].0, items[1].0);
        assert!((hits[0].1 - 1.0).abs() < 1e-4);

        // The access filter applies inside the search: the hr chunk is the best match
        // for unit(0) but a public caller never sees it, an hr caller only sees it.
        let hits = store.search(&unit(0, dim), &public, 10).unwrap();
        assert!(hits.iter().all(|(p, _)| p.doc_id == "a"), "{hits:?}");
        let hits = store.search(&unit(0, dim), &hr, 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0.doc_id, "b");
        let nobody = Access::for_groups(Vec::<String>::new()).unwrap();
        assert!(store.search(&unit(0, dim), &nobody, 10).unwrap().is_empty());

        // Stored vectors come back in order.
        let ids = [items[1].0.point_id, 12345];
        let v = store.vectors(&ids).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[&items[1].0.point_id], items[1].1);

        // Re-upserting the same ids does not duplicate.
        store.upsert(&items).unwrap();
        assert_eq!(store.count().unwrap(), 3);

        // A new version, then the old one removed.
        store
            .upsert(&[(passage("a", "v2", 0, &["public"]), vec![unit(2, dim)])])
            .unwrap();
        assert_eq!(store.count_document("a").unwrap(), 3);
        store.delete_document("a", Some("v2")).unwrap();
        assert_eq!(store.count_document("a").unwrap(), 1);
        store.delete_document("a", None).unwrap();
        assert_eq!(store.count_document("a").unwrap(), 0);
        assert_eq!(store.count().unwrap(), 1);
        store.flush().unwrap();
    }
}
