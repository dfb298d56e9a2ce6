//! State that several `tanya serve` replicas share, in PostgreSQL (`[shared] postgres`,
//! docs/deploy.md): a small pool of connections, the schema (versioned per part, brought
//! up to date under a transaction-scoped advisory lock so that replicas starting together
//! do not race), the writer lease, and the index's records (`records`: acknowledged
//! documents, write intents, texts, the vector store's binding). The people (users,
//! sessions, tokens, conversations) are `crate::accounts`' own tables in the same
//! database. With `crate::accounts`, the only code that names the `postgres` crate.
//!
//! The client is the blocking `postgres` crate, which runs its own small runtime: a call
//! made on a thread that is inside a Tokio runtime is moved to a scoped thread of its own.

pub mod records;

use std::sync::Mutex;
use std::time::Duration;

use postgres::{Client, NoTls};

use crate::error::{Error, Result};

pub use records::Records;

/// Connections kept open for reuse.
const POOL: usize = 4;
/// The advisory lock key of the writer lease (any fixed 64-bit number; "tanya-wr").
const WRITER_LEASE_KEY: i64 = 0x7461_6e79_612d_7772;
/// The advisory lock key under which the schema is brought up to date.
const SCHEMA_KEY: i64 = 0x7461_6e79_612d_7363;

/// A failure of the shared database while `context`.
pub fn err(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let context = context.into();
    move |e| Error::Shared {
        context,
        source: Some(Box::new(e)),
    }
}

/// The shared database: a URL and the connections opened to it.
pub struct Pg {
    config: postgres::Config,
    /// Where it is, without the password, for messages.
    shown: String,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pg({})", self.shown)
    }
}

/// Runs `f` where the blocking client may run: here, or on a scoped thread when this
/// thread is inside a Tokio runtime (the client would otherwise refuse to block).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        f()
    }
}

impl Pg {
    /// Connects to `url` (checking that it answers) and brings the shared schema up to
    /// date.
    pub fn connect(url: &str) -> Result<Pg> {
        let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
            Error::Config(format!("shared.postgres is not a PostgreSQL URL: {e}"))
        })?;
        config
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("tanya");
        let shown = format!(
            "{}/{}",
            config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    postgres::config::Host::Tcp(h) => h.clone(),
                    postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            config.get_dbname().unwrap_or("")
        );
        let pg = Pg {
            config,
            shown,
            idle: Mutex::new(Vec::new()),
        };
        pg.migrate("records", records::SCHEMA)?;
        Ok(pg)
    }

    /// Where the database is (host and name, never the password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn open(&self) -> Result<Client> {
        let config = self.config.clone();
        off_runtime(move || config.connect(NoTls)).map_err(err(format!(
            "connecting to {} (shared.postgres)",
            self.shown
        )))
    }

    /// Runs `f` on a pooled connection. A connection found closed (the server restarted,
    /// the network dropped it) is replaced once.
    pub fn with<T: Send>(
        &self,
        context: &str,
        f: impl Fn(&mut Client) -> std::result::Result<T, postgres::Error> + Send + Sync,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            tries += 1;
            let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut client = match pooled {
                Some(c) if !c.is_closed() => c,
                _ => self.open()?,
            };
            let out = off_runtime(|| f(&mut client));
            match out {
                Err(e) if client.is_closed() && tries < 2 => {
                    tracing::warn!(error = %e, "a shared-state connection closed; retrying once");
                    continue;
                }
                out => {
                    if !client.is_closed() {
                        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                        if idle.len() < POOL {
                            idle.push(client);
                        }
                    }
                    return out.map_err(err(context));
                }
            }
        }
    }

    /// Brings `part`'s tables up to date: `steps[i]` takes it from version `i` to `i + 1`.
    /// Replicas starting together wait for each other on an advisory lock.
    pub fn migrate(&self, part: &str, steps: &[&str]) -> Result<()> {
        self.with(&format!("bringing the {part} tables up to date"), |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_KEY])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS tanya_schema (
                     part TEXT PRIMARY KEY, version INTEGER NOT NULL)",
            )?;
            let at: i32 = tx
                .query_opt("SELECT version FROM tanya_schema WHERE part = $1", &[&part])?
                .map(|r| r.get(0))
                .unwrap_or(0);
            for (i, step) in steps.iter().enumerate().skip(at.max(0) as usize) {
                tx.batch_execute(step)?;
                let v = i as i32 + 1;
                tx.execute(
                    "INSERT INTO tanya_schema (part, version) VALUES ($1, $2)
                     ON CONFLICT (part) DO UPDATE SET version = EXCLUDED.version",
                    &[&part, &v],
                )?;
            }
            tx.commit()
        })
    }

    /// Takes the writer lease: one replica writes to the index at a time. Waits up to
    /// `wait` for a replica that holds it, then fails with [`Error::WriterBusy`]. The
    /// lease is a session advisory lock on a connection of its own, so PostgreSQL frees
    /// it when that connection ends, also when the writer is killed.
    pub fn writer_lease(&self, wait: Duration) -> Result<Lease> {
        let mut client = self.open()?;
        let ms = wait.as_millis().max(1) as u64;
        let taken = off_runtime(|| -> std::result::Result<bool, postgres::Error> {
            client.batch_execute(&format!("SET lock_timeout = {ms}"))?;
            match client.execute("SELECT pg_advisory_lock($1)", &[&WRITER_LEASE_KEY]) {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
        .map_err(err("taking the writer lease"))?;
        if !taken {
            return Err(Error::WriterBusy(format!(
                "waited {} s for it (shared.lease_wait_secs); try again later",
                wait.as_secs()
            )));
        }
        let pid: i32 = off_runtime(|| client.query_one("SELECT pg_backend_pid()", &[]))
            .map_err(err("reading the writer lease's session"))?
            .get(0);
        Ok(Lease {
            client: Mutex::new(client),
            pid,
        })
    }
}

/// The writer lease, held while this lives (see [`Pg::writer_lease`]).
pub struct Lease {
    client: Mutex<Client>,
    /// The database session holding it: a commit checks that this session still holds
    /// the lock (a lease lost with its connection is not written under).
    pid: i32,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease(pid {})", self.pid)
    }
}

impl Lease {
    /// The database session that holds the lease.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ =
            off_runtime(|| client.execute("SELECT pg_advisory_unlock($1)", &[&WRITER_LEASE_KEY]));
    }
}

/// Whether the database session `pid` still holds the writer lease: checked inside every
/// commit's transaction.
pub(crate) fn lease_held(
    tx: &mut postgres::Transaction<'_>,
    pid: i32,
) -> std::result::Result<bool, postgres::Error> {
    // A 64-bit advisory key is shown as its high (classid) and low (objid) 32 bits.
    let (high, low) = (
        (WRITER_LEASE_KEY >> 32) as u32,
        (WRITER_LEASE_KEY & 0xffff_ffff) as u32,
    );
    tx.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND pid = $1 AND classid::text::bigint = $2 AND objid::text::bigint = $3)",
        &[&pid, &i64::from(high), &i64::from(low)],
    )
    .map(|r| r.get(0))
}

/// A database of its own, created under the role of an admin URL and dropped (with any
/// connections left to it) when this goes: for tests and scratch runs against one server.
pub struct ScratchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates a new, empty database next to the one `admin_url` names.
    pub fn create(admin_url: &str) -> Result<ScratchDatabase> {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).map_err(|e| Error::Shared {
            context: format!("no randomness from the operating system: {e}"),
            source: None,
        })?;
        let name = format!(
            "tanya_scratch_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin_url, String::new()),
        };
        let Some((root, _)) = base.rsplit_once('/').filter(|(r, _)| r.contains("://")) else {
            return Err(Error::Config(format!(
                "`{}` names no database (postgres://user:password@host:port/database)",
                base.split('@').next_back().unwrap_or("")
            )));
        };
        let url = format!("{root}/{name}{query}");
        let admin = admin_url.to_string();
        let sql = format!("CREATE DATABASE {name}");
        off_runtime(|| -> std::result::Result<(), postgres::Error> {
            let mut c = Client::connect(&admin, NoTls)?;
            c.batch_execute(&sql)
        })
        .map_err(err("creating a scratch database"))?;
        Ok(ScratchDatabase { admin, name, url })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin = self.admin.clone();
        let _ = off_runtime(|| -> std::result::Result<(), postgres::Error> {
            let mut c = Client::connect(&admin, NoTls)?;
            c.batch_execute(&sql)
        });
    }
}
