//! Bigger indexes for benchmarks: an index grown from a real one by copying its documents,
//! each copy's vectors moved a little, so that search latency can be measured at sizes
//! this machine cannot embed in a session (100k chunks with e5 take hours on 2 cores).
//! The copies are real text and vectors from the real embedder's space, not a random
//! cloud: the searches walk the same number of vectors per chunk, the same postings per
//! word (times the copies), and the same filters as a real index of that size.

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::collection::{Collection, DocumentCommit, StoredDocument};
use crate::index::manifest::Manifest;
use crate::index::passage::point_id;
use crate::models::embed::l2_normalize;

/// What [`grow`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Grown {
    pub documents: usize,
    pub chunks: usize,
    pub vectors: usize,
    pub seconds: f64,
}

/// Documents committed together (one durable write of each store and of the manifest).
const BATCH: usize = 256;

/// Writes copies of the documents of the index in `from` into `config.paths.data_dir`
/// (which must hold no index yet) until it holds at least `chunks` chunks. Copy 0 is the
/// source as it is; copy `k` of document `d` is `d~k`, its file `copy-k/...`, each of its
/// vectors `v + noise` with the noise's length `jitter` (0.5: cosine ≈ 0.89 to `v`),
/// normalised, from a fixed seed, so two runs write the same index.
pub fn grow(config: &Config, from: &Path, chunks: usize, jitter: f32) -> Result<Grown> {
    let started = std::time::Instant::now();
    let source_manifest = Manifest::load(from)?
        .ok_or_else(|| Error::BadRequest(format!("{} holds no index", from.display())))?;
    let identity = source_manifest.embedder.clone();
    let dim = crate::models::embed::EmbedderKind::from_name(
        identity.split('/').next().unwrap_or_default(),
    )?
    .dimension();
    let target_dir = &config.paths.data_dir;
    if Manifest::load(target_dir)?.is_some_and(|m| !m.documents.is_empty()) {
        return Err(Error::BadRequest(format!(
            "{} holds an index already: grow into an empty data directory",
            target_dir.display()
        )));
    }
    let source = Collection::open(from, &identity, dim, &config.store)?;
    let target = Collection::open(target_dir, &identity, dim, &config.store)?;
    let doc_ids: Vec<(String, Vec<String>)> = source
        .manifest()
        .documents
        .iter()
        .map(|(id, e)| (id.clone(), e.groups.clone()))
        .collect();
    if doc_ids.is_empty() {
        return Err(Error::BadRequest(format!(
            "{} holds no document",
            from.display()
        )));
    }
    let mut noise = Noise(0x7a9e_5eed);
    let mut grown = Grown {
        documents: 0,
        chunks: 0,
        vectors: 0,
        seconds: 0.0,
    };
    let mut copy = 0usize;
    'copies: loop {
        let before = grown.chunks;
        for batch in doc_ids.chunks(BATCH) {
            let mut docs: Vec<(String, StoredDocument)> = Vec::with_capacity(batch.len());
            for (doc_id, groups) in batch {
                let mut doc = source.stored_document(doc_id, groups)?;
                let new_id = if copy == 0 {
                    doc_id.clone()
                } else {
                    format!("{doc_id}~{copy}")
                };
                if copy > 0 {
                    doc.entry.rel_path = format!("copy-{copy}/{}", doc.entry.rel_path);
                    for (passage, vectors) in &mut doc.items {
                        passage.doc_id = new_id.clone();
                        passage.rel_path = doc.entry.rel_path.clone();
                        passage.point_id = point_id(&new_id, &passage.version, passage.ordinal);
                        for v in vectors.iter_mut() {
                            noise.move_by(v, jitter);
                        }
                    }
                }
                grown.documents += 1;
                grown.chunks += doc.items.len();
                grown.vectors += doc.items.iter().map(|(_, v)| v.len()).sum::<usize>();
                docs.push((new_id, doc));
                if grown.chunks >= chunks {
                    break;
                }
            }
            target.commit_documents(
                docs.iter()
                    .map(|(id, d)| DocumentCommit {
                        doc_id: id,
                        entry: d.entry.clone(),
                        items: &d.items,
                        text: &d.text,
                    })
                    .collect(),
            )?;
            if grown.chunks >= chunks {
                break 'copies;
            }
        }
        if grown.chunks == before {
            return Err(Error::BadRequest(format!(
                "the documents in {} hold no chunk",
                from.display()
            )));
        }
        copy += 1;
    }
    target.finish()?;
    grown.seconds = started.elapsed().as_secs_f64();
    Ok(grown)
}

/// A small deterministic source of Gaussian noise (xorshift64* and Box–Muller): the
/// grown index is the same on every run and machine.
struct Noise(u64);

impl Noise {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // 24 random bits in (0, 1].
        ((x >> 40) as f32 + 1.0) / (1u64 << 24) as f32
    }

    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.next_f32(), self.next_f32());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }

    /// Moves the unit vector `v` by noise of length about `by`, and normalises it.
    fn move_by(&mut self, v: &mut [f32], by: f32) {
        let scale = by / (v.len() as f32).sqrt();
        for x in v.iter_mut() {
            *x += scale * self.gaussian();
        }
        l2_normalize(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_moves_a_unit_vector_by_about_the_jitter() {
        let mut noise = Noise(1);
        let mut cosines = Vec::new();
        for _ in 0..50 {
            let mut v = vec![0.0f32; 384];
            v[7] = 1.0;
            noise.move_by(&mut v, 0.5);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4);
            cosines.push(v[7]);
        }
        let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
        // 1 / sqrt(1 + 0.5²) = 0.894.
        assert!((mean - 0.894).abs() < 0.02, "mean cosine {mean}");
        // The same seed, the same noise.
        let (mut a, mut b) = (Noise(9), Noise(9));
        assert_eq!(a.gaussian(), b.gaussian());
    }
}
