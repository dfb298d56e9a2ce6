//! Hostile DOCX packages: zip bombs, entity bombs, the XML attack corpus, too many entries.

use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use tanya_ingest::{parse, Format, ParseError, ParseLimits};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::util::{corpora, document_xml, docx, W_NS};

/// A DOCX whose `word/document.xml` is `spaces` bytes of spaces inside one `w:t`, written
/// streaming so the test never holds the expanded text.
fn zip_bomb(spaces: usize) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1));
    zip.start_file("word/document.xml", opts).unwrap();
    write!(
        zip,
        r#"<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>"#
    )
    .unwrap();
    let block = vec![b' '; 1 << 20];
    let mut left = spaces;
    while left > 0 {
        let n = left.min(block.len());
        zip.write_all(&block[..n]).unwrap();
        left -= n;
    }
    write!(zip, "x</w:t></w:r></w:p></w:body></w:document>").unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn zip_bomb_hits_the_decompression_limit_quickly() {
    let bomb = zip_bomb(300 << 20);
    assert!(bomb.len() < 2 << 20, "compressed to {} bytes", bomb.len());

    // The ratio cap trips first with the default limits.
    let started = Instant::now();
    let err = parse(Format::Docx, &bomb, &ParseLimits::default()).unwrap_err();
    assert!(
        matches!(err, ParseError::DecompressionLimit { .. }),
        "{err}"
    );
    assert_eq!(err.reason(), "decompression_limit");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Without a useful ratio cap, the absolute cap still holds.
    let limits = ParseLimits {
        max_ratio: u64::MAX,
        max_uncompressed_bytes: 50 << 20,
        ..ParseLimits::default()
    };
    let err = parse(Format::Docx, &bomb, &limits).unwrap_err();
    assert!(
        matches!(err, ParseError::DecompressionLimit { limit, .. } if limit == 50 << 20),
        "{err}"
    );
}

#[test]
fn a_normal_highly_compressible_document_is_fine() {
    // 512 KiB of spaces: under the 1 MiB floor where ratios are not checked.
    let doc = parse(Format::Docx, &zip_bomb(512 << 10), &ParseLimits::default()).unwrap();
    assert_eq!(doc.blocks[0].text, "x");
}

#[test]
fn entity_bomb_is_never_expanded() {
    let mut dtd = String::from("<!DOCTYPE w:document [\n<!ENTITY lol0 \"lol\">\n");
    for i in 1..=9 {
        let refs = format!("&lol{};", i - 1).repeat(10);
        dtd.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
    }
    dtd.push_str("]>");
    let xml = format!(
        r#"<?xml version="1.0"?>{dtd}<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>Mula &lol9; tamat</w:t></w:r></w:p></w:body></w:document>"#
    );
    let started = Instant::now();
    let doc = parse(Format::Docx, &docx(&xml, &[]), &ParseLimits::default()).unwrap();
    assert_eq!(doc.full_text(), "Mula tamat");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn too_many_entries_are_refused() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..50 {
        zip.start_file(format!("f{i}"), SimpleFileOptions::default())
            .unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let limits = ParseLimits {
        max_zip_entries: 20,
        ..ParseLimits::default()
    };
    let err = parse(Format::Docx, &bytes, &limits).unwrap_err();
    assert!(
        matches!(err, ParseError::TooManyEntries { count: 50, max: 20 }),
        "{err}"
    );
}

/// Wraps the content of an attack file's root element into a DOCX body, keeping its DTD, so
/// the entity references land inside `w:t` where text is read.
fn as_docx_body(xml: &str) -> String {
    let (prolog, root) = match xml.find("]>") {
        Some(i) => (&xml[..i + 2], &xml[i + 2..]),
        None => ("", xml),
    };
    // Drop any XML declaration: the wrapper supplies its own.
    let prolog = match (prolog.find("<?xml"), prolog.find("?>")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &prolog[..a], &prolog[b + 2..]),
        _ => prolog.to_owned(),
    };
    let inner = match (root.find('>'), root.rfind('<')) {
        (Some(a), Some(b)) if a < b => &root[a + 1..b],
        _ => root,
    };
    format!(
        r#"<?xml version="1.0"?>{prolog}<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>{inner}</w:t></w:r></w:p></w:body></w:document>"#
    )
}

#[test]
#[ignore = "needs ../shared/corpora"]
fn xml_attack_corpus_is_harmless_in_docx_and_html() {
    let dir = corpora().join("xml-attacks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "xml" | "xsd" | "xsl") {
            continue;
        }
        seen += 1;
        let raw = std::fs::read_to_string(&path).unwrap();
        let limit = 2 * raw.len() + 1024;
        for (what, bytes, format) in [
            ("raw docx", docx(&raw, &[]), Format::Docx),
            ("wrapped docx", docx(&as_docx_body(&raw), &[]), Format::Docx),
            ("html", raw.clone().into_bytes(), Format::Html),
        ] {
            let started = Instant::now();
            match parse(format, &bytes, &ParseLimits::default()) {
                Ok(doc) => assert!(
                    doc.full_text().len() <= limit,
                    "{what} {}: text grew to {} bytes",
                    path.display(),
                    doc.full_text().len()
                ),
                Err(e) => assert!(
                    matches!(e.reason(), "parse_error" | "no_text"),
                    "{what} {}: {e}",
                    path.display()
                ),
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what} {}",
                path.display()
            );
        }
    }
    assert!(
        seen >= 10,
        "only {seen} attack files found in {}",
        dir.display()
    );
    // The document body of a wrapped bomb must not contain expanded entity text.
    let bomb = std::fs::read_to_string(dir.join("xmlbomb.xml")).unwrap();
    let doc = parse(
        Format::Docx,
        &docx(&as_docx_body(&bomb), &[]),
        &ParseLimits::default(),
    );
    assert!(matches!(doc, Err(ParseError::NoText)), "{doc:?}");
}

#[test]
fn document_xml_is_minimal_fixture() {
    // Guards the fixture itself: a plain paragraph parses.
    let xml = document_xml(r#"<w:p><w:r><w:t>ok</w:t></w:r></w:p>"#);
    let doc = parse(Format::Docx, &docx(&xml, &[]), &ParseLimits::default()).unwrap();
    assert_eq!(doc.full_text(), "ok");
}
