//! Ingestion: files → parsed in worker processes ([`isolate`]) → passages with document
//! ids → embedded → committed to a collection ([`pipeline`]); and the reindex driver.
//! Depends on [`crate::index`], [`crate::models`], [`crate::text`].

pub mod isolate;
pub mod pipeline;
pub mod reindex;
