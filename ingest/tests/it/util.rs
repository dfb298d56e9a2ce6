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

/// This crate's folder, as cargo says when it runs the tests (a test binary reused from a
/// build in another checkout would carry that checkout's compile-time path).
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The shared corpora folder next to the project (`../shared/corpora` from the repository
/// root). Tests that use it are `#[ignore = "needs ../shared/corpora"]`; run without it, they
/// fail here, naming the path.
pub fn corpora() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let p = DIR.get_or_init(|| manifest_dir().join("../../shared/corpora"));
    assert!(
        p.is_dir(),
        "needs ../shared/corpora: {} is not a directory",
        p.display()
    );
    p
}

/// `(heading level, text)` for each block of a document's chunks' source.
pub fn outline(doc: &tanya_ingest::ParsedDocument) -> Vec<(Option<u8>, String)> {
    doc.blocks
        .iter()
        .map(|b| (b.heading_level(), b.text.clone()))
        .collect()
}

/// A zip package of the given parts, deflated.
pub fn package(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, body) in parts {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const PKG_REL_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

fn rels(entries: &[(String, &str, String)]) -> String {
    let mut out =
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL_NS}">"#);
    for (id, ty, target) in entries {
        out.push_str(&format!(
            r#"<Relationship Id="{id}" Type="{REL_NS}/{ty}" Target="{target}"/>"#
        ));
    }
    out.push_str("</Relationships>");
    out
}

pub const SHEET_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

/// A worksheet part with the given `<row>` elements.
pub fn sheet_xml(rows: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{SHEET_NS}"><sheetData>{rows}</sheetData></worksheet>"#
    )
}

/// An XLSX: named sheets (worksheet XML each), a shared string table, optional styles.
pub fn xlsx(sheets: &[(&str, &str)], shared: &[&str], styles: Option<&str>) -> Vec<u8> {
    let mut workbook = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{SHEET_NS}" xmlns:r="{REL_NS}"><sheets>"#
    );
    let mut wb_rels = Vec::new();
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (name, xml)) in sheets.iter().enumerate() {
        let n = i + 1;
        workbook.push_str(&format!(
            r#"<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>"#
        ));
        wb_rels.push((
            format!("rId{n}"),
            "worksheet",
            format!("worksheets/sheet{n}.xml"),
        ));
        parts.push((
            format!("xl/worksheets/sheet{n}.xml"),
            xml.as_bytes().to_vec(),
        ));
    }
    workbook.push_str("</sheets></workbook>");
    if !shared.is_empty() {
        let mut sst = format!(
            r#"<sst xmlns="{SHEET_NS}" count="{0}" uniqueCount="{0}">"#,
            shared.len()
        );
        for s in shared {
            sst.push_str(&format!("<si><t>{s}</t></si>"));
        }
        sst.push_str("</sst>");
        wb_rels.push(("rIdS".into(), "sharedStrings", "sharedStrings.xml".into()));
        parts.push(("xl/sharedStrings.xml".into(), sst.into_bytes()));
    }
    if let Some(styles) = styles {
        wb_rels.push(("rIdT".into(), "styles", "styles.xml".into()));
        parts.push(("xl/styles.xml".into(), styles.as_bytes().to_vec()));
    }
    let root = rels(&[("rId1".into(), "officeDocument", "xl/workbook.xml".into())]);
    let wb_rels = rels(&wb_rels);
    let mut all: Vec<(&str, &[u8])> = vec![
        ("_rels/.rels", root.as_bytes()),
        ("xl/workbook.xml", workbook.as_bytes()),
        ("xl/_rels/workbook.xml.rels", wb_rels.as_bytes()),
    ];
    all.extend(parts.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    package(&all)
}

pub const P_NS: &str = "http://schemas.openxmlformats.org/presentationml/2006/main";
pub const A_NS: &str = "http://schemas.openxmlformats.org/drawingml/2006/main";

/// A shape: `ph` is the placeholder type (`Some("")` for an untyped one), each string a
/// paragraph.
pub fn p_sp(ph: Option<&str>, paragraphs: &[&str]) -> String {
    let ph = match ph {
        Some("") => "<p:ph idx=\"1\"/>".to_owned(),
        Some(t) => format!(r#"<p:ph type="{t}"/>"#),
        None => String::new(),
    };
    let paras: String = paragraphs
        .iter()
        .map(|p| format!("<a:p><a:r><a:t>{p}</a:t></a:r></a:p>"))
        .collect();
    format!(
        r#"<p:sp><p:nvSpPr><p:cNvPr id="2" name="s"/><p:cNvSpPr/><p:nvPr>{ph}</p:nvPr></p:nvSpPr><p:txBody><a:bodyPr/>{paras}</p:txBody></p:sp>"#
    )
}

/// A slide (or, with `root = "notes"`, a notes slide) holding the given shapes.
pub fn slide_xml(root: &str, shapes: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><p:{root} xmlns:p="{P_NS}" xmlns:a="{A_NS}" xmlns:r="{REL_NS}"><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:{root}>"#
    )
}

/// A PPTX: slides as (slide XML, notes XML), numbered in part names 1…n, listed in the
/// presentation in `order` (indices into `slides`).
pub fn pptx(
    slides: &[(String, Option<String>)],
    order: &[usize],
    core_title: Option<&str>,
) -> Vec<u8> {
    let mut pres = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><p:presentation xmlns:p="{P_NS}" xmlns:r="{REL_NS}"><p:sldIdLst>"#
    );
    for (k, &i) in order.iter().enumerate() {
        pres.push_str(&format!(
            r#"<p:sldId id="{}" r:id="rId{}"/>"#,
            256 + k,
            i + 1
        ));
    }
    pres.push_str("</p:sldIdLst></p:presentation>");
    let mut pres_rels = Vec::new();
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (slide, notes)) in slides.iter().enumerate() {
        let n = i + 1;
        pres_rels.push((format!("rId{n}"), "slide", format!("slides/slide{n}.xml")));
        parts.push((
            format!("ppt/slides/slide{n}.xml"),
            slide.clone().into_bytes(),
        ));
        if let Some(notes) = notes {
            let r = rels(&[(
                "rId1".into(),
                "notesSlide",
                format!("../notesSlides/notesSlide{n}.xml"),
            )]);
            parts.push((
                format!("ppt/slides/_rels/slide{n}.xml.rels"),
                r.into_bytes(),
            ));
            parts.push((
                format!("ppt/notesSlides/notesSlide{n}.xml"),
                notes.clone().into_bytes(),
            ));
        }
    }
    let root = rels(&[(
        "rId1".into(),
        "officeDocument",
        "ppt/presentation.xml".into(),
    )]);
    let pres_rels = rels(&pres_rels);
    let core = core_title.map(core_xml);
    let mut all: Vec<(&str, &[u8])> = vec![
        ("_rels/.rels", root.as_bytes()),
        ("ppt/presentation.xml", pres.as_bytes()),
        ("ppt/_rels/presentation.xml.rels", pres_rels.as_bytes()),
    ];
    if let Some(core) = &core {
        all.push(("docProps/core.xml", core.as_bytes()));
    }
    all.extend(parts.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    package(&all)
}
