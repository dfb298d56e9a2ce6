//! Tanya: a private document assistant that runs entirely on the user's machine.
//!
//! Layers, each depending only on those below it (ARCHITECTURE.md states the rule and
//! `scripts/layers.py` checks it):
//!
//! - [`error`], [`config`]: the one error type and the configuration; [`shared`]: the
//!   state replicas share, in PostgreSQL;
//! - [`text`]: analysis, sentences, language, question terms; [`models`]: the embedder,
//!   the reranker and the generator;
//! - [`index`]: a collection's stores, manifest and write protocol;
//! - [`ingest`]: files into a collection; [`query`]: hybrid search and fusion;
//! - [`answer`]: extractive and generative answers with checked citations;
//! - [`engine`] ties them together; [`eval`] measures them;
//! - [`server`] (HTTP) and the `tanya` binary's `cli` sit on the engine only.

pub mod accounts;
pub mod answer;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub mod index;
pub mod ingest;
pub mod models;
pub mod query;
pub mod server;
pub mod shared;
pub mod text;

pub use engine::Engine;
pub use error::{Error, Result};
