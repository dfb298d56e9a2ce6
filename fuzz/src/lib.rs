//! What every fuzz target does: parse the input as one format with OCR off (no child
//! processes while fuzzing), and check what a successful parse promises.
//!
//! libfuzzer-sys aborts on every panic, even one the parser catches on purpose (PDF extraction
//! and email parsing run under `catch_unwind`, and come back as `ParseError::Panicked`). So
//! the first call replaces that hook with one that reports each panic location once and lets
//! it unwind: a panic that escapes `parse` still reaches libfuzzer-sys's own `catch_unwind`,
//! which aborts, and is reported as a crash.

use std::collections::BTreeSet;
use std::sync::{Mutex, Once};

use tanya_ingest::{parse, Format, ParseLimits};

/// Limits for fuzzing: the defaults, without OCR, with a smaller decompression budget so a
/// single input cannot take long.
pub fn limits() -> ParseLimits {
    ParseLimits {
        ocr: None,
        max_uncompressed_bytes: 16 << 20,
        ..ParseLimits::default()
    }
}

fn report_panics_once() {
    static HOOK: Once = Once::new();
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info
                .location()
                .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
            if let Ok(mut seen) = SEEN.lock() {
                if seen.insert(at.clone()) {
                    eprintln!("PANIC (caught unless a crash follows) at {at}: {info}");
                }
            }
        }));
    });
}

/// Parses `data` as `format`; for an email, parses its attachments too. Panics only when a
/// promise is broken: an `Ok` document has blocks, and every block has text without line
/// breaks.
pub fn run(format: Format, data: &[u8]) {
    report_panics_once();
    let limits = limits();
    let Ok(doc) = parse(format, data, &limits) else {
        return;
    };
    assert!(!doc.blocks.is_empty(), "Ok without blocks");
    for b in &doc.blocks {
        assert!(!b.text.is_empty(), "an empty block");
        assert!(
            !b.text.contains('\n'),
            "a line break inside a block: {:?}",
            b.text
        );
    }
    let _ = doc.full_text();
    assert!(doc.attachments.len() <= limits.max_attachments);
    for a in &doc.attachments {
        assert_ne!(a.format, Format::Eml, "an email returned as an attachment");
        let _ = parse(a.format, &a.bytes, &limits);
    }
}
