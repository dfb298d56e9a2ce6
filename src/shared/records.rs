//! The index's records in the shared database: what a data directory keeps in
//! `manifest.json`/`manifest.log`, `pending/`, `texts/` and `vectors/qdrant.json`, for
//! replicas that keep none of it themselves (`crate::index::collection` decides what the
//! records mean; this only stores them).
//!
//! - `tanya_documents`: one row per document ever acknowledged: its entry (JSON) and
//!   version, or none once it is removed, and the generation that last changed it.
//! - `tanya_generation`: one row, the generation of the last commit. A commit takes the
//!   next one under a row lock, so commits are numbered in the order they become visible,
//!   and a replica that has seen generation `g` catches up by reading the rows changed
//!   after `g`.
//! - `tanya_pending`: write intents (document, version being written).
//! - `tanya_texts`: each acknowledged version's extracted text (JSON).
//! - `tanya_meta`: the embedder identity and the vector store's binding.

use std::sync::Arc;

use super::{lease_held, Pg};
use crate::error::{Error, Result};

/// The records' tables, step by step (see [`Pg::migrate`]).
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE tanya_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE tanya_generation (
         one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), gen BIGINT NOT NULL);
     INSERT INTO tanya_generation (one, gen) VALUES (TRUE, 0);
     CREATE TABLE tanya_documents (
         doc_id TEXT PRIMARY KEY, version TEXT, entry TEXT, gen BIGINT NOT NULL);
     CREATE INDEX tanya_documents_gen ON tanya_documents (gen);
     CREATE TABLE tanya_pending (doc_id TEXT PRIMARY KEY, version TEXT NOT NULL);
     CREATE TABLE tanya_texts (
         doc_id TEXT NOT NULL, version TEXT NOT NULL, body TEXT NOT NULL,
         PRIMARY KEY (doc_id, version));",
];

/// One commit's changes: entries (JSON) to acknowledge, documents to forget.
#[derive(Debug, Default)]
pub struct Changes {
    /// `(doc_id, version, entry as JSON)`.
    pub put: Vec<(String, String, String)>,
    pub remove: Vec<String>,
}

/// What changed after a generation: `(doc_id, entry as JSON or None when removed)`.
pub type Changed = Vec<(String, Option<String>)>;

/// The records of the one index the shared database holds.
#[derive(Clone, Debug)]
pub struct Records {
    pg: Arc<Pg>,
}

impl Records {
    pub fn new(pg: Arc<Pg>) -> Records {
        Records { pg }
    }

    pub fn pg(&self) -> &Arc<Pg> {
        &self.pg
    }

    /// A value of `tanya_meta`.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.pg.with("reading the index's settings", |c| {
            c.query_opt("SELECT value FROM tanya_meta WHERE key = $1", &[&key])
                .map(|r| r.map(|r| r.get(0)))
        })
    }

    /// Sets `key` unless it is set; returns the value it has afterwards.
    pub fn meta_if_absent(&self, key: &str, value: &str) -> Result<String> {
        self.pg.with("recording the index's settings", |c| {
            c.execute(
                "INSERT INTO tanya_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )?;
            c.query_one("SELECT value FROM tanya_meta WHERE key = $1", &[&key])
                .map(|r| r.get(0))
        })
    }

    /// The generation of the last commit.
    pub fn generation(&self) -> Result<i64> {
        self.pg.with("reading the index's generation", |c| {
            c.query_one("SELECT gen FROM tanya_generation", &[])
                .map(|r| r.get(0))
        })
    }

    /// The documents changed after generation `after`, and the generation they bring the
    /// reader to (read in one snapshot, so nothing between the two is missed).
    pub fn changes_since(&self, after: i64) -> Result<(i64, Changed)> {
        self.pg.with("reading acknowledged documents", |c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let gen: i64 = tx
                .query_one("SELECT gen FROM tanya_generation", &[])?
                .get(0);
            let rows = tx.query(
                "SELECT doc_id, entry FROM tanya_documents WHERE gen > $1 ORDER BY gen, doc_id",
                &[&after],
            )?;
            tx.commit()?;
            Ok((gen, rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
        })
    }

    /// Acknowledges `changes` as one transaction, refused unless the database session
    /// `lease_pid` still holds the writer lease. Returns the commit's generation.
    pub fn commit(&self, lease_pid: i32, changes: &Changes) -> Result<i64> {
        let held = std::sync::atomic::AtomicBool::new(true);
        let gen = self.pg.with("acknowledging documents", |c| {
            let mut tx = c.transaction()?;
            if !lease_held(&mut tx, lease_pid)? {
                held.store(false, std::sync::atomic::Ordering::Relaxed);
                return Ok(0);
            }
            let gen: i64 = tx
                .query_one(
                    "UPDATE tanya_generation SET gen = gen + 1 RETURNING gen",
                    &[],
                )?
                .get(0);
            for (doc_id, version, entry) in &changes.put {
                tx.execute(
                    "INSERT INTO tanya_documents (doc_id, version, entry, gen)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (doc_id) DO UPDATE
                     SET version = EXCLUDED.version, entry = EXCLUDED.entry, gen = EXCLUDED.gen",
                    &[doc_id, version, entry, &gen],
                )?;
            }
            for doc_id in &changes.remove {
                tx.execute(
                    "UPDATE tanya_documents SET version = NULL, entry = NULL, gen = $2
                     WHERE doc_id = $1",
                    &[doc_id, &gen],
                )?;
            }
            tx.commit()?;
            Ok(gen)
        })?;
        if !held.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::WriterBusy(
                "this replica's writer lease was lost (its database connection ended), so \
                 nothing of this write was acknowledged; ingest again"
                    .into(),
            ));
        }
        Ok(gen)
    }

    /// Records that `version` of `doc_id` is about to be written.
    pub fn begin_write(&self, doc_id: &str, version: &str) -> Result<()> {
        self.pg.with("recording a write intent", |c| {
            c.execute(
                "INSERT INTO tanya_pending (doc_id, version) VALUES ($1, $2)
                 ON CONFLICT (doc_id) DO UPDATE SET version = EXCLUDED.version",
                &[&doc_id, &version],
            )
        })?;
        Ok(())
    }

    /// Forgets the write intent of `doc_id`.
    pub fn end_write(&self, doc_id: &str) -> Result<()> {
        self.pg.with("clearing a write intent", |c| {
            c.execute("DELETE FROM tanya_pending WHERE doc_id = $1", &[&doc_id])
        })?;
        Ok(())
    }

    /// Every write intent: `(doc_id, version)`.
    pub fn pending(&self) -> Result<Vec<(String, String)>> {
        self.pg.with("reading write intents", |c| {
            c.query("SELECT doc_id, version FROM tanya_pending", &[])
                .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Stores a text (JSON) of `doc_id` at `version`.
    pub fn put_text(&self, doc_id: &str, version: &str, json: &str) -> Result<()> {
        self.pg.with("storing a document's text", |c| {
            c.execute(
                "INSERT INTO tanya_texts (doc_id, version, body) VALUES ($1, $2, $3)
                 ON CONFLICT (doc_id, version) DO UPDATE SET body = EXCLUDED.body",
                &[&doc_id, &version, &json],
            )
        })?;
        Ok(())
    }

    /// The text (JSON) of `doc_id` at `version`.
    pub fn text(&self, doc_id: &str, version: &str) -> Result<Option<String>> {
        self.pg.with("reading a document's text", |c| {
            c.query_opt(
                "SELECT body FROM tanya_texts WHERE doc_id = $1 AND version = $2",
                &[&doc_id, &version],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    /// Whether a text of `doc_id` at `version` is stored.
    pub fn has_text(&self, doc_id: &str, version: &str) -> Result<bool> {
        self.pg.with("looking for a document's text", |c| {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM tanya_texts WHERE doc_id = $1 AND version = $2)",
                &[&doc_id, &version],
            )
            .map(|r| r.get(0))
        })
    }

    /// Forgets the text of `doc_id` at `version`.
    pub fn remove_text(&self, doc_id: &str, version: &str) -> Result<()> {
        self.pg.with("removing a document's text", |c| {
            c.execute(
                "DELETE FROM tanya_texts WHERE doc_id = $1 AND version = $2",
                &[&doc_id, &version],
            )
        })?;
        Ok(())
    }

    /// Removes every text that is not of an acknowledged version; returns how many.
    pub fn retain_acknowledged_texts(&self) -> Result<usize> {
        self.pg.with("removing unacknowledged texts", |c| {
            c.execute(
                "DELETE FROM tanya_texts t WHERE NOT EXISTS (
                     SELECT 1 FROM tanya_documents d
                     WHERE d.doc_id = t.doc_id AND d.version = t.version)",
                &[],
            )
            .map(|n| n as usize)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::ScratchDatabase;
    use std::time::Duration;

    /// A scratch database on the test command's PostgreSQL server.
    pub(crate) fn scratch() -> ScratchDatabase {
        let admin = std::env::var("TANYA_TEST_POSTGRES").expect(
            "TANYA_TEST_POSTGRES: a PostgreSQL admin URL (scripts/setup_postgres.sh start)",
        );
        ScratchDatabase::create(&admin).unwrap()
    }

    fn put(doc: &str, version: &str) -> (String, String, String) {
        (
            doc.into(),
            version.into(),
            format!("{{\"version\":\"{version}\"}}"),
        )
    }

    #[test]
    #[ignore = "needs a PostgreSQL server: TANYA_TEST_POSTGRES (scripts/setup_postgres.sh)"]
    fn postgres_records_commit_in_order_and_readers_catch_up() {
        let db = scratch();
        let records = Records::new(Arc::new(Pg::connect(db.url()).unwrap()));
        // A second connection, as another replica has.
        let other = Records::new(Arc::new(Pg::connect(db.url()).unwrap()));
        assert_eq!(records.generation().unwrap(), 0);
        assert_eq!(
            records.meta_if_absent("embedder", "e5/384").unwrap(),
            "e5/384"
        );
        assert_eq!(
            other.meta_if_absent("embedder", "minilm/384").unwrap(),
            "e5/384"
        );
        let lease = records.pg().writer_lease(Duration::from_secs(1)).unwrap();
        let g1 = records
            .commit(
                lease.pid(),
                &Changes {
                    put: vec![put("a", "v1"), put("b", "v1")],
                    remove: vec![],
                },
            )
            .unwrap();
        let (seen, rows) = other.changes_since(0).unwrap();
        assert_eq!(seen, g1);
        assert_eq!(rows.len(), 2);
        let g2 = records
            .commit(
                lease.pid(),
                &Changes {
                    put: vec![put("a", "v2")],
                    remove: vec!["b".into()],
                },
            )
            .unwrap();
        assert_eq!(g2, g1 + 1);
        let (seen, rows) = other.changes_since(g1).unwrap();
        assert_eq!(seen, g2);
        assert_eq!(
            rows,
            vec![
                ("a".to_string(), Some("{\"version\":\"v2\"}".to_string())),
                ("b".to_string(), None),
            ]
        );
        // Texts of versions no longer acknowledged go; the acknowledged one stays.
        records.put_text("a", "v1", "{}").unwrap();
        records.put_text("a", "v2", "{\"t\":1}").unwrap();
        records.put_text("b", "v1", "{}").unwrap();
        assert_eq!(records.retain_acknowledged_texts().unwrap(), 2);
        assert_eq!(other.text("a", "v2").unwrap().as_deref(), Some("{\"t\":1}"));
        assert!(!other.has_text("a", "v1").unwrap());
        // Intents are seen by every replica.
        records.begin_write("c", "v9").unwrap();
        assert_eq!(other.pending().unwrap(), vec![("c".into(), "v9".into())]);
        other.end_write("c").unwrap();
        assert!(records.pending().unwrap().is_empty());
    }

    #[test]
    #[ignore = "needs a PostgreSQL server: TANYA_TEST_POSTGRES (scripts/setup_postgres.sh)"]
    fn postgres_writer_lease_is_exclusive_and_freed_with_its_connection() {
        let db = scratch();
        let pg = Arc::new(Pg::connect(db.url()).unwrap());
        let records = Records::new(pg.clone());
        let first = pg.writer_lease(Duration::from_secs(1)).unwrap();
        // Another replica waits, then is told why.
        let started = std::time::Instant::now();
        let e = pg.writer_lease(Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, Error::WriterBusy(_)), "{e}");
        assert!(e.is_user_error());
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Its commits are refused: it does not hold the lease.
        let mine = Changes {
            put: vec![put("a", "v1")],
            remove: vec![],
        };
        let e = records.commit(first.pid() + 100_000, &mine).unwrap_err();
        assert!(matches!(e, Error::WriterBusy(_)), "{e}");
        assert_eq!(records.generation().unwrap(), 0);
        // The writer's connection ends (as when its process is killed): the lease is
        // free, and the old holder's commits are refused.
        let old_pid = first.pid();
        pg.with("ending the lease's session", |c| {
            c.execute("SELECT pg_terminate_backend($1)", &[&old_pid])
        })
        .unwrap();
        let second = {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match pg.writer_lease(Duration::from_millis(200)) {
                    Ok(l) => break l,
                    Err(e) if std::time::Instant::now() < deadline => {
                        assert!(matches!(e, Error::WriterBusy(_)), "{e}");
                    }
                    Err(e) => panic!("the lease was not freed: {e}"),
                }
            }
        };
        assert!(matches!(
            records.commit(old_pid, &mine).unwrap_err(),
            Error::WriterBusy(_)
        ));
        records.commit(second.pid(), &mine).unwrap();
        assert_eq!(records.generation().unwrap(), 1);
        drop(first);
        drop(second);
        // Given up: the next one takes it at once.
        pg.writer_lease(Duration::from_millis(100)).unwrap();
    }
}
