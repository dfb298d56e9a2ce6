//! `tanya search`: ranked passages with document, page and a snippet.

use std::time::Instant;

use tanya::config::Config;
use tanya::engine::Access;

use super::remote::{Remote, Target};
use super::snippet;

#[derive(clap::Args)]
pub struct Args {
    query: String,
    /// Groups the caller belongs to.
    #[arg(long, value_delimiter = ',', default_value = "public")]
    groups: Vec<String>,
    /// Only the documents of this collection (see `ingest --collection`).
    #[arg(long)]
    collection: Option<String>,
    /// Number of passages (default: search.top_k).
    #[arg(short = 'k', long)]
    limit: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let access = Access::for_groups(args.groups.clone())?.within(args.collection.clone());
    let engine = match super::remote::open(config)? {
        Target::Engine(engine) => *engine,
        Target::Server(server) => return through_server(&server, &args),
    };
    let k = args.limit.unwrap_or(engine.config().search.top_k);
    let t = Instant::now();
    let r = engine.search(&args.query, &access, k)?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r.hits)?);
        return Ok(());
    }
    if r.hits.is_empty() {
        println!("No passages found.");
    }
    for (i, h) in r.hits.iter().enumerate() {
        println!(
            "{:>2}. {}  [score {:.4}]",
            i + 1,
            h.passage.location(),
            h.score
        );
        println!("    {}", snippet(&h.passage.text, 240));
    }
    eprintln!("({} passages in {ms:.0} ms)", r.hits.len());
    Ok(())
}

/// The same search, made by the running server (as an administrator of this machine).
fn through_server(server: &Remote, args: &Args) -> anyhow::Result<()> {
    let mut body = serde_json::json!({ "query": args.query, "collection": args.collection });
    if let Some(k) = args.limit {
        body["limit"] = serde_json::json!(k);
    }
    let r = server.post("/api/search", &body)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r["passages"])?);
        return Ok(());
    }
    let passages = r["passages"].as_array().cloned().unwrap_or_default();
    if passages.is_empty() {
        println!("No passages found.");
    }
    for (i, p) in passages.iter().enumerate() {
        let page = p["page"]
            .as_u64()
            .map(|n| format!(", p. {n}"))
            .unwrap_or_default();
        println!(
            "{:>2}. {}{page}  [score {:.4}]",
            i + 1,
            p["rel_path"].as_str().unwrap_or_default(),
            p["score"].as_f64().unwrap_or_default()
        );
        println!(
            "    {}",
            snippet(p["text"].as_str().unwrap_or_default(), 240)
        );
    }
    Ok(())
}
