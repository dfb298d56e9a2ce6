//! Hostile zip packages for every zip format (DOCX, XLSX, PPTX): a 1 GiB part deflated to about
//! a MiB, a part whose headers lie about its size, 100 000 entries, and the XML attack corpus
//! as each format's main XML part. Each must end in a typed outcome, early and with little
//! memory: peak memory is measured in a child process running [`memory_probe`].

use std::io::{Cursor, Write};
use std::process::Command;
use std::sync::OnceLock;

use tanya_ingest::{parse, Format, ParseError, ParseLimits};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::util::{corpora, docx, package, pptx, sheet_xml, slide_xml, xlsx, A_NS, SHEET_NS, W_NS};

const ZIP_FORMATS: [Format; 3] = [Format::Docx, Format::Xlsx, Format::Pptx];

/// A small valid package of `format` and the name of its main XML part (the one a bomb
/// replaces).
fn skeleton(format: Format) -> (Vec<u8>, &'static str) {
    match format {
        Format::Docx => (
            docx(&crate::util::document_xml(""), &[]),
            "word/document.xml",
        ),
        Format::Xlsx => (
            xlsx(&[("Sheet1", &sheet_xml(""))], &[], None),
            "xl/worksheets/sheet1.xml",
        ),
        Format::Pptx => (
            pptx(&[(slide_xml("sld", ""), None)], &[0], None),
            "ppt/slides/slide1.xml",
        ),
        other => unreachable!("{other} is not a zip format"),
    }
}

/// `package` with its part `name` replaced by the (raw, still compressed) entry `bomb.xml` of
/// the zip `bomb`.
fn replace_part(package: &[u8], name: &str, bomb: &[u8]) -> Vec<u8> {
    let mut src = ZipArchive::new(Cursor::new(package)).unwrap();
    let mut bomb = ZipArchive::new(Cursor::new(bomb)).unwrap();
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..src.len() {
        let entry = src.by_index_raw(i).unwrap();
        if entry.name() == name {
            continue;
        }
        out.raw_copy_file(entry).unwrap();
    }
    out.raw_copy_file_rename(bomb.by_name("bomb.xml").unwrap(), name)
        .unwrap();
    out.finish().unwrap().into_inner()
}

/// A zip whose `bomb.xml` is `<x>` and `spaces` spaces, deflated (about 1:1000),
/// written streaming so the expanded text never exists in memory.
fn bomb_zip(spaces: u64) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .large_file(spaces > u64::from(u32::MAX) / 2);
    zip.start_file("bomb.xml", opts).unwrap();
    zip.write_all(b"<x>").unwrap();
    let block = vec![b' '; 1 << 20];
    let mut left = spaces;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        zip.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    zip.write_all(b"x</x>").unwrap();
    zip.finish().unwrap().into_inner()
}

/// The 1 GiB bomb, built once for all formats.
fn gigabyte_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| bomb_zip(1 << 30))
}

/// Sets the uncompressed size of every entry, in its local header and in the central
/// directory, to `size`.
fn lie_about_size(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 30 <= zip.len() {
        match &zip[i..i + 4] {
            b"PK\x03\x04" => zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            b"PK\x01\x02" if i + 46 <= zip.len() => {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes())
            }
            _ => {}
        }
        i += 1;
    }
}

/// A package of `format` with 100 000 empty entries after its real parts.
fn many_entries(format: Format) -> Vec<u8> {
    let (base, _) = skeleton(format);
    let mut src = ZipArchive::new(Cursor::new(base)).unwrap();
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..src.len() {
        out.raw_copy_file(src.by_index_raw(i).unwrap()).unwrap();
    }
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for i in 0..100_000 {
        out.start_file(format!("e/{i}"), opts).unwrap();
    }
    out.finish().unwrap().into_inner()
}

const PROBE_ENV: &str = "TANYA_ZIP_BOMB_PROBE";

/// In the child started by [`probe`] (the environment names a file): parses that file and
/// prints the outcome and the growth of the process's peak resident memory (`VmHWM`). Run as an
/// ordinary test: checks the probe itself on a small document that parses.
#[test]
fn memory_probe() {
    match std::env::var(PROBE_ENV) {
        Ok(spec) => probe_child(&spec),
        Err(_) => {
            let small = docx(
                &crate::util::document_xml(r#"<w:p><w:r><w:t>ok</w:t></w:r></w:p>"#),
                &[],
            );
            let (outcome, growth) = probe(Format::Docx, &small);
            assert_eq!(outcome, "ok");
            assert!(growth < MAX_GROWTH_KIB, "peak grew {growth} KiB");
        }
    }
}

/// The child's side of [`probe`]: `spec` is `extension:path`.
fn probe_child(spec: &str) {
    let (format, path) = spec.split_once(':').unwrap();
    let format = Format::from_extension(format).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let before = peak_kib();
    let outcome = match parse(format, &bytes, &ParseLimits::default()) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.reason().to_owned(),
    };
    let after = peak_kib();
    println!("PROBE {outcome} {}", after.saturating_sub(before));
}

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Parses `bytes` in a child process; returns the outcome and the peak memory growth in KiB.
fn probe(format: Format, bytes: &[u8]) -> (String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "zip_bombs::memory_probe", "--nocapture"])
        .env(
            PROBE_ENV,
            format!("{}:{}", format.extension(), path.display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PROBE "))
        .unwrap_or_else(|| {
            panic!(
                "no probe output: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let (outcome, kib) = line.split_once(' ').unwrap();
    (outcome.to_owned(), kib.parse().unwrap())
}

/// Peak memory a rejected bomb may add: the reader stops after a few MiB of output.
const MAX_GROWTH_KIB: u64 = 48 * 1024;

#[test]
fn a_gigabyte_part_is_stopped_early_with_little_memory() {
    let bomb = gigabyte_bomb();
    assert!(
        bomb.len() < 2 << 20,
        "1 GiB compressed to {} bytes",
        bomb.len()
    );
    for format in ZIP_FORMATS {
        let (base, main) = skeleton(format);
        let bytes = replace_part(&base, main, bomb);
        let err = parse(format, &bytes, &ParseLimits::default()).unwrap_err();
        assert!(
            matches!(&err, ParseError::DecompressionLimit { part, .. } if part == main),
            "{format}: {err}"
        );
        assert_eq!(err.reason(), "decompression_limit");
        let (outcome, growth) = probe(format, &bytes);
        assert_eq!(outcome, "decompression_limit", "{format}");
        eprintln!(
            "{format}: 1 GiB bomb ({} bytes) rejected; peak memory grew {growth} KiB",
            bytes.len()
        );
        assert!(growth < MAX_GROWTH_KIB, "{format}: peak grew {growth} KiB");

        // With the ratio check off, the absolute budget still holds.
        let limits = ParseLimits {
            max_ratio: u64::MAX,
            max_uncompressed_bytes: 8 << 20,
            ..ParseLimits::default()
        };
        let err = parse(format, &bytes, &limits).unwrap_err();
        assert!(
            matches!(err, ParseError::DecompressionLimit { limit, .. } if limit <= 8 << 20),
            "{format}: {err}"
        );
    }
}

#[test]
fn sizes_in_the_headers_are_never_trusted() {
    // 64 MiB that claims to be 100 bytes.
    let mut lying = bomb_zip(64 << 20);
    lie_about_size(&mut lying, 100);
    for format in ZIP_FORMATS {
        let (base, main) = skeleton(format);
        let bytes = replace_part(&base, main, &lying);
        let err = parse(format, &bytes, &ParseLimits::default()).unwrap_err();
        assert_eq!(err.reason(), "decompression_limit", "{format}: {err}");
        let (outcome, growth) = probe(format, &bytes);
        assert_eq!(outcome, "decompression_limit", "{format}");
        assert!(growth < MAX_GROWTH_KIB, "{format}: peak grew {growth} KiB");
    }

    // A sound package whose headers understate every size is read in full all the same.
    let body = crate::util::w_p(None, &"kata ".repeat(2000));
    let mut small = docx(&crate::util::document_xml(&body), &[]);
    lie_about_size(&mut small, 10);
    let doc = parse(Format::Docx, &small, &ParseLimits::default()).unwrap();
    assert_eq!(doc.full_text().split_whitespace().count(), 2000);
}

#[test]
fn a_hundred_thousand_entries_are_refused_before_reading() {
    for format in ZIP_FORMATS {
        let bytes = many_entries(format);
        let err = parse(format, &bytes, &ParseLimits::default()).unwrap_err();
        assert!(
            matches!(err, ParseError::TooManyEntries { count, max: 10_000 } if count > 100_000),
            "{format}: {err}"
        );
        assert_eq!(err.reason(), "decompression_limit");
        let (outcome, growth) = probe(format, &bytes);
        assert_eq!(outcome, "decompression_limit");
        assert!(growth < MAX_GROWTH_KIB, "{format}: peak grew {growth} KiB");
    }
}

#[test]
fn many_end_records_are_refused() {
    let (mut bytes, _) = skeleton(Format::Docx);
    for _ in 0..100 {
        bytes.extend_from_slice(b"PK\x05\x06");
        bytes.extend_from_slice(&[0; 18]);
    }
    let err = parse(Format::Docx, &bytes, &ParseLimits::default()).unwrap_err();
    assert_eq!(err.reason(), "parse_error", "{err}");
}

/// The XML attack as the main part of `format`, raw and with its root's content moved to where
/// the format reads text (keeping the DTD, so entity references land in text).
fn attack_packages(format: Format, raw: &str) -> Vec<(&'static str, Vec<u8>)> {
    let (prolog, inner) = split_attack(raw);
    let wrapped = match format {
        Format::Docx => format!(
            r#"<?xml version="1.0"?>{prolog}<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>{inner}</w:t></w:r></w:p></w:body></w:document>"#
        ),
        Format::Xlsx => format!(
            r#"<?xml version="1.0"?>{prolog}<worksheet xmlns="{SHEET_NS}"><sheetData><row><c t="inlineStr"><is><t>{inner}</t></is></c></row></sheetData></worksheet>"#
        ),
        Format::Pptx => format!(
            r#"<?xml version="1.0"?>{prolog}<p:sld xmlns:p="p" xmlns:a="{A_NS}"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{inner}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        ),
        _ => unreachable!(),
    };
    let (base, main) = skeleton(format);
    let mut out = Vec::new();
    for (what, xml) in [("raw", raw.to_owned()), ("wrapped", wrapped)] {
        let bomb = package(&[("bomb.xml", xml.as_bytes())]);
        out.push((what, replace_part(&base, main, &bomb)));
    }
    out
}

/// `(DTD prolog without the XML declaration, content of the root element)`.
fn split_attack(xml: &str) -> (String, &str) {
    let (prolog, root) = match xml.find("]>") {
        Some(i) => (&xml[..i + 2], &xml[i + 2..]),
        None => ("", xml),
    };
    let prolog = match (prolog.find("<?xml"), prolog.find("?>")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &prolog[..a], &prolog[b + 2..]),
        _ => prolog.to_owned(),
    };
    let inner = match (root.find('>'), root.rfind('<')) {
        (Some(a), Some(b)) if a < b => &root[a + 1..b],
        _ => root,
    };
    (prolog, inner)
}

#[test]
#[ignore = "needs ../shared/corpora"]
fn xml_attacks_as_main_parts_of_every_zip_format() {
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
        for format in ZIP_FORMATS {
            for (what, bytes) in attack_packages(format, &raw) {
                match parse(format, &bytes, &ParseLimits::default()) {
                    Ok(doc) => assert!(
                        doc.full_text().len() <= limit,
                        "{format} {what} {}: text grew to {} bytes",
                        path.display(),
                        doc.full_text().len()
                    ),
                    Err(e) => assert!(
                        matches!(e.reason(), "parse_error" | "no_text"),
                        "{format} {what} {}: {e}",
                        path.display()
                    ),
                }
            }
        }
    }
    assert!(seen >= 10, "only {seen} attack files in {}", dir.display());
    // The billion laughs never expands: its wrapped text is only what is written literally.
    let bomb = std::fs::read_to_string(dir.join("xmlbomb.xml")).unwrap();
    for format in ZIP_FORMATS {
        let (_, wrapped) = attack_packages(format, &bomb).remove(1);
        let result = parse(format, &wrapped, &ParseLimits::default());
        assert!(
            matches!(result, Err(ParseError::NoText)),
            "{format}: {result:?}"
        );
    }
}

#[test]
fn a_highly_compressible_real_sheet_is_fine() {
    // 20 000 rows of the same cells compress far beyond 1:200 overall, but every part stays
    // under the MiB where ratios start to count.
    let rows: String = (1..=20_000)
        .map(|r| {
            format!(
                r#"<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>Pekerja {r}</t></is></c></row>"#
            )
        })
        .collect();
    assert!(rows.len() > 1 << 20);
    let bytes = xlsx(&[("S", &sheet_xml(&rows))], &[], None);
    let doc = parse(Format::Xlsx, &bytes, &ParseLimits::default()).unwrap();
    // The sheet's heading, the header row's first data row, and every row after.
    assert_eq!(doc.blocks.len(), 20_000);
}
