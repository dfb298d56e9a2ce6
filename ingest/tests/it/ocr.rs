//! Scanned PDFs: pages without a text layer are rendered and read with Debian's `pdftoppm` and
//! `tesseract` (`tesseract-ocr`, `tesseract-ocr-eng`, `tesseract-ocr-msa`). The scans are made
//! here: a text PDF is rendered to a JPEG with `pdftoppm`, and the JPEG is wrapped into a new
//! PDF as a page-sized image with no text.
//!
//! The tests need those tools: they are `#[ignore]`d for a plain `cargo test` (`scripts/test.sh`
//! installs the tools and runs them with `--include-ignored`), and fail, naming the missing
//! tool, when run without them. Tesseract being absent is covered with a nonexistent path.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Object, Stream};
use tanya_ingest::{parse, Format, OcrOptions, ParseError, ParseLimits};

use crate::util::{pdf, read_with};

const MALAY: &str = "Permohonan cuti tahunan hendaklah dibuat melalui sistem.";
const ENGLISH: &str = "Employees must submit the leave application early.";

const NEEDS_TOOLS: &str = "needs poppler-utils and tesseract-ocr (msa, eng)";

fn has_tool(name: &str, arg: &str) -> bool {
    Command::new(name)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
}

/// Whether `tesseract` with Malay and English data is installed.
fn tesseract_ready() -> bool {
    Command::new("tesseract")
        .arg("--list-langs")
        .output()
        .is_ok_and(|o| {
            let out = String::from_utf8_lossy(&o.stdout);
            let langs: Vec<&str> = out.lines().map(str::trim).collect();
            langs.contains(&"msa") && langs.contains(&"eng")
        })
}

/// Fails the test unless `pdftoppm` and `tesseract` with Malay and English data are installed.
fn require_ocr_tools() {
    assert!(
        has_tool("pdftoppm", "-v"),
        "{NEEDS_TOOLS}: `pdftoppm` is not installed (apt-get install poppler-utils, or \
         scripts/setup_system.sh)"
    );
    assert!(
        tesseract_ready(),
        "{NEEDS_TOOLS}: `tesseract --list-langs` does not list msa and eng (apt-get install \
         tesseract-ocr tesseract-ocr-msa tesseract-ocr-eng, or scripts/setup_system.sh)"
    );
}

/// A JPEG scan of a one-page text PDF, at `dpi`.
fn scan(lines: &[&str], dpi: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("text.pdf");
    std::fs::write(&input, pdf(&[lines], None)).unwrap();
    let out: PathBuf = dir.path().join("scan");
    let status = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-jpeg", "-gray", "-singlefile"])
        .arg(&input)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(dir.path().join("scan.jpg")).unwrap()
}

/// `(width, height, components)` from a JPEG's start-of-frame segment.
fn jpeg_frame(jpeg: &[u8]) -> (i64, i64, u8) {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "not a JPEG segment at {i}");
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if matches!(marker, 0xC0..=0xC3) {
            let h = i64::from(u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]));
            let w = i64::from(u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]));
            return (w, h, jpeg[i + 9]);
        }
        i += 2 + len;
    }
    panic!("no start of frame in the JPEG");
}

/// One page of a test PDF: text lines, or a scan filling the A4 page.
enum Page<'a> {
    Text(&'a [&'a str]),
    Scan(&'a [u8]),
}

/// An A4 PDF of text pages (Helvetica) and scanned pages (a DCT image, no text).
fn pdf_of(pages: &[Page<'_>]) -> Vec<u8> {
    let mut doc = lopdf::Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut kids = Vec::new();
    for page in pages {
        let (ops, resources) = match page {
            Page::Text(lines) => {
                let mut ops = vec![
                    Operation::new("BT", vec![]),
                    Operation::new("Tf", vec!["F1".into(), 11.into()]),
                    Operation::new("Td", vec![72.into(), 770.into()]),
                ];
                for line in *lines {
                    ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
                    ops.push(Operation::new("Td", vec![0.into(), (-14).into()]));
                }
                ops.push(Operation::new("ET", vec![]));
                (
                    ops,
                    dictionary! { "Font" => dictionary! { "F1" => font_id } },
                )
            }
            Page::Scan(jpeg) => {
                let (w, h, components) = jpeg_frame(jpeg);
                let colour = if components == 1 {
                    "DeviceGray"
                } else {
                    "DeviceRGB"
                };
                let image = Stream::new(
                    dictionary! {
                        "Type" => "XObject", "Subtype" => "Image",
                        "Width" => w, "Height" => h,
                        "ColorSpace" => colour, "BitsPerComponent" => 8,
                        "Filter" => "DCTDecode",
                    },
                    jpeg.to_vec(),
                );
                let image_id = doc.add_object(image);
                let ops = vec![
                    Operation::new("q", vec![]),
                    Operation::new(
                        "cm",
                        vec![
                            595.into(),
                            0.into(),
                            0.into(),
                            842.into(),
                            0.into(),
                            0.into(),
                        ],
                    ),
                    Operation::new("Do", vec!["Im1".into()]),
                    Operation::new("Q", vec![]),
                ];
                (
                    ops,
                    dictionary! { "XObject" => dictionary! { "Im1" => image_id } },
                )
            }
        };
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            "Resources" => resources,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn limits_with(ocr: Option<OcrOptions>) -> ParseLimits {
    ParseLimits {
        ocr,
        ..ParseLimits::default()
    }
}

#[test]
#[ignore = "needs poppler-utils and tesseract-ocr (msa, eng)"]
fn a_scanned_pdf_is_read_by_ocr_in_malay_and_english() {
    require_ocr_tools();
    let scanned = pdf_of(&[Page::Scan(&scan(&[MALAY, "", ENGLISH], 200))]);
    // Without OCR, a scan has no text.
    let err = parse(Format::Pdf, &scanned, &limits_with(None)).unwrap_err();
    assert!(matches!(err, ParseError::NoText), "{err}");

    let doc = parse(Format::Pdf, &scanned, &ParseLimits::default()).unwrap();
    let text = doc.full_text();
    assert_eq!(doc.ocr_pages, [1], "{text}");
    assert!(doc.blocks.iter().all(|b| b.page == Some(1)));
    for word in [
        "Permohonan",
        "tahunan",
        "hendaklah",
        "Employees",
        "application",
    ] {
        assert!(text.contains(word), "OCR missed {word:?} in {text:?}");
    }

    // Through read_document: the pages that came from OCR are reported.
    let read = read_with(
        "imbasan.pdf",
        &scanned,
        &ParseLimits::default(),
        &tanya_ingest::ChunkerConfig::default(),
    )
    .unwrap();
    assert_eq!(read.ocr_pages, [1]);
    assert_eq!(read.pages, Some(1));
}

#[test]
#[ignore = "needs poppler-utils and tesseract-ocr (msa, eng)"]
fn only_the_pages_without_text_are_ocrd() {
    require_ocr_tools();
    let text_page: &[&str] = &["Bahagian satu mempunyai lapisan teks yang sebenar."];
    let scan_page = scan(&[ENGLISH], 200);
    let mixed = pdf_of(&[
        Page::Text(text_page),
        Page::Scan(&scan_page),
        Page::Text(&[]),
    ]);

    // Without tesseract the text page is still read, and nothing is marked as OCR'd.
    let missing = OcrOptions {
        tesseract: PathBuf::from("/nonexistent/tesseract"),
        ..OcrOptions::default()
    };
    let doc = parse(Format::Pdf, &mixed, &limits_with(Some(missing.clone()))).unwrap();
    assert!(doc.ocr_pages.is_empty());
    assert_eq!(doc.full_text(), text_page[0]);
    // A PDF that is nothing but scans cannot be read then, and says why.
    let only_scan = pdf_of(&[Page::Scan(&scan_page)]);
    let err = parse(Format::Pdf, &only_scan, &limits_with(Some(missing))).unwrap_err();
    assert!(matches!(err, ParseError::OcrUnavailable(_)), "{err}");
    assert_eq!(err.reason(), "ocr_unavailable");

    // A page that takes longer than its time is killed, and the reason is `timeout`.
    let hurried = OcrOptions {
        page_timeout: Duration::from_millis(1),
        ..OcrOptions::default()
    };
    let err = parse(Format::Pdf, &only_scan, &limits_with(Some(hurried))).unwrap_err();
    assert_eq!(err.reason(), "timeout", "{err}");

    let doc = parse(Format::Pdf, &mixed, &ParseLimits::default()).unwrap();
    assert_eq!(doc.ocr_pages, [2]);
    let page2: Vec<&str> = doc
        .blocks
        .iter()
        .filter(|b| b.page == Some(2))
        .map(|b| b.text.as_str())
        .collect();
    assert!(page2.join(" ").contains("Employees"), "{page2:?}");
    assert_eq!(doc.blocks[0].page, Some(1));
    assert_eq!(doc.blocks[0].text, text_page[0]);
}
