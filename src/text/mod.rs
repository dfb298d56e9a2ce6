//! Text logic that both ingestion and retrieval need: analysis (tokens, stopwords,
//! stemming), sentence splitting, language detection, a question's terms and quantities.
//! Depends on nothing else in the crate but [`crate::error`].

pub mod analysis;
pub mod ellipsis;
pub mod lexicon;
pub mod quantities;
pub mod sentences;
pub mod terms;
