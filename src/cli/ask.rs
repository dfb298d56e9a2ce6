//! `tanya ask`: an answer from the documents, with citations.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tanya::config::{AnswerMode, Config};
use tanya::engine::{Access, Answer, AnswerEvent};
use tanya::Engine;

#[derive(clap::Args)]
pub struct Args {
    question: String,
    /// extractive (no language model) or generative (a GGUF model).
    #[arg(long)]
    mode: Option<AnswerMode>,
    #[arg(long, value_delimiter = ',', default_value = "public")]
    groups: Vec<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let access = Access::for_groups(args.groups)?;
    let engine = Engine::open(config)?;
    let mode = args.mode.unwrap_or(engine.config().answer.mode);
    let cancel = Arc::new(AtomicBool::new(false));
    let json = args.json;
    let mut streamed = false;
    let answer = engine.ask(&args.question, &access, mode, cancel, &mut |ev| {
        if let AnswerEvent::Token(t) = ev {
            if !json {
                if !streamed {
                    eprintln!("(generating with a local model...)");
                }
                streamed = true;
                print!("{t}");
                let _ = std::io::stdout().flush();
            }
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        if streamed {
            println!("\n");
        }
        print_answer(&answer, streamed);
    }
    Ok(())
}

fn print_answer(a: &Answer, streamed: bool) {
    if !streamed || a.abstained {
        println!("{}\n", a.text);
    } else {
        println!("Answer (citations checked): {}\n", a.text);
    }
    for c in &a.citations {
        let page = c.page.map(|p| format!(", page {p}")).unwrap_or_default();
        println!("[{}] {} — {}{}", c.n, c.rel_path, c.title, page);
    }
    if a.abstained && !a.passages.is_empty() {
        println!(
            "{}",
            match a.lang {
                tanya_ingest::Lang::Ms => "Petikan terdekat, yang tidak menjawab soalan ini:",
                tanya_ingest::Lang::En => "Closest passages, which do not answer this:",
            }
        );
        for h in a.passages.iter().take(3) {
            println!("  - {}", h.passage.location());
        }
    }
    let mut timing = format!(
        "retrieval {:.0} ms, answer {:.0} ms",
        a.retrieval_ms, a.answer_ms
    );
    if let (Some(ttft), Some(tps)) = (a.time_to_first_token_ms, a.tokens_per_second) {
        timing.push_str(&format!(", first token {ttft:.0} ms, {tps:.1} tokens/s"));
    }
    eprintln!("({timing})");
}
