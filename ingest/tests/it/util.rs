//! Fixture builders shared by the integration tests: DOCX packages written with `zip`, PDFs
//! written with `lopdf`, and a one-call `read` over a file in a temporary folder.

use std::io::{Cursor, Write};
use std::path::Path;

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Object, Stream};
use tanya_ingest::{
    read_document, walk, ChunkerConfig, Document, ParseLimits, ReadError, WalkOptions, WordEstimate,
};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub const W_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

/// A paragraph, optionally styled.
pub fn w_p(style: Option<&str>, text: &str) -> String {
    let ppr = style
        .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
        .unwrap_or_default();
    format!(r#"<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

/// A `word/document.xml` with the given body XML.
pub fn document_xml(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>"#
    )
}

/// A DOCX package: content types, relationships, `word/document.xml`, plus `extra` parts.
pub fn docx(document: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut parts = vec![
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", RELS),
        ("word/document.xml", document),
    ];
    parts.extend_from_slice(extra);
    for (name, body) in parts {
        zip.start_file(name, opts).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// `docProps/core.xml` with a title.
pub fn core_xml(title: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>"#
    )
}

/// One page of a generated PDF: lines of text; an empty line leaves a paragraph gap.
pub type PdfPage<'a> = &'a [&'a str];

/// A PDF with Helvetica text, one content stream per page, and an Info title.
pub fn pdf(pages: &[PdfPage<'_>], title: Option<&str>) -> Vec<u8> {
    let mut doc = lopdf::Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for lines in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("Td", vec![72.into(), 770.into()]),
        ];
        let mut gap = 0;
        for line in lines.iter() {
            if line.is_empty() {
                gap += 14;
                continue;
            }
            if ops.len() > 3 {
                ops.push(Operation::new("Td", vec![0.into(), (-14 - gap).into()]));
            }
            gap = 0;
            ops.push(Operation::new(
                "Tj",
                vec![Object::string_literal(standard_encoding(line))],
            ));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    if let Some(t) = title {
        let info_id = doc.add_object(dictionary! { "Title" => Object::string_literal(t) });
        doc.trailer.set("Info", info_id);
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// ASCII plus the `ﬁ`/`ﬂ` ligatures, in the Type 1 fonts' StandardEncoding.
fn standard_encoding(line: &str) -> Vec<u8> {
    line.chars()
        .map(|c| match c {
            'ﬁ' => 0xAE,
            'ﬂ' => 0xAF,
            c if c.is_ascii() => c as u8,
            c => panic!("{c:?} is not in the test PDF encoding"),
        })
        .collect()
}

/// Writes `bytes` as `name` in a fresh temporary folder, walks it and reads the one file.
pub fn read(name: &str, bytes: &[u8]) -> Result<Document, ReadError> {
    read_with(
        name,
        bytes,
        &ParseLimits::default(),
        &ChunkerConfig::default(),
    )
}

/// [`read`] with explicit limits and chunking.
pub fn read_with(
    name: &str,
    bytes: &[u8],
    limits: &ParseLimits,
    cfg: &ChunkerConfig,
) -> Result<Document, ReadError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let w = walk(dir.path(), &WalkOptions::default()).unwrap();
    assert_eq!(w.files.len(), 1, "{:?}", w.skipped);
    read_document(&w.files[0], limits, cfg, &WordEstimate)
}

/// The shared corpora folder next to the project, if present.
pub fn corpora() -> Option<&'static Path> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"));
    p.is_dir().then_some(p)
}

/// `(heading level, text)` for each block of a document's chunks' source.
pub fn outline(doc: &tanya_ingest::ParsedDocument) -> Vec<(Option<u8>, String)> {
    doc.blocks
        .iter()
        .map(|b| (b.heading_level(), b.text.clone()))
        .collect()
}
