//! `tanya ask`: an answer from the documents, with citations.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tanya::config::{AnswerMode, Config, GeneratorBackend};
use tanya::engine::{Access, Answer, AnswerEvent};

use super::remote::{Remote, Target};

#[derive(clap::Args)]
pub struct Args {
    question: String,
    /// extractive (no language model) or generative (a GGUF model).
    #[arg(long)]
    mode: Option<AnswerMode>,
    #[arg(long, value_delimiter = ',', default_value = "public")]
    groups: Vec<String>,
    /// Only the documents of this collection (see `ingest --collection`).
    #[arg(long)]
    collection: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(config: Config, args: Args) -> anyhow::Result<()> {
    let access = Access::for_groups(args.groups.clone())?.within(args.collection.clone());
    let engine = match super::remote::open(config)? {
        Target::Engine(engine) => *engine,
        Target::Server(server) => return through_server(&server, &args),
    };
    let mode = args.mode.unwrap_or(engine.config().answer.mode);
    let cancel = Arc::new(AtomicBool::new(false));
    let json = args.json;
    let mut streamed = false;
    let generating = match engine.config().generator.backend {
        GeneratorBackend::Local => "(generating with a local model...)",
        GeneratorBackend::Openai => "(generating with the model server...)",
    };
    let answer = engine.ask(&args.question, &access, mode, cancel, &mut |ev| {
        if let AnswerEvent::Token(t) = ev {
            if !json {
                if !streamed {
                    eprintln!("{generating}");
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

/// The same question, answered by the running server (as an administrator of this
/// machine: every document).
fn through_server(server: &Remote, args: &Args) -> anyhow::Result<()> {
    let mut body = serde_json::json!({ "question": args.question, "collection": args.collection });
    if let Some(mode) = args.mode {
        body["mode"] = serde_json::json!(mode.as_str());
    }
    let a = server.post("/api/ask", &body)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&a)?);
        return Ok(());
    }
    if let Some(why) = a["fallback"].as_str() {
        eprintln!("{}", fallback_line(why));
    }
    println!("{}\n", a["answer"].as_str().unwrap_or_default());
    for c in a["citations"].as_array().into_iter().flatten() {
        let page = c["page"]
            .as_u64()
            .map(|p| format!(", page {p}"))
            .unwrap_or_default();
        println!(
            "[{}] {} — {}{}",
            c["n"],
            c["rel_path"].as_str().unwrap_or_default(),
            c["title"].as_str().unwrap_or_default(),
            page
        );
    }
    Ok(())
}

/// What the command line says of an answer quoted because the model server failed.
fn fallback_line(why: &str) -> String {
    format!("(the model server failed, so this answer is quoted from the documents: {why})")
}

fn print_answer(a: &Answer, streamed: bool) {
    if let Some(why) = &a.fallback {
        eprintln!("{}", fallback_line(why));
    }
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
