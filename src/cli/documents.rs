//! `tanya documents`: what is indexed, and `--verify`: whether both stores hold exactly
//! the acknowledged chunks, and every source file is still what was indexed.

use tanya::config::Config;
use tanya::Engine;

use super::remote::{Remote, Target};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
    /// Check that every document is whole in both stores (its chunk count in the
    /// vector store and the BM25 index equals the manifest's), that nothing else is
    /// stored, that its source file is present, inside its folder and hashes to the
    /// indexed version, that its chunks carry its recorded groups, and that its text is
    /// stored; exits with 1 when not.
    #[arg(long)]
    verify: bool,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let engine = match super::remote::open(config)? {
        Target::Engine(engine) => *engine,
        Target::Server(server) => return through_server(&server, &args),
    };
    if args.verify {
        return verify(&engine, args.json);
    }
    let m = engine.manifest();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&m.documents)?);
        return Ok(());
    }
    for d in m.documents.values() {
        println!(
            "{}  {:?}  {}  {} chunks  groups: {}",
            d.rel_path,
            d.format,
            d.title,
            d.chunks,
            d.groups.join(",")
        );
    }
    println!("{} documents", m.documents.len());
    Ok(())
}

/// Per document, the manifest's chunk count against both stores; in total, what is
/// stored against what is acknowledged. Exits with 1 when they differ.
fn verify(engine: &Engine, json: bool) -> anyhow::Result<()> {
    let v = engine.verify()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for d in v.documents.iter().filter(|d| !d.whole) {
            println!(
                "NOT WHOLE {}: manifest {} chunks, vector store {}, BM25 {}",
                d.rel_path, d.chunks, d.stored_vectors, d.stored_bm25
            );
        }
        for d in &v.documents {
            if let Some(problem) = &d.source_problem {
                println!("SOURCE {}: {problem}", d.rel_path);
            }
            if !d.groups_as_recorded {
                println!(
                    "GROUPS {}: stored chunks carry other groups than the manifest records",
                    d.rel_path
                );
            }
            if !d.text_stored {
                println!(
                    "NO TEXT {}: its extracted text is not stored (ingest its folder again)",
                    d.rel_path
                );
            }
        }
        println!(
            "{} documents, {} acknowledged chunks; stored: {} vectors, {} BM25 entries: {}",
            v.documents.len(),
            v.acknowledged_chunks,
            v.stored_vectors_total,
            v.stored_bm25_total,
            if v.ok { "consistent" } else { "INCONSISTENT" }
        );
    }
    if !v.ok {
        std::process::exit(1);
    }
    Ok(())
}

/// The documents as the running server lists them (`--verify` needs the index itself).
fn through_server(server: &Remote, args: &Args) -> anyhow::Result<()> {
    if args.verify {
        anyhow::bail!(tanya::Error::BadRequest(
            "--verify reads both stores directly: stop `tanya serve` first".into()
        ));
    }
    let list = server.get("/api/documents")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list["documents"])?);
        return Ok(());
    }
    let docs = list["documents"].as_array().cloned().unwrap_or_default();
    for d in &docs {
        println!(
            "{}  {}  {}  {} chunks  {}",
            d["name"].as_str().unwrap_or_default(),
            d["format"].as_str().unwrap_or_default(),
            d["title"].as_str().unwrap_or_default(),
            d["chunks"].as_u64().unwrap_or_default(),
            d["status"].as_str().unwrap_or_default()
        );
    }
    println!("{} documents", docs.len());
    Ok(())
}
