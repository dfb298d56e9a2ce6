//! Where chunks are kept: one data directory per collection, with its manifest of
//! acknowledged document versions, write intents, the reindex swap, the move of its
//! vectors to another store (`migrate`), the documents' extracted texts (`texts`), the BM25 index (the
//! only tantivy code) and the vector store (the only Qdrant code).
//! Depends on [`crate::text`], [`crate::config`] and [`crate::error`].

pub mod bm25;
pub mod collection;
pub mod manifest;
pub mod migrate;
pub mod passage;
pub mod replicated;
pub mod sources;
pub mod sparse;
pub mod store;
pub mod swap;
pub mod texts;
