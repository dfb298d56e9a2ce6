//! `tanya search`: ranked passages with document, page and a snippet.

use std::time::Instant;

use tanya::config::Config;
use tanya::engine::Access;
use tanya::Engine;

use super::snippet;

#[derive(clap::Args)]
pub struct Args {
    query: String,
    /// Groups the caller belongs to.
    #[arg(long, value_delimiter = ',', default_value = "public")]
    groups: Vec<String>,
    /// Number of passages (default: search.top_k).
    #[arg(short = 'k', long)]
    limit: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let access = Access::for_groups(args.groups)?;
    let engine = Engine::open(config)?;
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
