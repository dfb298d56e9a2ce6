//! Integration tests for `tanya-ingest`, in one binary: fixtures are built in temporary
//! folders by `util`; the shared bad-input corpora are used when present.

mod chunk_props;
mod docx_limits;
mod email;
mod formats;
mod ocr;
mod pdf_attacks;
mod tables_slides;
mod util;
mod walk;
mod zip_bombs;
