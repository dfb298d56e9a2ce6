//! The BM25 side of hybrid search: a tantivy index over the same chunks as the vector
//! store. Only this module knows tantivy.
//!
//! Text is analysed by Tanya itself ([`analyze`]) and indexed pre-tokenised, so indexing
//! and querying share exactly one analyser. Every chunk is indexed twice: `body_ms`
//! (Malay: the Snowball Indonesian stemmer from frostem, Malay stopwords) and `body_en`
//! (English Snowball stemmer, English stopwords). Policy documents mix both languages
//! (English loanwords in Malay text and the reverse), and a query is matched against
//! both fields, so neither language's words are lost to the other's stemmer.

use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{
    doc, DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use crate::error::{Error, Result};
use crate::index::passage::{Access, Passage};
pub use crate::text::analysis::{analyze, tokenize, Analyzer};
use crate::text::lexicon::Translation;

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::bm25("tantivy failed", TantivyFailure(e))
    }
}

/// A tantivy error as the source of [`Error::Bm25`]. Tantivy keeps the `io::Error` under
/// its I/O failures (a full disk among them) but does not expose it as `source()`; this
/// does, so [`Error::is_disk_full`] finds it by its errno. Its text then leaves the I/O
/// error to the next link of the chain instead of repeating it.
#[derive(Debug)]
struct TantivyFailure(tantivy::TantivyError);

impl TantivyFailure {
    fn io_error(&self) -> Option<&std::io::Error> {
        use tantivy::directory::error::{
            LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
        };
        use tantivy::TantivyError as T;
        match &self.0 {
            T::IoError(io)
            | T::OpenWriteError(OpenWriteError::IoError { io_error: io, .. })
            | T::OpenReadError(OpenReadError::IoError { io_error: io, .. })
            | T::OpenDirectoryError(OpenDirectoryError::IoError { io_error: io, .. })
            | T::OpenDirectoryError(OpenDirectoryError::FailedToCreateTempDir(io))
            | T::LockFailure(LockError::IoError(io), _) => Some(io.as_ref()),
            _ => None,
        }
    }
}

impl std::fmt::Display for TantivyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use tantivy::directory::error::{OpenDirectoryError, OpenReadError, OpenWriteError};
        use tantivy::TantivyError as T;
        match &self.0 {
            T::IoError(_) => write!(f, "an I/O error"),
            T::OpenWriteError(OpenWriteError::IoError { filepath, .. }) => {
                write!(f, "opening {} for writing", filepath.display())
            }
            T::OpenReadError(OpenReadError::IoError { filepath, .. }) => {
                write!(f, "opening {} for reading", filepath.display())
            }
            T::OpenDirectoryError(OpenDirectoryError::IoError { directory_path, .. }) => {
                write!(f, "opening the directory {}", directory_path.display())
            }
            T::OpenDirectoryError(OpenDirectoryError::FailedToCreateTempDir(_)) => {
                write!(f, "creating a temporary directory")
            }
            T::LockFailure(..) if self.io_error().is_some() => {
                write!(f, "acquiring the index lock")
            }
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for TantivyFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error()
            .map(|io| io as &(dyn std::error::Error + 'static))
    }
}

const TOKENIZER: &str = "tanya_pre";
const WRITER_HEAP: usize = 64 * 1024 * 1024;

/// Version of what [`indexed_text`] and [`analyze`] produce. An index written under
/// another version is re-analysed from its stored passages when opened. 2: heading path
/// indexed; 3: Malay question words ("berapa", "mengapa", …) are stopwords.
const ANALYSIS_VERSION: &str = "3";
const ANALYSIS_FILE: &str = "analysis";

/// The text of a passage that BM25 indexes: its heading path, then its text. Headings
/// name what a section is about ("Cuti Tahunan", an abstract's title) and a chunk in the
/// middle of a section would otherwise lose them; measured on SciFact, nDCG@10 0.672 →
/// 0.679 (docs/quality.md §6).
pub fn indexed_text(p: &Passage) -> String {
    let mut text = String::new();
    for h in &p.heading_path {
        text.push_str(h);
        text.push('\n');
    }
    text.push_str(&p.text);
    text
}

#[derive(Clone, Copy)]
struct Fields {
    point_id: Field,
    doc_id: Field,
    version: Field,
    groups: Field,
    body_ms: Field,
    body_en: Field,
    payload: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        point_id: b.add_u64_field("point_id", INDEXED | STORED | FAST),
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        version: b.add_text_field("version", STRING | STORED),
        groups: b.add_text_field("groups", STRING),
        body_ms: b.add_text_field("body_ms", text.clone()),
        body_en: b.add_text_field("body_en", text),
        payload: b.add_text_field("payload", STORED),
    };
    (b.build(), fields)
}

/// The term a chunk of `collection` carries in the groups field: led by a control
/// character, which no group name may hold, so no group ever matches it.
fn collection_term(collection: &str) -> String {
    format!("\u{1}collection:{collection}")
}

/// The BM25 index of the chunks.
pub struct Bm25Index {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl Bm25Index {
    /// Opens the index in `dir`, creating it if the directory holds none.
    pub fn open_in_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let (schema, fields) = schema();
        let index = if dir.join("meta.json").is_file() {
            let index = Index::open_in_dir(dir)?;
            if index.schema() != schema {
                return Err(Error::bm25_msg(format!(
                    "the index in {} was made by another version of Tanya; re-ingest into a new \
                     data directory",
                    dir.display()
                )));
            }
            index
        } else {
            Index::create_in_dir(dir, schema)?
        };
        let bm25 = Self::with_index(index, fields)?;
        bm25.upgrade_analysis(dir)?;
        Ok(bm25)
    }

    /// Re-analyses every stored passage when the index was written by another version of
    /// the analysis (a Tanya upgrade): the passages are in the index itself, so no file is
    /// read and nothing is embedded again. Interrupted, it simply runs again next time.
    fn upgrade_analysis(&self, dir: &Path) -> Result<()> {
        let marker = dir.join(ANALYSIS_FILE);
        let written = std::fs::read_to_string(&marker).unwrap_or_default();
        if written.trim() == ANALYSIS_VERSION {
            return Ok(());
        }
        let searcher = self.reader.searcher();
        if searcher.num_docs() > 0 {
            let started = std::time::Instant::now();
            let addresses = searcher.search(&AllQuery, &DocSetCollector)?;
            let mut passages = Vec::with_capacity(addresses.len());
            for addr in addresses {
                passages.push(self.passage_at(&searcher, addr)?);
            }
            {
                let writer = self.writer()?;
                writer.delete_all_documents()?;
            }
            self.add(&passages)?;
            self.commit()?;
            tracing::info!(
                passages = passages.len(),
                seconds = started.elapsed().as_secs_f64(),
                "BM25 index re-analysed for analysis version {ANALYSIS_VERSION}"
            );
        }
        let tmp = dir.join(format!("{ANALYSIS_FILE}.tmp"));
        std::fs::write(&tmp, ANALYSIS_VERSION)
            .and_then(|_| std::fs::rename(&tmp, &marker))
            .map_err(|e| Error::io(format!("writing {}", marker.display()), e))
    }

    fn passage_at(&self, searcher: &tantivy::Searcher, addr: DocAddress) -> Result<Passage> {
        let d: TantivyDocument = searcher.doc(addr)?;
        let json = d
            .get_first(self.fields.payload)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::bm25_msg("a document without payload"))?;
        serde_json::from_str(json).map_err(|e| Error::bm25("stored payload does not parse", e))
    }

    /// A RAM-only index, for tests.
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self> {
        index.tokenizers().register(
            TOKENIZER,
            TextAnalyzer::from(WhitespaceTokenizer::default()),
        );
        // One indexing thread: the cores belong to the embedder while ingesting.
        let writer = index.writer_with_num_threads(1, WRITER_HEAP)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Bm25Index {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>> {
        self.writer
            .lock()
            .map_err(|_| Error::bm25_msg("index writer poisoned by an earlier panic"))
    }

    /// Adds passages (visible after [`Self::commit`]).
    pub fn add(&self, passages: &[Passage]) -> Result<()> {
        let writer = self.writer()?;
        let f = self.fields;
        for p in passages {
            let text = indexed_text(p);
            let mut d = doc!(
                f.point_id => p.point_id,
                f.doc_id => p.doc_id.as_str(),
                f.version => p.version.as_str(),
                f.body_ms => analyze(&text, Analyzer::Malay).join(" "),
                f.body_en => analyze(&text, Analyzer::English).join(" "),
                f.payload => serde_json::to_string(p).map_err(|e| Error::bm25("serialising a passage", e))?,
            );
            for g in &p.groups {
                d.add_text(f.groups, g);
            }
            if let Some(c) = &p.collection {
                d.add_text(f.groups, collection_term(c));
            }
            writer.add_document(d)?;
        }
        Ok(())
    }

    /// Deletes every chunk of `doc_id` except those of `keep_version` (visible after commit).
    pub fn delete_document(&self, doc_id: &str, keep_version: Option<&str>) -> Result<()> {
        let writer = self.writer()?;
        let doc_term = Term::from_field_text(self.fields.doc_id, doc_id);
        match keep_version {
            None => {
                writer.delete_term(doc_term);
            }
            Some(v) => {
                let q = BooleanQuery::new(vec![
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(doc_term, IndexRecordOption::Basic))
                            as Box<dyn Query>,
                    ),
                    (
                        Occur::MustNot,
                        Box::new(TermQuery::new(
                            Term::from_field_text(self.fields.version, v),
                            IndexRecordOption::Basic,
                        )),
                    ),
                ]);
                writer.delete_query(Box::new(q))?;
            }
        }
        Ok(())
    }

    /// Makes all changes durable and visible to searches.
    pub fn commit(&self) -> Result<()> {
        self.writer()?.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Drops uncommitted changes.
    pub fn rollback(&self) -> Result<()> {
        self.writer()?.rollback()?;
        Ok(())
    }

    fn access_query(&self, access: &Access) -> Box<dyn Query> {
        let groups = self.groups_query(access);
        let Some(collection) = access.collection() else {
            return groups;
        };
        let within: Box<dyn Query> = Box::new(TermQuery::new(
            Term::from_field_text(self.fields.groups, &collection_term(collection)),
            IndexRecordOption::Basic,
        ));
        Box::new(ConstScoreQuery::new(
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, groups),
                (Occur::Must, within),
            ])),
            0.0,
        ))
    }

    fn groups_query(&self, access: &Access) -> Box<dyn Query> {
        if access.is_everything() {
            return Box::new(ConstScoreQuery::new(Box::new(AllQuery), 0.0));
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = access
            .groups()
            .map(|g| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.fields.groups, g),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                )
            })
            .collect();
        // Constant score 0: the filter decides visibility, never ranking.
        Box::new(ConstScoreQuery::new(
            Box::new(BooleanQuery::new(clauses)),
            0.0,
        ))
    }

    /// BM25 top `limit` passages for `query` among those `access` may see.
    pub fn search(
        &self,
        query: &str,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        if access.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut terms: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, analyzer) in [
            (self.fields.body_ms, Analyzer::Malay),
            (self.fields.body_en, Analyzer::English),
        ] {
            let mut seen = std::collections::HashSet::new();
            for t in analyze(query, analyzer) {
                if seen.insert(t.clone()) {
                    terms.push((
                        Occur::Should,
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, &t),
                            IndexRecordOption::WithFreqs,
                        )),
                    ));
                }
            }
        }
        self.top(terms, access, limit)
    }

    /// BM25 top `limit` passages for a question carried into the other language: each
    /// slot scores once, by the best of its alternatives (an alternative of several
    /// words needs all of them), in the field of the language it was carried into.
    pub fn search_translated(
        &self,
        translation: &Translation,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        if access.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let field = match translation.to {
            Analyzer::Malay => self.fields.body_ms,
            Analyzer::English => self.fields.body_en,
        };
        let term = |w: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, w),
                IndexRecordOption::WithFreqs,
            ))
        };
        let mut slots: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for slot in &translation.slots {
            let mut alternatives: Vec<Box<dyn Query>> = slot
                .alternatives
                .iter()
                .filter(|a| !a.is_empty())
                .map(|a| match a.as_slice() {
                    [w] => term(w),
                    words => Box::new(BooleanQuery::new(
                        words.iter().map(|w| (Occur::Must, term(w))).collect(),
                    )) as Box<dyn Query>,
                })
                .collect();
            match alternatives.len() {
                0 => {}
                1 => slots.push((Occur::Should, alternatives.remove(0))),
                _ => slots.push((
                    Occur::Should,
                    Box::new(DisjunctionMaxQuery::new(alternatives)),
                )),
            }
        }
        self.top(slots, access, limit)
    }

    /// The best `limit` passages that match one of `terms` and that `access` may see.
    fn top(
        &self,
        terms: Vec<(Occur, Box<dyn Query>)>,
        access: &Access,
        limit: usize,
    ) -> Result<Vec<(Passage, f32)>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(BooleanQuery::new(terms)) as Box<dyn Query>,
            ),
            (Occur::Must, self.access_query(access)),
        ]);
        let searcher = self.reader.searcher();
        let top = searcher.search(&q, &TopDocs::with_limit(limit).order_by_score())?;
        top.into_iter()
            .map(|(score, addr)| Ok((self.passage_at(&searcher, addr)?, score)))
            .collect()
    }

    /// The committed passages of `doc_id` (every version), in no order.
    pub fn passages_of(&self, doc_id: &str) -> Result<Vec<Passage>> {
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_id, doc_id),
            IndexRecordOption::Basic,
        );
        let searcher = self.reader.searcher();
        let addresses = searcher.search(&q, &DocSetCollector)?;
        addresses
            .into_iter()
            .map(|addr| self.passage_at(&searcher, addr))
            .collect()
    }

    /// Number of committed chunks of `doc_id`.
    pub fn count_document(&self, doc_id: &str) -> Result<usize> {
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_id, doc_id),
            IndexRecordOption::Basic,
        );
        Ok(self.reader.searcher().search(&q, &Count)?)
    }

    /// Number of committed chunks.
    pub fn count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn index(&self) -> &Index {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::store::contract_tests::passage;

    #[test]
    fn a_tantivy_io_error_is_the_source_and_a_full_disk_is_seen_by_errno() {
        use std::error::Error as _;
        let e = Error::from(tantivy::TantivyError::from(
            std::io::Error::from_raw_os_error(28),
        ));
        assert!(matches!(e, Error::Bm25 { .. }), "{e:?}");
        assert!(e.is_disk_full(), "{e:?}");
        let io = e
            .source()
            .and_then(|s| s.source())
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io::Error under tantivy's error is in the chain");
        assert_eq!(io.raw_os_error(), Some(28));
        // The I/O error's text appears once in the chain.
        let text = std::io::Error::from_raw_os_error(28).to_string();
        assert_eq!(
            e.full_message().matches(&text).count(),
            1,
            "{}",
            e.full_message()
        );

        let open = Error::from(tantivy::TantivyError::from(
            tantivy::directory::error::OpenWriteError::wrap_io_error(
                std::io::Error::from(std::io::ErrorKind::StorageFull),
                "meta.json".into(),
            ),
        ));
        assert!(open.is_disk_full(), "{open:?}");

        let other = Error::from(tantivy::TantivyError::InvalidArgument("x".into()));
        assert!(!other.is_disk_full());
        assert!(
            other
                .full_message()
                .contains("An invalid argument was passed"),
            "{}",
            other.full_message()
        );
    }

    #[test]
    fn tokenize_and_analyze() {
        assert_eq!(tokenize("RM 5,000 sebulan."), vec!["rm", "5000", "sebulan"]);
        assert_eq!(
            tokenize("kanak-kanak, 3.5"),
            vec!["kanak", "kanak", "3", "5"]
        );
        let ms = analyze("Pekerjaan yang diluluskan untuk bercuti", Analyzer::Malay);
        assert_eq!(ms, vec!["kerja", "lulus", "cuti"]);
        let en = analyze("The employees are claiming allowances", Analyzer::English);
        assert_eq!(en, vec!["employe", "claim", "allow"]);
    }

    fn with_text(mut p: Passage, text: &str) -> Passage {
        p.text = text.into();
        p
    }

    #[test]
    fn search_filters_inside_and_replaces_versions() {
        let idx = Bm25Index::in_memory().unwrap();
        idx.add(&[
            with_text(
                passage("leave", "v1", 0, &["public"]),
                "Cuti tahunan ialah 14 hari bekerja.",
            ),
            with_text(
                passage("pay", "v1", 0, &["hr"]),
                "Cuti tahunan gaji pengarah: rahsia.",
            ),
            with_text(
                passage("it", "v1", 0, &["public"]),
                "Passwords must have 12 characters.",
            ),
        ])
        .unwrap();
        idx.commit().unwrap();
        let public = Access::for_groups(["public"]).unwrap();
        let hits = idx
            .search("berapa hari cuti tahunan?", &public, 10)
            .unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].0.doc_id, "leave");
        let hr = Access::for_groups(["hr", "public"]).unwrap();
        assert_eq!(idx.search("cuti tahunan", &hr, 10).unwrap().len(), 2);
        let hits = idx.search("password length", &public, 10).unwrap();
        assert_eq!(hits[0].0.doc_id, "it");

        idx.add(&[with_text(
            passage("leave", "v2", 0, &["public"]),
            "Cuti tahunan ialah 16 hari.",
        )])
        .unwrap();
        idx.delete_document("leave", Some("v2")).unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.count_document("leave").unwrap(), 1);
        let hits = idx.search("cuti", &public, 10).unwrap();
        assert_eq!(hits[0].0.version, "v2");
        idx.delete_document("leave", None).unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.count_document("leave").unwrap(), 0);
        assert_eq!(idx.count(), 2);
    }

    #[test]
    fn a_collection_narrows_inside_the_search_and_is_no_group() {
        let dir = tempfile::tempdir().unwrap();
        let idx = Bm25Index::open_in_dir(dir.path()).unwrap();
        let mut passages = Vec::new();
        for i in 0..30 {
            let mut p = with_text(
                passage(&format!("hr{i}"), "v1", 0, &["public"]),
                "Cuti tahunan cuti tahunan cuti tahunan ialah 20 hari.",
            );
            p.collection = Some("HR".into());
            passages.push(p);
        }
        let mut kew = with_text(
            passage("kew", "v1", 0, &["public"]),
            "Cuti tahunan staf kewangan ialah 18 hari.",
        );
        kew.collection = Some("Kewangan".into());
        passages.push(kew);
        idx.add(&passages).unwrap();
        idx.commit().unwrap();
        let public = Access::for_groups(["public"]).unwrap();
        // Thirty better matches in HR do not crowd it out of one place.
        let hits = idx
            .search(
                "cuti tahunan",
                &public.clone().within(Some("Kewangan".into())),
                1,
            )
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0.doc_id, "kew");
        let hits = idx
            .search(
                "cuti tahunan",
                &Access::everything().within(Some("HR".into())),
                50,
            )
            .unwrap();
        assert_eq!(hits.len(), 30);
        // The collection's term is never a group: a caller "in" it sees nothing.
        let sneaky = Access::for_groups(["collection:HR"]).unwrap();
        assert!(idx.search("cuti tahunan", &sneaky, 50).unwrap().is_empty());
        assert!(Access::for_groups(["\u{1}collection:HR"]).is_err());
    }

    #[test]
    fn headings_are_searchable_and_old_indexes_are_reanalysed() {
        let dir = tempfile::tempdir().unwrap();
        let public = Access::for_groups(["public"]).unwrap();
        let mut p = with_text(
            passage("leave", "v1", 0, &["public"]),
            "Pekerja layak mendapat 16 hari.",
        );
        p.heading_path = vec!["Cuti Tahunan".into()];
        {
            let idx = Bm25Index::open_in_dir(dir.path()).unwrap();
            // Written as analysis version 1 did: the passage text only.
            let f = idx.fields;
            let mut d = doc!(
                f.point_id => p.point_id,
                f.doc_id => p.doc_id.as_str(),
                f.version => p.version.as_str(),
                f.body_ms => analyze(&p.text, Analyzer::Malay).join(" "),
                f.body_en => analyze(&p.text, Analyzer::English).join(" "),
                f.payload => serde_json::to_string(&p).unwrap(),
            );
            d.add_text(f.groups, "public");
            idx.writer().unwrap().add_document(d).unwrap();
            idx.commit().unwrap();
            assert!(idx.search("cuti tahunan", &public, 5).unwrap().is_empty());
        }
        std::fs::write(dir.path().join(ANALYSIS_FILE), "1").unwrap();
        let idx = Bm25Index::open_in_dir(dir.path()).unwrap();
        let hits = idx.search("cuti tahunan", &public, 5).unwrap();
        assert_eq!(hits.len(), 1, "the heading is indexed after the upgrade");
        assert_eq!(hits[0].0.text, p.text);
        assert_eq!(idx.count(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(ANALYSIS_FILE)).unwrap(),
            ANALYSIS_VERSION
        );
    }
}
