//! `tanya migrate`: move the vectors to another store, without re-embedding.

use clap::ValueEnum;
use tanya::config::{Bm25At, Config, StoreKind};

#[derive(Clone, Copy, ValueEnum)]
pub enum To {
    /// The embedded Qdrant edge shard in the data directory.
    Edge,
    /// The Qdrant server or cluster of `[store] url`.
    Qdrant,
}

#[derive(clap::Args)]
pub struct Args {
    /// The store to move the vectors to; the rest of `[store]` (url, collection,
    /// shards, replication, ...) configures it.
    #[arg(long, value_enum)]
    pub to: To,
    /// Where BM25 is kept afterwards: "qdrant" (sparse vectors on the server, with
    /// `--to qdrant`) or "tantivy" (an index in the data directory).
    #[arg(long, value_enum, default_value = "tantivy")]
    pub bm25: Bm25,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Bm25 {
    Tantivy,
    Qdrant,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let to = match args.to {
        To::Edge => StoreKind::Edge,
        To::Qdrant => StoreKind::Qdrant,
    };
    let engine = tanya::Engine::open(config)?;
    let bar = indicatif::ProgressBar::new(0);
    let bm25 = match args.bm25 {
        Bm25::Tantivy => Bm25At::Tantivy,
        Bm25::Qdrant => Bm25At::Qdrant,
    };
    let r = engine.migrate(to, bm25, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    drop(engine);
    println!(
        "migrated {} → {}: {} documents, {} chunks ({} copied now, {} by an earlier run) \
         in {:.1} s",
        r.from, r.to, r.documents, r.chunks, r.copied, r.already_there, r.seconds
    );
    println!(
        "verified: every document's chunk count, and the same results for {} of {} \
         sample queries",
        r.identical_results, r.sample_queries
    );
    println!("the vectors are now in: {}", r.target);
    println!(
        "set [store] kind = \"{}\" and bm25 = \"{}\" in your configuration (or \
         TANYA__STORE__KIND={} TANYA__STORE__BM25={}) before the next start",
        r.to, r.bm25, r.to, r.bm25
    );
    Ok(())
}
