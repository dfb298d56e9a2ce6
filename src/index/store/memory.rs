//! A vector store in memory only: nothing is written to disk, and a restart loses every
//! vector. For tests and throwaway trials (`[store] kind = "memory"`).
//!
//! It behaves like the edge store (the contract tests hold both to the same behaviour):
//! vectors are normalised when stored and when queried, as Qdrant does for cosine
//! distance, so a passage scores by the best dot product among its vectors (MaxSim). A
//! search is an exact scan that applies the access filter to each passage before it
//! competes for the `limit` places; equal scores are ordered by `point_id`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use parking_lot::RwLock;

use super::VectorStore;
use crate::error::{Error, Result};
use crate::index::passage::{Access, Passage};

struct Point {
    passage: Passage,
    /// Unit vectors (the chunk's, then its sentences'), in upsert order.
    vectors: Vec<Vec<f32>>,
}

/// Passages and their vectors in a map from `point_id`.
pub struct MemoryStore {
    dim: usize,
    points: RwLock<BTreeMap<u64, Point>>,
}

impl MemoryStore {
    /// An empty store of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        MemoryStore {
            dim,
            points: RwLock::new(BTreeMap::new()),
        }
    }

    /// `v` scaled to length 1 (a zero vector stays zero, as in Qdrant), after checking
    /// its dimension.
    fn normalised(&self, v: &[f32]) -> Result<Vec<f32>> {
        if v.len() != self.dim {
            return Err(store_err(format!(
                "a vector has {} dimensions, the store holds {}",
                v.len(),
                self.dim
            )));
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        Ok(if norm > f32::EPSILON {
            v.iter().map(|x| x / norm).collect()
        } else {
            v.to_vec()
        })
    }
}

fn store_err(message: String) -> Error {
    Error::store_msg(message)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Best first; equal scores by ascending `point_id`, so results are deterministic.
fn ranked(a: &(f32, u64), b: &(f32, u64)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

impl VectorStore for MemoryStore {
    fn upsert(&self, items: &[(Passage, Vec<Vec<f32>>)]) -> Result<()> {
        // Check every item before storing any, so a bad batch changes nothing.
        let mut points = Vec::with_capacity(items.len());
        for (passage, vectors) in items {
            if vectors.is_empty() {
                return Err(store_err(format!(
                    "passage {} has no vector",
                    passage.point_id
                )));
            }
            let vectors = vectors
                .iter()
                .map(|v| self.normalised(v))
                .collect::<Result<Vec<_>>>()?;
            points.push(Point {
                passage: passage.clone(),
                vectors,
            });
        }
        let mut map = self.points.write();
        for point in points {
            map.insert(point.passage.point_id, point);
        }
        Ok(())
    }

    fn delete_document(&self, doc_id: &str, keep_version: Option<&str>) -> Result<()> {
        self.points.write().retain(|_, p| {
            p.passage.doc_id != doc_id || Some(p.passage.version.as_str()) == keep_version
        });
        Ok(())
    }

    fn search(&self, vector: &[f32], access: &Access, limit: usize) -> Result<Vec<(Passage, f32)>> {
        if access.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let query = self.normalised(vector)?;
        let map = self.points.read();
        let mut scored: Vec<(f32, u64)> = map
            .values()
            .filter(|p| access.admits(&p.passage.groups, p.passage.collection.as_deref()))
            .map(|p| {
                let best = p
                    .vectors
                    .iter()
                    .map(|v| dot(&query, v))
                    .fold(f32::NEG_INFINITY, f32::max);
                (best, p.passage.point_id)
            })
            .collect();
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, ranked);
            scored.truncate(limit);
        }
        scored.sort_unstable_by(ranked);
        Ok(scored
            .into_iter()
            .map(|(score, id)| (map[&id].passage.clone(), score))
            .collect())
    }

    fn vectors(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<Vec<f32>>>> {
        let map = self.points.read();
        Ok(ids
            .iter()
            .filter_map(|id| map.get(id).map(|p| (*id, p.vectors.clone())))
            .collect())
    }

    fn passages(&self, ids: &[u64]) -> Result<HashMap<u64, Passage>> {
        let map = self.points.read();
        Ok(ids
            .iter()
            .filter_map(|id| map.get(id).map(|p| (*id, p.passage.clone())))
            .collect())
    }

    fn count_document(&self, doc_id: &str) -> Result<usize> {
        Ok(self
            .points
            .read()
            .values()
            .filter(|p| p.passage.doc_id == doc_id)
            .count())
    }

    fn count(&self) -> Result<usize> {
        Ok(self.points.read().len())
    }

    fn flush(&self) -> Result<()> {
        // Nothing to make durable: this store never is.
        Ok(())
    }

    fn persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;

    #[test]
    fn equal_scores_are_ordered_by_point_id() {
        let store = MemoryStore::new(2);
        let items: Vec<_> = (0..20)
            .map(|i| (passage("a", "v1", i, &["public"]), vec![vec![1.0, 0.0]]))
            .collect();
        store.upsert(&items).unwrap();
        let mut ids: Vec<u64> = items.iter().map(|(p, _)| p.point_id).collect();
        ids.sort_unstable();
        let access = Access::for_groups(["public"]).unwrap();
        for limit in [1, 5, 20, 50] {
            let hits = store.search(&[1.0, 0.0], &access, limit).unwrap();
            let got: Vec<u64> = hits.iter().map(|(p, _)| p.point_id).collect();
            assert_eq!(got, ids[..limit.min(20)], "limit {limit}");
        }
    }

    #[test]
    fn a_zero_vector_is_kept_and_scores_zero() {
        let store = MemoryStore::new(2);
        let p = passage("a", "v1", 0, &["public"]);
        store.upsert(&[(p.clone(), vec![vec![0.0, 0.0]])]).unwrap();
        let access = Access::for_groups(["public"]).unwrap();
        let hits = store.search(&[1.0, 0.0], &access, 1).unwrap();
        assert_eq!(hits[0].1, 0.0);
        assert_eq!(
            store.vectors(&[p.point_id]).unwrap()[&p.point_id],
            vec![vec![0.0, 0.0]]
        );
    }

    #[test]
    fn a_passage_without_vectors_is_refused() {
        let store = MemoryStore::new(2);
        let ok = (passage("a", "v1", 0, &["public"]), vec![vec![1.0, 0.0]]);
        let empty = (passage("a", "v1", 1, &["public"]), Vec::new());
        assert!(store.upsert(&[ok, empty]).is_err());
        assert_eq!(store.count().unwrap(), 0);
    }
}
