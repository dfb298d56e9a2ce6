//! A collection whose records are shared by several replicas (`[shared] postgres`): the
//! acknowledged documents, write intents and texts in the shared records
//! (`crate::shared::Records`), the vectors and BM25 on a Qdrant server. Any replica
//! searches; one at a time writes, while it holds the writer lease.
//!
//! - **Reading.** Each replica keeps the manifest in memory and, every
//!   `[shared] refresh_ms`, reads the rows changed after the generation it has seen.
//!   Searches filter by that manifest, so a replica never shows a version before its
//!   commit is visible to it, nor after its removal is.
//! - **Writing.** The first write takes the lease (waiting up to `lease_wait_secs`), then
//!   catches up with the records and cleans up what an earlier writer's intents left
//!   (that writer died mid-write). Every commit checks, inside its transaction, that this
//!   replica's lease session still holds the lock. The lease is given up after
//!   [`LEASE_IDLE`] without a write, so another replica may write next.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::index::manifest::Manifest;
use crate::shared::{Lease, Records};

/// A replica gives up the writer lease after this long without a write.
pub const LEASE_IDLE: Duration = Duration::from_secs(3);

/// The shared side of one replica's collection.
pub struct Replicated {
    pub records: Records,
    lease: Mutex<Option<Lease>>,
    lease_wait: Duration,
    /// The generation of the records this replica's manifest reflects.
    seen: AtomicI64,
    /// Held while a refresh or a commit moves the manifest to a new generation, so that
    /// a refresh never applies older rows over a newer commit.
    advancing: Mutex<()>,
    /// Writes in progress in this process, and when the last one ended.
    writing: AtomicUsize,
    last_write: Mutex<Instant>,
}

impl Replicated {
    pub fn new(records: Records, lease_wait: Duration) -> Replicated {
        Replicated {
            records,
            lease: Mutex::new(None),
            lease_wait,
            seen: AtomicI64::new(0),
            advancing: Mutex::new(()),
            writing: AtomicUsize::new(0),
            last_write: Mutex::new(Instant::now()),
        }
    }

    /// Reads the acknowledged documents from the records into a new manifest.
    pub fn load(&self, embedder: &str) -> Result<Manifest> {
        let _advancing = self.advancing.lock().unwrap_or_else(|p| p.into_inner());
        let (gen, rows) = self.records.changes_since(0)?;
        let mut m = Manifest::new(embedder);
        m.apply_rows(rows)?;
        self.seen.store(gen, Ordering::SeqCst);
        Ok(m)
    }

    /// Brings `manifest` up to the records' last commit. Returns how many documents
    /// changed.
    pub fn refresh(&self, manifest: &RwLock<Manifest>) -> Result<usize> {
        let _advancing = self.advancing.lock().unwrap_or_else(|p| p.into_inner());
        let seen = self.seen.load(Ordering::SeqCst);
        if self.records.generation()? <= seen {
            return Ok(0);
        }
        let (gen, rows) = self.records.changes_since(seen)?;
        let changed = rows.len();
        manifest
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply_rows(rows)?;
        self.seen.store(gen, Ordering::SeqCst);
        Ok(changed)
    }

    /// Marks a write as started, taking the lease first when this replica does not hold
    /// it; on taking it, runs `on_taken` (catch up, clean up) before any other write of
    /// this process may start. The write ends with [`Self::end_write`].
    pub fn begin_write(&self, on_taken: impl FnOnce() -> Result<()>) -> Result<()> {
        self.writing.fetch_add(1, Ordering::SeqCst);
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if lease.is_some() {
            return Ok(());
        }
        let taken = self
            .records
            .pg()
            .writer_lease(self.lease_wait)
            .and_then(|l| {
                tracing::info!(session = l.pid(), "took the writer lease");
                *lease = Some(l);
                on_taken()
            });
        if taken.is_err() {
            *lease = None;
            self.writing.fetch_sub(1, Ordering::SeqCst);
        }
        taken
    }

    pub fn end_write(&self) {
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.writing.fetch_sub(1, Ordering::SeqCst);
    }

    /// The database session of the lease this replica holds (0: none).
    pub fn lease_pid(&self) -> i32 {
        self.lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, Lease::pid)
    }

    /// Acknowledges `changes` in the records and applies them to `manifest`, as one
    /// step for refreshes.
    pub fn commit(
        &self,
        manifest: &RwLock<Manifest>,
        put: Vec<(String, crate::index::manifest::DocumentEntry)>,
        remove: Vec<String>,
    ) -> Result<()> {
        let changes = crate::shared::records::Changes {
            put: put
                .iter()
                .map(|(id, e)| {
                    (
                        id.clone(),
                        e.version.clone(),
                        serde_json::to_string(e).expect("an entry serialises"),
                    )
                })
                .collect(),
            remove: remove.clone(),
        };
        let _advancing = self.advancing.lock().unwrap_or_else(|p| p.into_inner());
        let gen = self.records.commit(self.lease_pid(), &changes)?;
        manifest
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply_changes(put, remove);
        // The refresh after this reads from here: rows of older generations are in.
        if self.seen.load(Ordering::SeqCst) == gen - 1 {
            self.seen.store(gen, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Gives the lease up when no write is in progress and none ended in the last
    /// [`LEASE_IDLE`].
    fn release_if_idle(&self) {
        if self.writing.load(Ordering::SeqCst) > 0 {
            return;
        }
        let idle = self
            .last_write
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if idle < LEASE_IDLE {
            return;
        }
        let mut lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if self.writing.load(Ordering::SeqCst) == 0 {
            if let Some(l) = lease.take() {
                tracing::info!(session = l.pid(), "gave up the writer lease");
            }
        }
    }
}

/// The thread that keeps a replica's manifest current and gives up an idle lease; it
/// stops when this is dropped.
pub struct Refresher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Refresher {
    pub fn start(
        shared: Arc<Replicated>,
        manifest: Arc<RwLock<Manifest>>,
        every: Duration,
    ) -> Refresher {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tanya-refresh".into())
            .spawn(move || {
                let tick = every.min(Duration::from_millis(200));
                let mut last = Instant::now();
                while !stopped.load(Ordering::SeqCst) {
                    std::thread::sleep(tick);
                    shared.release_if_idle();
                    if last.elapsed() < every {
                        continue;
                    }
                    last = Instant::now();
                    match shared.refresh(&manifest) {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::debug!(documents = n, "caught up with the shared records")
                        }
                        Err(e) => tracing::warn!(
                            error = %e.full_message(),
                            "could not read the shared records; serving what was last read"
                        ),
                    }
                }
            })
            .expect("a thread starts");
        Refresher {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
