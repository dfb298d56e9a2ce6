//! `tanya reindex`: rebuild the index with the configured embedder, then swap it in.

use tanya::config::Config;

use super::Progress;

pub fn run(config: Config) -> anyhow::Result<()> {
    let observer = Progress::new();
    let r = tanya::engine::reindex(config, &observer)?;
    observer.finish();
    println!(
        "reindexed {} → {}: {} of {} documents, {} chunks embedded in {:.1} s",
        r.previous_embedder,
        r.embedder,
        r.documents_after,
        r.documents_before,
        r.chunks_embedded,
        r.seconds
    );
    for root in &r.missing_roots {
        println!(
            "  no longer exists (its documents are gone): {}",
            root.display()
        );
    }
    Ok(())
}
