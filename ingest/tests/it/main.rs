//! Integration tests for `tanya-ingest`, in one binary: fixtures are built in temporary
//! folders by `util`; the shared bad-input corpora are used when present.

mod chunk_props;
mod docx_limits;
mod formats;
mod pdf_attacks;
mod util;
mod walk;
