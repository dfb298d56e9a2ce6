//! Real damaged and encrypted PDFs from the shared corpora, and the sample corpus. Its own test
//! binary: if a PDF ever overflowed the stack, only this binary dies.
//!
//! Every file must give `Ok` or a typed error within a time limit; no panic may escape.
//!
//! The tests need files that are not in the repository (`../shared/corpora`, and the sample
//! corpus made by `scripts/make_samples.py`): they are `#[ignore]`d for a plain `cargo test`,
//! `scripts/test.sh` runs them with `--include-ignored`, and they fail, naming the path, when the
//! files are missing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tanya_ingest::{
    parse, read_document, ChunkerConfig, Format, ParseError, ParseLimits, WordEstimate,
};

const PER_FILE: Duration = Duration::from_secs(30);

/// This crate's folder, as cargo says when it runs the tests (a test binary reused from a
/// build in another checkout would carry that checkout's compile-time path).
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The PDFs of `../shared/corpora/<name>`; panics when the folder is missing or has none.
fn corpus(name: &str) -> Vec<PathBuf> {
    let dir = manifest_dir().join("../../shared/corpora").join(name);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "needs ../shared/corpora: cannot read {}: {e}",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no PDFs in {}", dir.display());
    files
}

/// Parses every file on a worker thread with a deadline; returns outcome → file names.
fn run(files: &[PathBuf]) -> BTreeMap<String, Vec<String>> {
    let mut outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in files {
        let bytes = std::fs::read(path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let started = Instant::now();
            let result = parse(Format::Pdf, &bytes, &ParseLimits::default());
            let _ = tx.send((result, started.elapsed()));
        });
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let outcome = match rx.recv_timeout(PER_FILE) {
            Ok((Ok(_), _)) => "ok".to_owned(),
            Ok((Err(ParseError::Panicked(msg)), _)) => {
                eprintln!("{name}: caught panic: {msg}");
                "panicked (caught)".to_owned()
            }
            Ok((Err(e), _)) => e.reason().to_owned(),
            Err(mpsc::RecvTimeoutError::Timeout) => "TIMEOUT".to_owned(),
            Err(mpsc::RecvTimeoutError::Disconnected) => "PANIC ESCAPED".to_owned(),
        };
        outcomes.entry(outcome).or_default().push(name);
    }
    outcomes
}

fn report(title: &str, outcomes: &BTreeMap<String, Vec<String>>) {
    eprintln!("== {title}");
    for (outcome, names) in outcomes {
        eprintln!("{outcome:>20}: {} {names:?}", names.len());
    }
}

#[test]
#[ignore = "needs ../shared/corpora"]
fn malformed_pdfs_give_ok_or_typed_errors() {
    let files = corpus("malformed-pdf");
    let outcomes = run(&files);
    report("malformed-pdf", &outcomes);
    assert!(
        !outcomes.contains_key("TIMEOUT"),
        "{:?}",
        outcomes.get("TIMEOUT")
    );
    assert!(
        !outcomes.contains_key("PANIC ESCAPED"),
        "{:?}",
        outcomes.get("PANIC ESCAPED")
    );
    let total: usize = outcomes.values().map(Vec::len).sum();
    assert_eq!(total, files.len());
}

#[test]
#[ignore = "needs ../shared/corpora"]
fn encrypted_pdfs_are_rejected_clearly_or_read() {
    let files = corpus("encrypted-pdf");
    let outcomes = run(&files);
    report("encrypted-pdf", &outcomes);
    for outcome in outcomes.keys() {
        assert!(
            matches!(outcome.as_str(), "ok" | "encrypted" | "no_text"),
            "unexpected outcome {outcome}: {:?}",
            outcomes[outcome]
        );
    }
    assert!(outcomes.contains_key("encrypted"), "{outcomes:?}");
}

/// `TANYA_SAMPLES_DIR`, else `samples/corpus` in the repository (as in the root crate's tests).
#[test]
#[ignore = "needs the sample corpus made by scripts/make_samples.py"]
fn sample_corpus_reads_and_pdfs_have_later_pages() {
    let dir = std::env::var_os("TANYA_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../samples/corpus"));
    let walked =
        tanya_ingest::walk(&dir, &tanya_ingest::WalkOptions::default()).unwrap_or_else(|e| {
            panic!(
                "the sample corpus is missing in {} ({e}): run `python3 scripts/make_samples.py` \
                 (or scripts/test.sh)",
                dir.display()
            )
        });
    assert!(
        !walked.files.is_empty(),
        "no documents in {}: run `python3 scripts/make_samples.py` (or scripts/test.sh)",
        dir.display()
    );
    let mut multi_page = 0;
    for file in &walked.files {
        let started = Instant::now();
        let doc = read_document(
            file,
            &ParseLimits::default(),
            &ChunkerConfig::default(),
            &WordEstimate,
        )
        .unwrap_or_else(|e| panic!("{}: {} ({e})", file.rel_path, e.reason()));
        assert!(!doc.chunks.is_empty(), "{}", file.rel_path);
        if file.format == Format::Pdf {
            let pages: Vec<u32> = doc.chunks.iter().filter_map(|c| c.page).collect();
            assert_eq!(pages.len(), doc.chunks.len(), "every PDF chunk has a page");
            assert!(pages.windows(2).all(|w| w[0] <= w[1]), "pages in order");
            if doc.pages.is_some_and(|p| p > 1) {
                multi_page += 1;
                assert!(pages.last().is_some_and(|&p| p > 1), "{}", file.rel_path);
            }
        } else if file.format == Format::Pptx {
            // A PPTX chunk's page is its slide.
            assert!(
                doc.chunks.iter().all(|c| c.page.is_some()),
                "{}",
                file.rel_path
            );
        } else {
            assert!(doc.chunks.iter().all(|c| c.page.is_none()));
        }
        eprintln!(
            "{}: {:?}, {} pages, {} chunks, lang {}, {:?}",
            file.rel_path,
            doc.title,
            doc.pages.unwrap_or(0),
            doc.chunks.len(),
            doc.lang,
            started.elapsed()
        );
    }
    let pdfs = walked
        .files
        .iter()
        .filter(|f| f.format == Format::Pdf)
        .count();
    eprintln!("{multi_page} of {pdfs} sample PDFs have more than one page");
}
