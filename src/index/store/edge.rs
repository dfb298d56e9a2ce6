//! The default vector store: an embedded Qdrant edge shard in the data directory.
//!
//! Chunks are points with one named multivector (the chunk and each of its sentences,
//! compared by MaxSim, so a chunk scores by its best sentence) and the [`Passage`] as
//! payload; keyword
//! payload indexes on `doc_id`, `version` and `groups` keep filtered search fast. Writes
//! go to the shard's WAL; [`VectorStore::flush`] makes them durable.

use std::path::{Path, PathBuf};

use qdrant_edge::{
    Condition, CountRequest, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard,
    EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath, Match,
    MatchValue, MultiVectorComparator, MultiVectorConfig, NamedQuery, Payload, PayloadFieldSchema,
    PayloadSchemaType, PointId, PointInsertOperations, PointOperations, PointStructPersisted,
    QueryEnum, QueryRequestBuilder, RetrieveRequest, ScoringQuery, UpdateOperation, ValueVariants,
    Vector, VectorInternal, VectorStructInternal, VectorStructPersisted, WithPayloadInterface,
    WithVector,
};

use super::VectorStore;
use crate::error::{Error, Result};
use crate::index::passage::{Access, Passage};

const VECTOR: &str = "dense";
/// The file a shard's directory always holds.
pub const CONFIG_FILE: &str = "edge_config.json";
const INDEXED_FIELDS: [&str; 3] = ["doc_id", "version", "groups"];

/// A request for the points `ids`, with their payloads and/or vectors.
fn retrieve(ids: &[u64], payload: bool, vector: bool) -> RetrieveRequest {
    RetrieveRequest {
        point_ids: ids.iter().map(|&id| PointId::NumId(id)).collect(),
        with_payload: Some(WithPayloadInterface::Bool(payload)),
        with_vector: Some(WithVector::Bool(vector)),
    }
}

/// The [`Passage`] a point carries as its payload.
fn passage_of(payload: Option<Payload>) -> Result<Passage> {
    let payload = payload.ok_or_else(|| Error::store_msg("a point came back without payload"))?;
    serde_json::from_value(serde_json::Value::Object(payload.0))
        .map_err(|e| Error::store("stored payload does not match Passage", e))
}

/// A Qdrant edge shard holding Tanya's chunks.
pub struct EdgeStore {
    shard: EdgeShard,
    path: PathBuf,
}

/// Maps the shard's error to [`Error::Store`], saying what we were doing and keeping the
/// error as the source (the context becomes a `String` only when there is an error).
fn store_err<E: std::error::Error + Send + Sync + 'static>(
    context: impl Into<String>,
) -> impl FnOnce(E) -> Error {
    move |e| Error::store(context, e)
}

fn key(name: &str) -> JsonPath {
    name.parse().expect("static payload key parses")
}

fn equals(field: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        key(field),
        Match::Value(MatchValue {
            value: ValueVariants::String(value.to_string()),
        }),
    ))
}

/// The filter of `access`: its groups (none for an administrator), and its collection.
fn access_filter(access: &Access) -> Option<Filter> {
    let should =
        (!access.is_everything()).then(|| access.groups().map(|g| equals("groups", g)).collect());
    let must = access.collection().map(|c| vec![equals("collection", c)]);
    (should.is_some() || must.is_some()).then_some(Filter {
        should,
        min_should: None,
        must,
        must_not: None,
    })
}

fn document_filter(doc_id: &str, keep_version: Option<&str>) -> Filter {
    Filter {
        should: None,
        min_should: None,
        must: Some(vec![equals("doc_id", doc_id)]),
        must_not: keep_version.map(|v| vec![equals("version", v)]),
    }
}

impl EdgeStore {
    /// Opens the shard in `dir`, creating it (with `dim`-dimensional cosine vectors and
    /// the payload indexes) when the directory holds none.
    pub fn open_in_dir(dir: &Path, dim: usize) -> Result<Self> {
        let exists = dir.join(CONFIG_FILE).is_file();
        let shard = if exists {
            EdgeShard::load(dir, None)
                .map_err(store_err(format!("loading the shard in {}", dir.display())))?
        } else {
            let config = EdgeConfigBuilder::new()
                .vector(
                    VECTOR,
                    EdgeVectorParamsBuilder::new(dim, Distance::Cosine)
                        .multivector_config(MultiVectorConfig {
                            comparator: MultiVectorComparator::MaxSim,
                        })
                        .build(),
                )
                .build();
            EdgeShard::new(dir, config)
                .map_err(store_err(format!("creating a shard in {}", dir.display())))?
        };
        let store = EdgeStore {
            shard,
            path: dir.to_path_buf(),
        };
        if !exists {
            for field in INDEXED_FIELDS {
                store
                    .shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: key(field),
                            field_schema: Some(PayloadFieldSchema::FieldType(
                                PayloadSchemaType::Keyword,
                            )),
                        }),
                    ))
                    .map_err(store_err(format!("creating the payload index on {field}")))?;
            }
            store
                .shard
                .flush()
                .map_err(store_err("flushing the new shard"))?;
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn count_filtered(&self, filter: Option<Filter>) -> Result<usize> {
        self.shard
            .count(CountRequest {
                filter,
                exact: true,
            })
            .map_err(store_err("counting points"))
    }
}

impl VectorStore for EdgeStore {
    fn persistent(&self) -> bool {
        true
    }

    fn upsert(&self, items: &[(Passage, Vec<Vec<f32>>)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let points = items
            .iter()
            .map(|(p, v)| {
                let payload =
                    match serde_json::to_value(p).map_err(store_err("serialising a passage"))? {
                        serde_json::Value::Object(map) => Payload(map),
                        _ => unreachable!("a struct serialises to an object"),
                    };
                let multi = Vector::new_multi(v.clone())
                    .map_err(store_err("building a passage's multivector"))?;
                let vector = VectorStructInternal::Named(
                    [(VECTOR.to_string(), VectorInternal::from(multi))]
                        .into_iter()
                        .collect(),
                );
                Ok(PointStructPersisted {
                    id: PointId::NumId(p.point_id),
                    vector: VectorStructPersisted::from(vector),
                    payload: Some(payload),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
            ))
            .map_err(store_err(format!("upserting {} points", items.len())))
    }

    fn delete_document(&self, doc_id: &str, keep_version: Option<&str>) -> Result<()> {
        self.shard
            .update(UpdateOperation::PointOperation(
                PointOperations::DeletePointsByFilter(document_filter(doc_id, keep_version)),
            ))
            .map_err(store_err(format!(
                "deleting the points of document {doc_id}"
            )))
    }

    fn search(&self, vector: &[f32], access: &Access, limit: usize) -> Result<Vec<(Passage, f32)>> {
        if access.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut request = QueryRequestBuilder::new(limit);
        // An administrator's search has no group filter; everyone else's has their
        // groups; a search within a collection, that collection.
        if let Some(filter) = access_filter(access) {
            request = request.filter(filter);
        }
        let request = request
            .query(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: VectorInternal::from(
                    Vector::new_multi(vec![vector.to_vec()])
                        .map_err(store_err("building the query vector"))?,
                ),
                using: Some(VECTOR.to_string()),
            })))
            .with_payload(WithPayloadInterface::Bool(true))
            .build();
        let hits = self.shard.query(request).map_err(store_err("searching"))?;
        hits.into_iter()
            .map(|hit| Ok((passage_of(hit.payload)?, hit.score)))
            .collect()
    }

    fn vectors(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Vec<Vec<f32>>>> {
        let records = self
            .shard
            .retrieve(retrieve(ids, false, true))
            .map_err(store_err("retrieving vectors"))?;
        let mut out = std::collections::HashMap::new();
        for r in records {
            let PointId::NumId(id) = r.id else { continue };
            let Some(VectorStructInternal::Named(mut named)) = r.vector else {
                continue;
            };
            if let Some(VectorInternal::MultiDense(m)) = named.remove(VECTOR) {
                out.insert(id, m.multi_vectors().map(|v| v.to_vec()).collect());
            }
        }
        Ok(out)
    }

    fn passages(&self, ids: &[u64]) -> Result<std::collections::HashMap<u64, Passage>> {
        let records = self
            .shard
            .retrieve(retrieve(ids, true, false))
            .map_err(store_err("retrieving passages"))?;
        let mut out = std::collections::HashMap::new();
        for r in records {
            let PointId::NumId(id) = r.id else { continue };
            out.insert(id, passage_of(r.payload)?);
        }
        Ok(out)
    }

    fn count_document(&self, doc_id: &str) -> Result<usize> {
        self.count_filtered(Some(document_filter(doc_id, None)))
    }

    fn count(&self) -> Result<usize> {
        self.count_filtered(None)
    }

    fn optimize(&self) -> Result<bool> {
        self.shard.optimize().map_err(store_err("optimizing"))
    }

    fn flush(&self) -> Result<()> {
        self.shard.flush().map_err(store_err("flushing"))
    }
}
