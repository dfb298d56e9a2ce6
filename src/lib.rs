//! Tanya: a private document assistant that runs entirely on the user's machine.
//!
//! Data flows one way: [`tanya_ingest`] turns files into located chunks; [`pipeline`]
//! embeds them ([`models`]) and commits them to both stores ([`store`], [`bm25`]) of a
//! [`collection::Collection`]; [`retrieve`] searches both under an access filter and fuses
//! the results; [`answer`] turns the top passages into a cited answer. [`Engine`] ties
//! them together for the CLI and the server. See ARCHITECTURE.md.

pub mod answer;
pub mod bm25;
pub mod collection;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod isolate;
pub mod manifest;
pub mod models;
pub mod passage;
pub mod pipeline;
pub mod reindex;
pub mod retrieve;
pub mod server;
pub mod store;

pub use engine::Engine;
pub use error::{Error, Result};
