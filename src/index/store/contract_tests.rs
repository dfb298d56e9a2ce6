//! The behaviour every [`VectorStore`] must have, one test per behaviour, run over every
//! implementation (the model is tantivy's `src/directory/tests.rs`).
//!
//! Each behaviour is a function taking a fresh, empty store. [`store_contract!`] turns
//! the whole list into `#[test]`s for one implementation, given a function that makes a
//! [`Fixture`]; the instantiations are at the bottom of this file, and a new
//! implementation adds its own line there. A behaviour missing from the macro's list is
//! dead code, which the lints refuse.
//!
//! `passage` is also used by other modules' tests.

use tanya_ingest::Lang;

use super::*;
use crate::config::{StoreConfig, StoreKind};

/// Dimension of the vectors in the contract tests.
const DIM: usize = 8;

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
        collection: None,
    }
}

fn unit(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i % DIM] = 1.0;
    v
}

/// The unit vector at angle `theta` from `unit(0)` towards `unit(1)`: its cosine with
/// `unit(0)` is `cos(theta)`.
fn turned(theta: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[0] = theta.cos();
    v[1] = theta.sin();
    v
}

fn access(groups: &[&str]) -> Access {
    Access::for_groups(groups.iter().copied()).unwrap()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-4
}

fn same_vectors(a: &[Vec<f32>], b: &[Vec<f32>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(*p, *q)))
}

fn doc_ids(hits: &[(Passage, f32)]) -> Vec<&str> {
    hits.iter().map(|(p, _)| p.doc_id.as_str()).collect()
}

/// A fresh, empty store and what must outlive it.
pub struct Fixture {
    pub store: Box<dyn VectorStore>,
    /// Opens the same store again once `store` is dropped (used by the persistence
    /// test); `None` where that cannot be done.
    reopen: Option<Box<dyn Fn() -> Box<dyn VectorStore>>>,
    /// Removes what the store keeps outside its directory (a Qdrant server's
    /// collection) when the fixture is dropped.
    _server_side: Option<ServerSide>,
    /// Dropped last (fields drop in order): the store's files, if it has any.
    _dir: Option<tempfile::TempDir>,
}

/// A test's collection on a Qdrant server, deleted when dropped.
pub struct ServerSide {
    config: StoreConfig,
    binding: super::qdrant::Binding,
}

impl ServerSide {
    /// The collection whose record is in `dir`.
    pub fn of(config: &StoreConfig, dir: &std::path::Path) -> ServerSide {
        ServerSide {
            config: config.clone(),
            binding: super::qdrant::Binding::read(dir)
                .unwrap()
                .expect("the store recorded its collection"),
        }
    }
}

impl Drop for ServerSide {
    fn drop(&mut self) {
        if let Err(e) = super::qdrant::QdrantStore::delete(&self.config, &self.binding) {
            eprintln!(
                "could not delete the test's collection {:?}: {e}",
                self.binding
            );
        }
    }
}

/// The Qdrant server the `qdrant` suite runs against: `QDRANT_URL` (its gRPC address,
/// e.g. http://127.0.0.1:6334), and `QDRANT_API_KEY` when it has one. The suite is
/// `#[ignore]`d; the test command runs it when `QDRANT_URL` is set and says that it
/// did not otherwise, so a run that asks for it without a server fails here.
pub fn qdrant_config() -> StoreConfig {
    let url = std::env::var("QDRANT_URL").expect(
        "the qdrant store contract suite needs a Qdrant server: set QDRANT_URL to its gRPC \
         address (e.g. http://127.0.0.1:6334)",
    );
    StoreConfig {
        url,
        api_key: crate::config::Secret::new(std::env::var("QDRANT_API_KEY").unwrap_or_default()),
        collection: "tanya-contract".into(),
        ..StoreConfig::of(StoreKind::Qdrant)
    }
}

/// A store of `kind` made through [`super::open`], in a temporary directory of its own.
fn opened(kind: StoreKind, dim: usize) -> Fixture {
    let config = match kind {
        StoreKind::Qdrant => qdrant_config(),
        kind => StoreConfig::of(kind),
    };
    opened_with(config, dim)
}

fn opened_with(config: StoreConfig, dim: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors");
    let open = {
        let (config, path) = (config.clone(), path.clone());
        move || super::open(&config, &path, dim).unwrap()
    };
    let store = open();
    Fixture {
        store,
        reopen: Some(Box::new(open)),
        _server_side: (config.kind == StoreKind::Qdrant).then(|| ServerSide::of(&config, &path)),
        _dir: Some(dir),
    }
}

/// Instantiates every behaviour below as a `#[test]` in `mod $name`, each on a fresh
/// store from `$make(DIM)` (a `Fixture`). With `persistent`, the store must also say it
/// is persistent and keep everything flushed across a reopen; without, it must say it is
/// not.
macro_rules! store_contract {
    (@tests $make:expr; $($behaviour:ident),* $(,)?) => {
        $(
            #[test]
            fn $behaviour() {
                let fixture: Fixture = ($make)(DIM);
                super::$behaviour(&*fixture.store);
            }
        )*
    };
    (@tests $make:expr, ignore = $why:literal; $($behaviour:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $why]
            fn $behaviour() {
                let fixture: Fixture = ($make)(DIM);
                super::$behaviour(&*fixture.store);
            }
        )*
    };
    (@all $($how:tt)*) => {
        store_contract!(@tests $($how)*;
            upsert_then_count,
            empty_upsert_changes_nothing,
            flush_changes_nothing_visible,
            best_vector_wins_maxsim,
            results_best_first_with_cosine_scores,
            scores_ignore_vector_length,
            payload_round_trips,
            access_filter_inside_search,
            collection_filter_inside_search,
            any_shared_group_is_enough,
            empty_access_sees_nothing,
            limit_zero_returns_nothing,
            empty_store_finds_nothing,
            limit_applies_after_the_filter,
            limit_keeps_the_best_visible,
            vectors_come_back_in_order_unknown_ids_left_out,
            passages_come_back_by_id_unknown_ids_left_out,
            reupsert_does_not_duplicate,
            reupsert_replaces_payload_and_vectors,
            delete_keeps_only_the_given_version,
            delete_all_versions,
            delete_leaves_other_documents,
            deleted_chunks_are_neither_found_nor_returned,
            delete_of_unknown_document_is_a_no_op,
            counts_per_document,
            wrong_dimension_is_refused,
        );
    };
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;
            store_contract!(@all $make);

            #[test]
            fn says_it_is_not_persistent() {
                assert!(!($make)(DIM).store.persistent());
            }
        }
    };
    ($name:ident, $make:expr, persistent $(, ignore = $why:literal)?) => {
        mod $name {
            use super::*;
            store_contract!(@all $make $(, ignore = $why)?);

            #[test]
            $(#[ignore = $why])?
            fn reopen_keeps_everything_flushed() {
                super::reopen_keeps_everything_flushed(($make)(DIM));
            }
        }
    };
}

fn upsert_then_count(store: &dyn VectorStore) {
    assert_eq!(store.count().unwrap(), 0);
    store
        .upsert(&[
            (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
            (passage("a", "v1", 1, &["public"]), vec![unit(3), unit(1)]),
            (passage("b", "v1", 0, &["hr"]), vec![unit(0)]),
        ])
        .unwrap();
    // Visible at once, before any flush.
    assert_eq!(store.count().unwrap(), 3);
    store.flush().unwrap();
    assert_eq!(store.count().unwrap(), 3);
}

fn empty_upsert_changes_nothing(store: &dyn VectorStore) {
    store.upsert(&[]).unwrap();
    assert_eq!(store.count().unwrap(), 0);
    store
        .upsert(&[(passage("a", "v1", 0, &["public"]), vec![unit(0)])])
        .unwrap();
    store.upsert(&[]).unwrap();
    assert_eq!(store.count().unwrap(), 1);
}

fn flush_changes_nothing_visible(store: &dyn VectorStore) {
    store.flush().unwrap();
    let p = passage("a", "v1", 0, &["public"]);
    store.upsert(&[(p.clone(), vec![unit(2)])]).unwrap();
    let before = store.search(&unit(2), &access(&["public"]), 5).unwrap();
    store.flush().unwrap();
    store.flush().unwrap();
    let after = store.search(&unit(2), &access(&["public"]), 5).unwrap();
    assert_eq!(before, after);
    assert_eq!(after[0].0, p);
}

fn best_vector_wins_maxsim(store: &dyn VectorStore) {
    // `several` matches the query exactly with its second vector; `single` has one
    // vector at cosine 0.8, which beats the mean of `several` (0.5) but not its best.
    let several = passage("several", "v1", 0, &["public"]);
    let single = passage("single", "v1", 0, &["public"]);
    let mut near = vec![0.0; DIM];
    near[0] = 0.6;
    near[1] = 0.8;
    store
        .upsert(&[
            (several.clone(), vec![unit(3), unit(1)]),
            (single.clone(), vec![near]),
        ])
        .unwrap();
    let hits = store.search(&unit(1), &access(&["public"]), 10).unwrap();
    assert_eq!(doc_ids(&hits), ["several", "single"], "{hits:?}");
    assert!(close(hits[0].1, 1.0), "{hits:?}");
    assert!(close(hits[1].1, 0.8), "{hits:?}");
}

fn results_best_first_with_cosine_scores(store: &dyn VectorStore) {
    let items: Vec<_> = (0..7u32)
        .map(|i| {
            (
                passage(&format!("d{i}"), "v1", 0, &["public"]),
                vec![turned(0.2 * i as f32)],
            )
        })
        .rev()
        .collect();
    store.upsert(&items).unwrap();
    let hits = store.search(&unit(0), &access(&["public"]), 3).unwrap();
    assert_eq!(doc_ids(&hits), ["d0", "d1", "d2"], "{hits:?}");
    for (i, (_, score)) in hits.iter().enumerate() {
        assert!(close(*score, (0.2 * i as f32).cos()), "{hits:?}");
    }
}

fn scores_ignore_vector_length(store: &dyn VectorStore) {
    // Cosine similarity: neither the stored vectors' length nor the query's matters.
    let mut long = vec![0.0; DIM];
    long[0] = 3.0;
    long[1] = 4.0;
    store
        .upsert(&[(passage("a", "v1", 0, &["public"]), vec![long.clone()])])
        .unwrap();
    let twice: Vec<f32> = long.iter().map(|x| 2.0 * x).collect();
    let hits = store.search(&twice, &access(&["public"]), 1).unwrap();
    assert!(close(hits[0].1, 1.0), "{hits:?}");
    let hits = store
        .search(
            &[5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            &access(&["public"]),
            1,
        )
        .unwrap();
    assert!(close(hits[0].1, 0.6), "{hits:?}");
    // Stored as cosine distance stores them: scaled to unit length.
    let id = hits[0].0.point_id;
    let mut unit_long = vec![0.0; DIM];
    unit_long[0] = 0.6;
    unit_long[1] = 0.8;
    assert!(same_vectors(
        &store.vectors(&[id]).unwrap()[&id],
        &[unit_long]
    ));
}

fn payload_round_trips(store: &dyn VectorStore) {
    let mut p = passage("doc/with space", "sha256:abc", 7, &["hr", "public"]);
    p.page = None;
    p.lang = Lang::Ms;
    p.heading_path = vec!["Bab 1".into(), "Cuti – tahunan".into()];
    p.text = "Pekerja berhak 14 hari cuti.\n\t\"quoted\" — ünïcödé".into();
    p.char_start = 1_000_000;
    p.char_end = 1_000_042;
    p.title = String::new();
    store.upsert(&[(p.clone(), vec![unit(4)])]).unwrap();
    let hits = store.search(&unit(4), &access(&["public"]), 1).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, p);
}

fn access_filter_inside_search(store: &dyn VectorStore) {
    // The hr chunk is the best match for unit(0), yet a public caller never sees it and
    // an hr caller sees only it.
    store
        .upsert(&[
            (passage("a", "v1", 0, &["public"]), vec![turned(0.5)]),
            (passage("a", "v1", 1, &["public"]), vec![unit(3)]),
            (passage("b", "v1", 0, &["hr"]), vec![unit(0)]),
        ])
        .unwrap();
    let hits = store.search(&unit(0), &access(&["public"]), 10).unwrap();
    assert_eq!(doc_ids(&hits), ["a", "a"], "{hits:?}");
    let hits = store.search(&unit(0), &access(&["hr"]), 10).unwrap();
    assert_eq!(doc_ids(&hits), ["b"], "{hits:?}");
    let hits = store.search(&unit(0), &access(&["finance"]), 10).unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let hits = store
        .search(&unit(0), &access(&["hr", "public"]), 10)
        .unwrap();
    assert_eq!(doc_ids(&hits), ["b", "a", "a"], "{hits:?}");
}

fn collection_filter_inside_search(store: &dyn VectorStore) {
    // The best match for unit(0) is in HR; kept to Kewangan, the search still fills its
    // one place with Kewangan's chunk (the filter is inside, not after, the top-k).
    let in_collection = |doc: &str, c: &str, v: Vec<f32>| {
        let mut p = passage(doc, "v1", 0, &["public"]);
        p.collection = Some(c.to_string());
        (p, vec![v])
    };
    store
        .upsert(&[
            in_collection("hr", "HR", unit(0)),
            in_collection("kew", "Kewangan", turned(0.9)),
            (passage("none", "v1", 0, &["public"]), vec![unit(0)]),
        ])
        .unwrap();
    let public = access(&["public"]);
    let within = |c: &str| public.clone().within(Some(c.to_string()));
    let hits = store.search(&unit(0), &within("Kewangan"), 1).unwrap();
    assert_eq!(doc_ids(&hits), ["kew"], "{hits:?}");
    let hits = store.search(&unit(0), &within("HR"), 10).unwrap();
    assert_eq!(doc_ids(&hits), ["hr"], "{hits:?}");
    assert!(store
        .search(&unit(0), &within("Arkib"), 10)
        .unwrap()
        .is_empty());
    // Narrowed, an administrator's search keeps to the collection too.
    let hits = store
        .search(
            &unit(0),
            &Access::everything().within(Some("HR".into())),
            10,
        )
        .unwrap();
    assert_eq!(doc_ids(&hits), ["hr"], "{hits:?}");
    assert_eq!(store.search(&unit(0), &public, 10).unwrap().len(), 3);
}

fn any_shared_group_is_enough(store: &dyn VectorStore) {
    store
        .upsert(&[
            (passage("both", "v1", 0, &["hr", "finance"]), vec![unit(0)]),
            (passage("none", "v1", 0, &[]), vec![unit(0)]),
        ])
        .unwrap();
    for groups in [&["hr"][..], &["finance"][..], &["finance", "legal"][..]] {
        let hits = store.search(&unit(0), &access(groups), 10).unwrap();
        assert_eq!(doc_ids(&hits), ["both"], "{groups:?}: {hits:?}");
    }
    // A chunk without groups is visible to no group, only to an administrator.
    let hits = store
        .search(&unit(0), &access(&["public", "legal"]), 10)
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let hits = store.search(&unit(0), &Access::everything(), 10).unwrap();
    let mut seen = doc_ids(&hits);
    seen.sort();
    assert_eq!(seen, ["both", "none"]);
}

fn empty_access_sees_nothing(store: &dyn VectorStore) {
    store
        .upsert(&[(passage("a", "v1", 0, &["public"]), vec![unit(0)])])
        .unwrap();
    let nobody = Access::for_groups(Vec::<String>::new()).unwrap();
    assert!(store.search(&unit(0), &nobody, 10).unwrap().is_empty());
}

fn limit_zero_returns_nothing(store: &dyn VectorStore) {
    store
        .upsert(&[(passage("a", "v1", 0, &["public"]), vec![unit(0)])])
        .unwrap();
    assert!(store
        .search(&unit(0), &access(&["public"]), 0)
        .unwrap()
        .is_empty());
}

fn empty_store_finds_nothing(store: &dyn VectorStore) {
    assert!(store
        .search(&unit(0), &access(&["public"]), 10)
        .unwrap()
        .is_empty());
    assert!(store.vectors(&[1, 2, 3]).unwrap().is_empty());
    assert_eq!(store.count_document("a").unwrap(), 0);
}

fn limit_applies_after_the_filter(store: &dyn VectorStore) {
    // A needle: the one visible chunk, a poor match, among 200 invisible exact matches.
    let mut items: Vec<_> = (0..200)
        .map(|i| (passage("secret", "v1", i, &["hr"]), vec![unit(0)]))
        .collect();
    let needle = passage("needle", "v1", 0, &["public"]);
    items.push((needle.clone(), vec![turned(1.2)]));
    store.upsert(&items).unwrap();
    store.flush().unwrap();
    let hits = store.search(&unit(0), &access(&["public"]), 5).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].0, needle);
    assert!(close(hits[0].1, 1.2f32.cos()), "{hits:?}");
}

fn limit_keeps_the_best_visible(store: &dyn VectorStore) {
    // 7 visible chunks of decreasing similarity among 200 invisible better ones: the
    // first 5 visible come back, best first.
    let mut items: Vec<_> = (0..200)
        .map(|i| (passage("secret", "v1", i, &["hr"]), vec![unit(0)]))
        .collect();
    for i in 0..7u32 {
        items.push((
            passage(&format!("p{i}"), "v1", 0, &["public"]),
            vec![turned(0.1 + 0.2 * i as f32)],
        ));
    }
    store.upsert(&items).unwrap();
    let hits = store.search(&unit(0), &access(&["public"]), 5).unwrap();
    assert_eq!(doc_ids(&hits), ["p0", "p1", "p2", "p3", "p4"], "{hits:?}");
}

fn vectors_come_back_in_order_unknown_ids_left_out(store: &dyn VectorStore) {
    let several = passage("a", "v1", 1, &["public"]);
    let vectors = vec![unit(3), unit(1), turned(0.7), unit(5)];
    let one = passage("a", "v1", 0, &["hr"]);
    store
        .upsert(&[
            (one.clone(), vec![unit(0)]),
            (several.clone(), vectors.clone()),
        ])
        .unwrap();
    let got = store.vectors(&[several.point_id, 12345]).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(same_vectors(&got[&several.point_id], &vectors), "{got:?}");
    // Whatever the access groups: this is not a search.
    let got = store.vectors(&[one.point_id, several.point_id]).unwrap();
    assert_eq!(got.len(), 2);
    assert!(same_vectors(&got[&one.point_id], &[unit(0)]), "{got:?}");
    assert!(store.vectors(&[]).unwrap().is_empty());
}

fn passages_come_back_by_id_unknown_ids_left_out(store: &dyn VectorStore) {
    let hr = passage("a", "v1", 0, &["hr"]);
    let public = passage("a", "v1", 1, &["public", "hr"]);
    store
        .upsert(&[(hr.clone(), vec![unit(0)]), (public.clone(), vec![unit(1)])])
        .unwrap();
    // Whatever the access groups: this is not a search.
    let got = store
        .passages(&[hr.point_id, public.point_id, 12345])
        .unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[&hr.point_id], hr);
    assert_eq!(got[&public.point_id], public);
    assert!(store.passages(&[]).unwrap().is_empty());
}

fn reupsert_does_not_duplicate(store: &dyn VectorStore) {
    let items = vec![
        (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
        (passage("a", "v1", 1, &["public"]), vec![unit(1)]),
        (passage("b", "v1", 0, &["public"]), vec![unit(2)]),
    ];
    store.upsert(&items).unwrap();
    store.upsert(&items).unwrap();
    store.upsert(&items[1..2]).unwrap();
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(store.count_document("a").unwrap(), 2);
    let hits = store.search(&unit(1), &access(&["public"]), 10).unwrap();
    assert_eq!(hits.len(), 3, "{hits:?}");
}

fn reupsert_replaces_payload_and_vectors(store: &dyn VectorStore) {
    let old = passage("a", "v1", 0, &["public"]);
    store.upsert(&[(old.clone(), vec![unit(0)])]).unwrap();
    let mut new = old.clone();
    new.groups = vec!["hr".into()];
    new.text = "replaced".into();
    store
        .upsert(&[(new.clone(), vec![unit(1), unit(2)])])
        .unwrap();
    assert_eq!(store.count().unwrap(), 1);
    assert!(store
        .search(&unit(0), &access(&["public"]), 10)
        .unwrap()
        .is_empty());
    let hits = store.search(&unit(2), &access(&["hr"]), 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, new);
    assert!(close(hits[0].1, 1.0), "{hits:?}");
    let got = store.vectors(&[old.point_id]).unwrap();
    assert!(same_vectors(&got[&old.point_id], &[unit(1), unit(2)]));
}

fn delete_keeps_only_the_given_version(store: &dyn VectorStore) {
    store
        .upsert(&[
            (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
            (passage("a", "v1", 1, &["public"]), vec![unit(1)]),
            (passage("a", "v2", 0, &["public"]), vec![unit(2)]),
            (passage("a", "v3", 0, &["public"]), vec![unit(3)]),
        ])
        .unwrap();
    assert_eq!(store.count_document("a").unwrap(), 4);
    store.delete_document("a", Some("v2")).unwrap();
    assert_eq!(store.count_document("a").unwrap(), 1);
    let hits = store.search(&unit(2), &access(&["public"]), 10).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].0.version, "v2");
    // Keeping a version the document does not have removes all of it.
    store.delete_document("a", Some("v9")).unwrap();
    assert_eq!(store.count_document("a").unwrap(), 0);
}

fn delete_all_versions(store: &dyn VectorStore) {
    store
        .upsert(&[
            (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
            (passage("a", "v2", 0, &["hr"]), vec![unit(1)]),
        ])
        .unwrap();
    store.delete_document("a", None).unwrap();
    assert_eq!(store.count_document("a").unwrap(), 0);
    assert_eq!(store.count().unwrap(), 0);
}

fn delete_leaves_other_documents(store: &dyn VectorStore) {
    store
        .upsert(&[
            (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
            (passage("ab", "v1", 0, &["public"]), vec![unit(0)]),
            (passage("b", "v2", 0, &["public"]), vec![unit(0)]),
        ])
        .unwrap();
    store.delete_document("a", None).unwrap();
    store.delete_document("b", Some("v2")).unwrap();
    assert_eq!(store.count().unwrap(), 2);
    let hits = store.search(&unit(0), &access(&["public"]), 10).unwrap();
    let mut ids = doc_ids(&hits);
    ids.sort();
    assert_eq!(ids, ["ab", "b"], "{hits:?}");
}

fn deleted_chunks_are_neither_found_nor_returned(store: &dyn VectorStore) {
    let gone = passage("a", "v1", 0, &["public"]);
    let kept = passage("a", "v2", 0, &["public"]);
    store
        .upsert(&[
            (gone.clone(), vec![unit(0)]),
            (kept.clone(), vec![turned(0.3)]),
        ])
        .unwrap();
    store.delete_document("a", Some("v2")).unwrap();
    let hits = store.search(&unit(0), &access(&["public"]), 10).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].0, kept);
    let got = store.vectors(&[gone.point_id, kept.point_id]).unwrap();
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [kept.point_id]);
    // Deleted and stored again: back.
    store.upsert(&[(gone.clone(), vec![unit(0)])]).unwrap();
    let hits = store.search(&unit(0), &access(&["public"]), 1).unwrap();
    assert_eq!(hits[0].0, gone);
}

fn delete_of_unknown_document_is_a_no_op(store: &dyn VectorStore) {
    store.delete_document("nothing", None).unwrap();
    store
        .upsert(&[(passage("a", "v1", 0, &["public"]), vec![unit(0)])])
        .unwrap();
    store.delete_document("nothing", Some("v1")).unwrap();
    store.delete_document("nothing", None).unwrap();
    assert_eq!(store.count().unwrap(), 1);
}

fn counts_per_document(store: &dyn VectorStore) {
    store
        .upsert(&[
            (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
            (passage("a", "v1", 1, &["public"]), vec![unit(1), unit(2)]),
            (passage("a", "v2", 0, &["hr"]), vec![unit(2)]),
            (passage("b", "v1", 0, &["hr"]), vec![unit(3)]),
        ])
        .unwrap();
    // Chunks, not vectors; all versions; whatever their groups.
    assert_eq!(store.count_document("a").unwrap(), 3);
    assert_eq!(store.count_document("b").unwrap(), 1);
    assert_eq!(store.count_document("c").unwrap(), 0);
    // Exact ids only: no prefix match.
    assert_eq!(store.count_document("").unwrap(), 0);
    assert_eq!(store.count().unwrap(), 4);
}

fn wrong_dimension_is_refused(store: &dyn VectorStore) {
    let p = passage("a", "v1", 0, &["public"]);
    assert!(store
        .upsert(&[(p.clone(), vec![vec![1.0; DIM + 1]])])
        .is_err());
    assert!(store
        .upsert(&[(p.clone(), vec![unit(0), vec![1.0; DIM - 1]])])
        .is_err());
    assert_eq!(store.count().unwrap(), 0);
    store.upsert(&[(p, vec![unit(0)])]).unwrap();
    assert!(store
        .search(&[1.0; DIM + 1], &access(&["public"]), 5)
        .is_err());
}

/// Everything flushed is still there after the store is dropped and opened again:
/// chunks, payloads, vectors, counts, deletions, and the access filter.
fn reopen_keeps_everything_flushed(fixture: Fixture) {
    let Fixture {
        store,
        reopen,
        _server_side,
        _dir,
    } = fixture;
    assert!(store.persistent());
    let reopen = reopen.expect("a persistent store's fixture can reopen it");
    let mut ms = passage("a", "v2", 1, &["hr", "public"]);
    ms.lang = Lang::Ms;
    ms.page = None;
    let items = vec![
        (passage("a", "v1", 0, &["public"]), vec![unit(0)]),
        (passage("a", "v2", 0, &["public"]), vec![unit(1), unit(2)]),
        (ms, vec![unit(3), turned(0.4), unit(5)]),
        (passage("b", "v1", 0, &["hr"]), vec![unit(0)]),
        (passage("c", "v1", 0, &["public"]), vec![unit(6)]),
    ];
    store.upsert(&items).unwrap();
    store.delete_document("a", Some("v2")).unwrap();
    store.delete_document("c", None).unwrap();
    store.flush().unwrap();
    drop(store);

    let store = reopen();
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(store.count_document("a").unwrap(), 2);
    assert_eq!(store.count_document("b").unwrap(), 1);
    assert_eq!(store.count_document("c").unwrap(), 0);
    let ids: Vec<u64> = items.iter().map(|(p, _)| p.point_id).collect();
    let got = store.vectors(&ids).unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    for (p, v) in &items[1..4] {
        assert!(same_vectors(&got[&p.point_id], v), "{got:?}");
    }
    let hits = store.search(&unit(2), &access(&["public"]), 1).unwrap();
    assert_eq!(hits[0].0, items[1].0);
    let hits = store.search(&unit(5), &access(&["hr"]), 1).unwrap();
    assert_eq!(hits[0].0, items[2].0);
    let hits = store.search(&unit(0), &access(&["public"]), 10).unwrap();
    assert!(hits.iter().all(|(p, _)| p.doc_id == "a"), "{hits:?}");
    let hits = store.search(&unit(0), &access(&["hr"]), 1).unwrap();
    assert_eq!(hits[0].0, items[3].0);
    // And it keeps working: writes after the reopen.
    store
        .upsert(&[(passage("d", "v1", 0, &["public"]), vec![unit(7)])])
        .unwrap();
    assert_eq!(store.count().unwrap(), 4);
}

store_contract!(edge, |dim| opened(StoreKind::Edge, dim), persistent);
store_contract!(memory, |dim| opened(StoreKind::Memory, dim));
store_contract!(
    qdrant,
    |dim| opened(StoreKind::Qdrant, dim),
    persistent,
    ignore = "needs a Qdrant server: QDRANT_URL (the test command runs it when set)"
);
