//! Vectors in a Qdrant server or cluster, through `qdrant-client` (gRPC): for an
//! organisation that has outgrown one machine (docs/deploy.md).
//!
//! The points are those of the embedded store ([`super::edge`]): one named MaxSim
//! multivector per chunk (the chunk and each of its sentences) and the [`Passage`] as
//! payload, with keyword payload indexes on the fields every filter names. Each data
//! directory's vectors live in a Qdrant collection of their own, `<collection>-<random
//! suffix>`, created on the first open and recorded in `qdrant.json` in the store's
//! directory, so a reindex (which builds beside the old index, then swaps the
//! directories) builds a new collection and the swap moves the record with it.
//!
//! Every write waits until it is applied (`wait`, strong ordering) by
//! `store.write_consistency` copies of its shard, so what the commit protocol
//! acknowledges is on the server; durability beyond that is the server's (its WAL, and
//! `store.replication` copies of every shard in a cluster).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qdrant_client::qdrant::{
    point_id::PointIdOptions, quantization_config::Quantization, vector_output, vectors_config,
    vectors_output::VectorsOptions, Condition, CountPointsBuilder, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, DeletePointsBuilder, Distance, FieldType, Filter,
    GetPointsBuilder, Modifier, MultiVectorComparator, MultiVectorConfig, PointId, PointStruct,
    QueryPointsBuilder, ScalarQuantizationBuilder, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder,
    VectorsConfig, WriteOrdering, WriteOrderingType,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde::{Deserialize, Serialize};

use super::VectorStore;
use crate::config::{self, StoreConfig};
use crate::error::{Error, Result};
use crate::index::passage::{Access, Passage};
use crate::index::sparse;

const VECTOR: &str = "dense";
/// The sparse vector of BM25 terms, with `[store] bm25 = "qdrant"`.
const SPARSE: &str = "bm25";
const INDEXED_FIELDS: [&str; 4] = ["doc_id", "version", "groups", "collection"];
/// The record, in the store's directory, of which Qdrant collection holds its vectors.
const BINDING_FILE: &str = "qdrant.json";
/// Points per upsert request: a batch of 384-dimensional multivectors of ~8 sentences
/// stays well under the server's 32 MiB gRPC message limit.
const UPSERT_BATCH: usize = 256;

/// Which collection on which server a store directory's vectors are in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Binding {
    pub url: String,
    pub collection: String,
    pub dim: usize,
    /// Whether the collection keeps BM25 sparse vectors (`[store] bm25 = "qdrant"`).
    #[serde(default)]
    pub lexical: bool,
}

impl Binding {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(BINDING_FILE)
    }

    /// The binding recorded in `dir`, if any.
    pub fn read(dir: &Path) -> Result<Option<Binding>> {
        let path = Binding::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::store(
                    format!("{} is not a Qdrant collection record", path.display()),
                    e,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let json = serde_json::to_vec_pretty(self).expect("a binding serialises");
        crate::index::manifest::write_atomic(&Binding::path(dir), &json)
    }
}

fn store_err(context: impl Into<String>) -> impl FnOnce(QdrantError) -> Error {
    move |e| Error::store(context, e)
}

fn equals(field: &str, value: &str) -> Condition {
    Condition::matches(field, value.to_string())
}

/// The filter of `access`, as the embedded store builds it: its groups (none for an
/// administrator), and its collection.
fn access_filter(access: &Access) -> Option<Filter> {
    let should: Vec<Condition> = if access.is_everything() {
        Vec::new()
    } else {
        access.groups().map(|g| equals("groups", g)).collect()
    };
    let must: Vec<Condition> = access
        .collection()
        .map(|c| vec![equals("collection", c)])
        .unwrap_or_default();
    (!should.is_empty() || !must.is_empty()).then_some(Filter {
        should,
        must,
        ..Filter::default()
    })
}

fn document_filter(doc_id: &str, keep_version: Option<&str>) -> Filter {
    Filter {
        must: vec![equals("doc_id", doc_id)],
        must_not: keep_version
            .map(|v| vec![equals("version", v)])
            .unwrap_or_default(),
        ..Filter::default()
    }
}

fn num_id(id: Option<PointId>) -> Option<u64> {
    match id?.point_id_options? {
        PointIdOptions::Num(n) => Some(n),
        PointIdOptions::Uuid(_) => None,
    }
}

fn passage_of(payload: HashMap<String, qdrant_client::qdrant::Value>) -> Result<Passage> {
    let map: serde_json::Map<String, serde_json::Value> = payload
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::from(v)))
        .collect();
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| Error::store("stored payload does not match Passage", e))
}

/// A Qdrant collection holding one data directory's chunks.
pub struct QdrantStore {
    /// One client per address in `[store] url`: a request that finds its node
    /// unreachable goes to the next (see [`QdrantStore::call`]).
    clients: Vec<(String, Qdrant)>,
    /// The client that answered last.
    current: std::sync::atomic::AtomicUsize,
    /// Drives the client's futures for callers that are not async (every caller).
    runtime: tokio::runtime::Runtime,
    binding: Binding,
    config: StoreConfig,
}

impl QdrantStore {
    /// Opens the collection recorded in `dir`, or, when `dir` records none, creates a
    /// new one (`dim`-dimensional cosine MaxSim multivectors, the payload indexes, the
    /// configured shards, replication, storage and quantisation) and records it. Refuses
    /// a record of another server or of other dimensions, and a recorded collection
    /// that is gone from the server.
    pub fn open(config: &StoreConfig, dir: &Path, dim: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tanya-qdrant")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the Qdrant client's runtime", e))?;
        let clients = connect(config, &runtime)?;
        let recorded = Binding::read(dir)?;
        let was_recorded = recorded.is_some();
        let binding = match recorded {
            Some(b) => {
                if !urls(&b.url).any(|u| urls(&config.url).any(|c| c == u)) {
                    return Err(Error::Config(format!(
                        "the vectors of {} are in the Qdrant collection {} on {}, but \
                         store.url is {}: point store.url at that server (or `tanya \
                         migrate` them)",
                        dir.display(),
                        b.collection,
                        b.url,
                        config.url
                    )));
                }
                if b.lexical != (config.bm25 == config::Bm25At::Qdrant) {
                    return Err(Error::Config(format!(
                        "the Qdrant collection {} was made with store.bm25 = \"{}\": set it \
                         back (changing where BM25 is kept takes a reindex)",
                        b.collection,
                        if b.lexical { "qdrant" } else { "tantivy" }
                    )));
                }
                if b.dim != dim {
                    return Err(Error::store_msg(format!(
                        "the Qdrant collection {} holds {}-dimensional vectors, not {dim}",
                        b.collection, b.dim
                    )));
                }
                b
            }
            None => Binding {
                url: config.url.clone(),
                collection: format!(
                    "{}-{}",
                    config.collection,
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
                dim,
                lexical: config.bm25 == config::Bm25At::Qdrant,
            },
        };
        let store = QdrantStore {
            clients,
            current: Default::default(),
            runtime,
            binding,
            config: config.clone(),
        };
        let exists = store
            .call(|c| c.collection_exists(&store.binding.collection))
            .map_err(store_err(format!(
                "reaching the Qdrant server at {}",
                config.url
            )))?;
        match (was_recorded, exists) {
            (true, true) => {}
            (true, false) => {
                return Err(Error::store_msg(format!(
                    "the Qdrant collection {} on {}, which held the vectors of {}, is gone",
                    store.binding.collection,
                    config.url,
                    dir.display()
                )))
            }
            (false, _) => {
                store.create()?;
                store.binding.write(dir)?;
            }
        }
        Ok(store)
    }

    /// The collection this store's vectors are in.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The server's version, as its health check says.
    pub fn server_version(&self) -> Result<String> {
        let reply = self
            .call(|c| c.health_check())
            .map_err(store_err("checking the Qdrant server's health"))?;
        Ok(reply.version)
    }

    /// Deletes the collection `binding` names (a reindex's old index, a test's).
    /// On the server the binding records, whatever `config`'s url says now; `config`
    /// gives the key and the timeout.
    pub fn delete(config: &StoreConfig, binding: &Binding) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the Qdrant client's runtime", e))?;
        let config = StoreConfig {
            url: binding.url.clone(),
            ..config.clone()
        };
        let clients = connect(&config, &runtime)?;
        let mut last = None;
        for (url, client) in &clients {
            match runtime.block_on(client.delete_collection(&binding.collection)) {
                Ok(_) => return Ok(()),
                Err(e) if unreachable(&e) => {
                    tracing::warn!(url = %url, error = %e, "Qdrant node unreachable");
                    last = Some(e);
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        Err(Error::store(
            format!("deleting the Qdrant collection {}", binding.collection),
            last.expect("at least one address"),
        ))
    }

    fn create(&self) -> Result<()> {
        let c = &self.config;
        let mut params = VectorParamsBuilder::new(self.binding.dim as u64, Distance::Cosine)
            .multivector_config(MultiVectorConfig {
                comparator: MultiVectorComparator::MaxSim.into(),
            })
            .on_disk(c.on_disk);
        if c.quantization == config::Quantization::Int8 {
            params = params.quantization_config(Quantization::Scalar(
                ScalarQuantizationBuilder::default()
                    .r#type(qdrant_client::qdrant::QuantizationType::Int8.into())
                    .always_ram(true)
                    .build(),
            ));
        }
        let vectors = VectorsConfig {
            config: Some(vectors_config::Config::ParamsMap(
                qdrant_client::qdrant::VectorParamsMap {
                    map: [(VECTOR.to_string(), params.build())].into(),
                },
            )),
        };
        let name = &self.binding.collection;
        let mut create = CreateCollectionBuilder::new(name).vectors_config(vectors);
        if self.binding.lexical {
            let mut sparse = SparseVectorsConfigBuilder::default();
            sparse.add_named_vector_params(
                SPARSE,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            create = create.sparse_vectors_config(sparse);
        }
        let request = create
            .shard_number(c.shards)
            .replication_factor(c.replication)
            .write_consistency_factor(c.write_consistency)
            .timeout(self.timeout_secs())
            .build();
        self.call(|client| client.create_collection(request.clone()))
            .map_err(store_err(format!("creating the Qdrant collection {name}")))?;
        for field in INDEXED_FIELDS {
            let request = CreateFieldIndexCollectionBuilder::new(name, field, FieldType::Keyword)
                .wait(true)
                .build();
            self.call(|client| client.create_field_index(request.clone()))
                .map_err(store_err(format!("creating the payload index on {field}")))?;
        }
        Ok(())
    }

    fn timeout_secs(&self) -> u64 {
        self.config.timeout_ms.div_ceil(1000)
    }

    fn strong() -> WriteOrdering {
        WriteOrdering {
            r#type: WriteOrderingType::Strong.into(),
        }
    }

    /// Runs a client future to completion from synchronous code. The HTTP server's
    /// worker threads run a runtime of their own, inside which another cannot block, so
    /// there the future runs on a scoped thread.
    fn run<F: Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.runtime.block_on(future);
        }
        std::thread::scope(|s| {
            s.spawn(|| self.runtime.block_on(future))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs the request `f` makes, against the node that answered last; when that
    /// node cannot be reached, against the next address of `[store] url`, and so on
    /// (requests are idempotent: upserts by id, deletes by filter, reads). Any other
    /// error is the request's own.
    // The error is the client's own type, as large as it makes it; it is turned into
    // ours (boxed) by the caller at once.
    #[allow(clippy::result_large_err)]
    fn call<'a, T, F, Fut>(&'a self, f: F) -> std::result::Result<T, QdrantError>
    where
        F: Fn(&'a Qdrant) -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>> + Send + 'a,
        T: Send,
    {
        use std::sync::atomic::Ordering;
        let n = self.clients.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let k = (first + i) % n;
            let (url, client) = &self.clients[k];
            match self.run(f(client)) {
                Ok(v) => {
                    if i > 0 {
                        tracing::warn!(url = %url, "using the Qdrant node at {url}");
                        self.current.store(k, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err(e) if unreachable(&e) && n > 1 => {
                    tracing::warn!(url = %url, error = %e, "Qdrant node unreachable; trying the next");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one address"))
    }

    /// The best `limit` passages by `input` against the vector `using`, under the filter
    /// of `access`, with their scores.
    fn query(
        &self,
        input: VectorInput,
        using: &str,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        let mut request = QueryPointsBuilder::new(&self.binding.collection)
            .query(input)
            .using(using)
            .limit(limit as u64)
            .with_payload(true)
            .timeout(self.timeout_secs());
        if let Some(filter) = access_filter(access) {
            request = request.filter(filter);
        }
        let request = request.build();
        let reply = self
            .call(|c| c.query(request.clone()))
            .map_err(store_err(format!("searching the {using} vectors")))?;
        reply
            .result
            .into_iter()
            .map(|hit| Ok((passage_of(hit.payload)?, hit.score)))
            .collect()
    }

    fn count_filtered(&self, filter: Option<Filter>) -> Result<usize> {
        let mut request = CountPointsBuilder::new(&self.binding.collection).exact(true);
        if let Some(f) = filter {
            request = request.filter(f);
        }
        let request = request.build();
        let reply = self
            .call(|c| c.count(request.clone()))
            .map_err(store_err("counting points"))?;
        Ok(reply.result.map_or(0, |r| r.count as usize))
    }

    fn retrieve(
        &self,
        ids: &[u64],
        payload: bool,
        vectors: bool,
    ) -> Result<Vec<qdrant_client::qdrant::RetrievedPoint>> {
        let ids: Vec<PointId> = ids.iter().map(|&id| id.into()).collect();
        let request = GetPointsBuilder::new(&self.binding.collection, ids)
            .with_payload(payload)
            .with_vectors(vectors)
            .timeout(self.timeout_secs())
            .build();
        let reply = self
            .call(|c| c.get_points(request.clone()))
            .map_err(store_err("retrieving points"))?;
        Ok(reply.result)
    }

    fn check_dim(&self, v: &[f32]) -> Result<()> {
        if v.len() != self.binding.dim {
            return Err(Error::store_msg(format!(
                "a vector of {} dimensions, but the collection {} holds {}",
                v.len(),
                self.binding.collection,
                self.binding.dim
            )));
        }
        Ok(())
    }
}

/// The addresses of `[store] url`: one, or several separated by commas (the nodes of a
/// cluster, tried in turn).
pub fn urls(url: &str) -> impl Iterator<Item = &str> {
    url.split(',').map(str::trim).filter(|u| !u.is_empty())
}

/// Whether `e` says the node could not be reached (as opposed to refusing the request).
fn unreachable(e: &QdrantError) -> bool {
    use tonic::Code;
    match e {
        QdrantError::ResponseError { status } => match status.code() {
            Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled => true,
            // How the client's connection pool reports a node it cannot connect to.
            Code::Internal => status.message().starts_with("Failed to connect"),
            _ => false,
        },
        QdrantError::Io(_) => true,
        _ => false,
    }
}

fn connect(
    config: &StoreConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<(String, Qdrant)>> {
    urls(&config.url)
        .map(|url| Ok((url.to_string(), connect_one(config, url, runtime)?)))
        .collect()
}

fn connect_one(
    config: &StoreConfig,
    url: &str,
    runtime: &tokio::runtime::Runtime,
) -> Result<Qdrant> {
    let _guard = runtime.enter();
    let mut builder = Qdrant::from_url(url)
        .timeout(Duration::from_millis(config.timeout_ms))
        .connect_timeout(Duration::from_millis(config.timeout_ms.min(5000)))
        // Tanya checks the server's health itself, on its own runtime.
        .skip_compatibility_check();
    if !config.api_key.expose().is_empty() {
        builder = builder.api_key(config.api_key.expose().to_string());
    }
    builder
        .build()
        .map_err(store_err(format!("connecting to Qdrant at {url}")))
}

impl VectorStore for QdrantStore {
    fn persistent(&self) -> bool {
        true
    }

    fn upsert(&self, items: &[(Passage, Vec<Vec<f32>>)]) -> Result<()> {
        // Checked here: the server refuses a wrong length too, but after earlier
        // batches of the same call were written.
        for (_, vectors) in items {
            if vectors.is_empty() {
                return Err(Error::store_msg("a passage without vectors"));
            }
            vectors.iter().try_for_each(|v| self.check_dim(v))?;
        }
        for batch in items.chunks(UPSERT_BATCH) {
            let points = batch
                .iter()
                .map(|(p, v)| {
                    let payload = Payload::try_from(
                        serde_json::to_value(p)
                            .map_err(|e| Error::store("serialising a passage", e))?,
                    )
                    .map_err(store_err("a passage as a Qdrant payload"))?;
                    let mut vectors: HashMap<String, Vector> =
                        [(VECTOR.to_string(), Vector::new_multi(v.clone()))].into();
                    if self.binding.lexical {
                        let (indices, values): (Vec<u32>, Vec<f32>) =
                            sparse::passage_vector(p).into_iter().unzip();
                        vectors.insert(SPARSE.to_string(), Vector::new_sparse(indices, values));
                    }
                    Ok(PointStruct::new(p.point_id, vectors, payload))
                })
                .collect::<Result<Vec<_>>>()?;
            let n = points.len();
            let request = UpsertPointsBuilder::new(&self.binding.collection, points)
                .wait(true)
                .ordering(Self::strong())
                .timeout(self.timeout_secs())
                .build();
            self.call(|c| c.upsert_points(request.clone()))
                .map_err(store_err(format!("upserting {n} points")))?;
        }
        Ok(())
    }

    fn delete_document(&self, doc_id: &str, keep_version: Option<&str>) -> Result<()> {
        let request = DeletePointsBuilder::new(&self.binding.collection)
            .points(document_filter(doc_id, keep_version))
            .wait(true)
            .ordering(Self::strong())
            .timeout(self.timeout_secs())
            .build();
        self.call(|c| c.delete_points(request.clone()))
            .map_err(store_err(format!(
                "deleting the points of document {doc_id}"
            )))?;
        Ok(())
    }

    fn search(&self, vector: &[f32], access: &Access, limit: usize) -> Result<Vec<(Passage, f32)>> {
        if access.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        self.check_dim(vector)?;
        self.query(
            VectorInput::new_multi(vec![vector.to_vec()]),
            VECTOR,
            access,
            limit,
        )
    }

    fn vectors(&self, ids: &[u64]) -> Result<HashMap<u64, Vec<Vec<f32>>>> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for point in self.retrieve(ids, false, true)? {
            let Some(id) = num_id(point.id) else { continue };
            let Some(VectorsOptions::Vectors(mut named)) =
                point.vectors.and_then(|v| v.vectors_options)
            else {
                continue;
            };
            let Some(output) = named.vectors.remove(VECTOR) else {
                continue;
            };
            if let vector_output::Vector::MultiDense(m) = output.into_vector() {
                out.insert(id, m.vectors.into_iter().map(|d| d.data).collect());
            }
        }
        Ok(out)
    }

    fn passages(&self, ids: &[u64]) -> Result<HashMap<u64, Passage>> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for point in self.retrieve(ids, true, false)? {
            let Some(id) = num_id(point.id) else { continue };
            out.insert(id, passage_of(point.payload)?);
        }
        Ok(out)
    }

    fn count_document(&self, doc_id: &str) -> Result<usize> {
        self.count_filtered(Some(document_filter(doc_id, None)))
    }

    fn count(&self) -> Result<usize> {
        self.count_filtered(None)
    }

    fn flush(&self) -> Result<()> {
        // Every write already waited until it was applied; the server owns durability.
        Ok(())
    }

    fn lexical(&self) -> bool {
        self.binding.lexical
    }

    fn lexical_search(
        &self,
        query: &sparse::Sparse,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        if !self.binding.lexical {
            return Err(Error::store_msg(format!(
                "the Qdrant collection {} keeps no BM25 vectors",
                self.binding.collection
            )));
        }
        if access.is_empty() || limit == 0 || query.is_empty() {
            return Ok(Vec::new());
        }
        let (indices, values): (Vec<u32>, Vec<f32>) = query.iter().copied().unzip();
        self.query(
            VectorInput::new_sparse(indices, values),
            SPARSE,
            access,
            limit,
        )
    }
}

/// What only the Qdrant store has: the record of its collection. Like the contract
/// suite's `qdrant` instance, these need a server (`QDRANT_URL`).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::{passage, qdrant_config, ServerSide};

    #[test]
    #[ignore = "needs a Qdrant server: QDRANT_URL (the test command runs it when set)"]
    fn the_record_binds_a_directory_to_its_collection() {
        let config = qdrant_config();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vectors");
        let store = QdrantStore::open(&config, &dir, 8).unwrap();
        let _cleanup = ServerSide::of(&config, &dir);
        let binding = store.binding().clone();
        assert!(
            binding.collection.starts_with("tanya-contract-"),
            "{binding:?}"
        );
        assert_eq!(Binding::read(&dir).unwrap(), Some(binding.clone()));
        assert!(!store.server_version().unwrap().is_empty());
        drop(store);

        // The same directory opens the same collection; another directory a new one.
        let again = QdrantStore::open(&config, &dir, 8).unwrap();
        assert_eq!(again.binding(), &binding);
        let other_dir = tmp.path().join("other");
        let other = QdrantStore::open(&config, &other_dir, 8).unwrap();
        let _cleanup_other = ServerSide::of(&config, &other_dir);
        assert_ne!(other.binding().collection, binding.collection);

        // Other dimensions, another server: refused, saying which.
        let e = QdrantStore::open(&config, &dir, 9).err().unwrap();
        assert!(e.to_string().contains("8-dimensional"), "{e}");
        let elsewhere = StoreConfig {
            url: "http://127.0.0.1:9".into(),
            ..config.clone()
        };
        let e = QdrantStore::open(&elsewhere, &dir, 8).err().unwrap();
        assert!(e.is_user_error(), "{e}");
        assert!(e.to_string().contains(&binding.collection), "{e}");

        // A recorded collection that is gone is an error, not a new empty index.
        QdrantStore::delete(&config, &binding).unwrap();
        let e = QdrantStore::open(&config, &dir, 8).err().unwrap();
        assert!(e.to_string().contains("is gone"), "{e}");
    }

    /// The HTTP server's handlers run inside a runtime of their own; a store call made
    /// there must neither panic nor deadlock.
    #[test]
    #[ignore = "needs a Qdrant server: QDRANT_URL (the test command runs it when set)"]
    fn works_from_inside_another_runtime() {
        let config = qdrant_config();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vectors");
        let store = QdrantStore::open(&config, &dir, 8).unwrap();
        let _cleanup = ServerSide::of(&config, &dir);
        let mut v = vec![0.0; 8];
        v[0] = 1.0;
        store
            .upsert(&[(passage("a", "v1", 0, &["public"]), vec![v.clone()])])
            .unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hits = outer.block_on(async {
            store.search(
                &v,
                &crate::index::passage::Access::for_groups(["public"]).unwrap(),
                3,
            )
        });
        assert_eq!(hits.unwrap().len(), 1);
    }

    /// With `bm25 = "qdrant"`, the server ranks by BM25 over the chunks' sparse
    /// vectors, under the same access filter as the dense search.
    #[test]
    #[ignore = "needs a Qdrant server: QDRANT_URL (the test command runs it when set)"]
    fn bm25_on_the_server_ranks_by_rare_terms_within_access() {
        let config = StoreConfig {
            bm25: config::Bm25At::Qdrant,
            ..qdrant_config()
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vectors");
        let store = QdrantStore::open(&config, &dir, 8).unwrap();
        let _cleanup = ServerSide::of(&config, &dir);
        assert!(store.lexical());
        let mut unit = vec![0.0; 8];
        unit[0] = 1.0;
        let texts = [
            (
                "a",
                "public",
                "Elaun perjalanan dibayar mengikut kadar jarak.",
            ),
            ("b", "public", "Cuti tahunan pegawai ialah 16 hari setahun."),
            (
                "c",
                "hr",
                "Elaun perjalanan untuk pegawai kanan: kadar khas.",
            ),
            (
                "d",
                "public",
                "Pegawai perlu hadir mesyuarat jabatan setiap bulan.",
            ),
        ];
        let items: Vec<_> = texts
            .iter()
            .map(|(doc, group, text)| {
                let mut p = passage(doc, "v1", 0, &[group]);
                p.text = text.to_string();
                (p, vec![unit.clone()])
            })
            .collect();
        store.upsert(&items).unwrap();
        let public = crate::index::passage::Access::for_groups(["public"]).unwrap();
        let hits = store
            .lexical_search(&sparse::query_vector("elaun perjalanan"), &public, 10)
            .unwrap();
        let docs: Vec<&str> = hits.iter().map(|(p, _)| p.doc_id.as_str()).collect();
        assert_eq!(docs, ["a"], "{hits:?}");
        // "pegawai" is in three chunks, "cuti" in one: the rarer term ranks first.
        let hits = store
            .lexical_search(&sparse::query_vector("cuti pegawai"), &public, 10)
            .unwrap();
        assert_eq!(hits[0].0.doc_id, "b", "{hits:?}");
        assert!(hits.iter().all(|(p, _)| p.doc_id != "c"));
        let everything = crate::index::passage::Access::everything();
        let hits = store
            .lexical_search(&sparse::query_vector("kadar"), &everything, 10)
            .unwrap();
        assert_eq!(hits.len(), 2, "{hits:?}");
        // Deleted chunks are gone from BM25 too.
        store.delete_document("a", None).unwrap();
        let hits = store
            .lexical_search(&sparse::query_vector("elaun"), &everything, 10)
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0.doc_id, "c");
    }

    #[test]
    fn only_a_node_out_of_reach_sends_a_request_to_the_next() {
        let status = |s| QdrantError::ResponseError { status: s };
        assert!(unreachable(&status(tonic::Status::internal(
            "Failed to connect to http://127.0.0.1:16334/: tcp connect error"
        ))));
        assert!(unreachable(&status(tonic::Status::unavailable(
            "connection reset"
        ))));
        assert!(unreachable(&status(tonic::Status::deadline_exceeded(
            "timeout"
        ))));
        assert!(!unreachable(&status(tonic::Status::internal(
            "wrong vector dimension"
        ))));
        assert!(!unreachable(&status(tonic::Status::invalid_argument(
            "bad filter"
        ))));
        assert!(!unreachable(&status(tonic::Status::not_found(
            "no collection"
        ))));
        assert_eq!(
            urls(" http://a:6334, http://b:6334 ,").collect::<Vec<_>>(),
            ["http://a:6334", "http://b:6334"]
        );
    }

    /// With several addresses, a node that cannot be reached is passed over: here the
    /// first address has nothing listening.
    #[test]
    #[ignore = "needs a Qdrant server: QDRANT_URL (the test command runs it when set)"]
    fn a_node_out_of_reach_is_passed_over() {
        let live = qdrant_config();
        let config = StoreConfig {
            url: format!("http://127.0.0.1:9, {}", live.url),
            ..live.clone()
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vectors");
        let store = QdrantStore::open(&config, &dir, 8).unwrap();
        let _cleanup = ServerSide::of(&live, &dir);
        let mut v = vec![0.0; 8];
        v[1] = 1.0;
        store
            .upsert(&[(passage("a", "v1", 0, &["public"]), vec![v.clone()])])
            .unwrap();
        let everything = crate::index::passage::Access::everything();
        assert_eq!(store.search(&v, &everything, 3).unwrap().len(), 1);
        assert_eq!(store.count().unwrap(), 1);
        // The same directory, its collection named with the live address alone.
        drop(store);
        assert_eq!(
            QdrantStore::open(&live, &dir, 8).unwrap().count().unwrap(),
            1
        );
    }
}
