//! The ingest progress bar: files, files/s, chunks/s, ETA.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tanya::engine::IngestObserver;

/// Progress bar: files, files/s, chunks/s, ETA.
pub struct Progress {
    bar: ProgressBar,
    chunks: AtomicUsize,
    started: Instant,
}

impl Progress {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        Progress {
            bar,
            chunks: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl IngestObserver for Progress {
    fn start(&self, files: usize) {
        self.bar.set_length(files as u64);
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} files  {per_sec}  {msg}  ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn file_done(&self, rel_path: &str, chunks: usize) {
        let total = self.chunks.fetch_add(chunks, Ordering::Relaxed) + chunks;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        self.bar
            .set_message(format!("{:.1} chunks/s  {}", total as f64 / secs, rel_path));
        self.bar.inc(1);
    }
}
