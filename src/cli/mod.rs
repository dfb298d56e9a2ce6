//! The `tanya` subcommands, one file each. Each has its clap `Args` and a `run`; they
//! use the library's [`tanya::Engine`] (and [`tanya::eval`], [`tanya::server`]) only.

pub mod ask;
pub mod bench;
pub mod config;
pub mod documents;
pub mod eval;
pub mod ingest;
pub mod parse_worker;
pub mod reindex;
pub mod search;
pub mod serve;

mod progress;

pub use progress::Progress;

/// `text` on one line, cut to `max` characters.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}
