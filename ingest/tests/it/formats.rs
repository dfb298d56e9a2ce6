//! Every format, end to end through `walk` + `read_document`: headings recovered, titles found,
//! chunks located.

use tanya_ingest::{parse, Format, Lang, ParseError, ParseLimits};

use crate::util::{core_xml, document_xml, docx, outline, pdf, read, w_p};

#[test]
fn markdown_document() {
    let md = "# Dasar Cuti\n\nDasar ini adalah untuk semua pekerja.\n\n## Cuti Tahunan\n\n\
              Pekerja yang layak boleh memohon cuti tahunan.\n\n### Kelayakan\n\nSekurang-kurangnya setahun.\n";
    let doc = read("dasar.md", md.as_bytes()).unwrap();
    assert_eq!(doc.title, "Dasar Cuti");
    assert_eq!(doc.format, Format::Markdown);
    assert_eq!(doc.lang, Lang::Ms);
    assert_eq!(doc.pages, None);
    assert_eq!(doc.content_hash, tanya_ingest::content_hash(md.as_bytes()));
    let last = doc.chunks.last().unwrap();
    // A level-3 heading joins the chunk of its level-2 section while that chunk is small.
    assert_eq!(last.heading_path, ["Dasar Cuti", "Cuti Tahunan"]);
    assert!(last.text.starts_with("Cuti Tahunan"), "{:?}", last.text);
    assert!(last.text.contains("\n\nKelayakan\n\n"), "{:?}", last.text);
    for c in &doc.chunks {
        let slice: String = doc
            .full_text
            .chars()
            .skip(c.char_start)
            .take(c.char_end - c.char_start)
            .collect();
        assert_eq!(slice, c.text);
    }
}

#[test]
fn html_document() {
    let html = "<html><head><title>Annual Leave Policy</title><script>alert(1)</script></head>\
                <body><nav>Menu</nav><h1>Annual Leave</h1><p>Employees shall apply for leave \
                in advance.</p><h2>Eligibility</h2><p>All permanent staff are eligible.</p></body></html>";
    let doc = read("policy.html", html.as_bytes()).unwrap();
    assert_eq!(doc.title, "Annual Leave Policy");
    assert_eq!(doc.lang, Lang::En);
    assert!(!doc.full_text.contains("alert"));
    assert!(!doc.full_text.contains("Menu"));
    assert_eq!(doc.chunks.len(), 2);
    assert_eq!(doc.chunks[1].heading_path, ["Annual Leave", "Eligibility"]);
}

#[test]
fn text_document() {
    let txt =
        "Garis Panduan Kerja\r\n\r\n1. Pengenalan\r\nGaris panduan ini terpakai kepada semua \
               pekerja.\r\n\r\n2. Waktu Bekerja\r\nWaktu bekerja ialah 8 jam sehari.\r\n";
    let doc = read("panduan.txt", txt.as_bytes()).unwrap();
    assert_eq!(doc.title, "Garis Panduan Kerja");
    assert_eq!(doc.chunks.len(), 2, "{:#?}", doc.chunks);
    // The title is a level-1 heading, so numbered level-1 sections are its siblings.
    assert_eq!(doc.chunks[1].heading_path, ["2. Waktu Bekerja"]);
}

#[test]
fn text_without_title_uses_file_stem() {
    let doc = read("nota ringkas.txt", b"hanya satu ayat di sini.").unwrap();
    assert_eq!(doc.title, "nota ringkas");
}

#[test]
fn docx_document_with_headings_tables_and_title() {
    let body = [
        w_p(Some("Title"), "Dasar Keselamatan"),
        w_p(Some("Heading1"), "Pengenalan"),
        w_p(None, "Dasar ini menerangkan keselamatan &amp; kesihatan pekerjaan."),
        w_p(Some("Heading2"), "Tanggungjawab"),
        r#"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Peranan</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Tugas</w:t></w:r></w:p></w:tc></w:tr>
           <w:tr><w:tc><w:p><w:r><w:t>Pengurus</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Memantau</w:t></w:r><w:r><w:tab/><w:t>risiko</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#
            .to_owned(),
        w_p(None, "Semua pekerja hendaklah mematuhi dasar ini."),
    ]
    .concat();
    let bytes = docx(&document_xml(&body), &[]);
    let parsed = parse(Format::Docx, &bytes, &ParseLimits::default()).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Dasar Keselamatan"));
    let got = outline(&parsed);
    let expected: Vec<(Option<u8>, String)> = [
        (Some(1), "Dasar Keselamatan"),
        (Some(1), "Pengenalan"),
        (
            None,
            "Dasar ini menerangkan keselamatan & kesihatan pekerjaan.",
        ),
        (Some(2), "Tanggungjawab"),
        (None, "Peranan | Tugas"),
        (None, "Pengurus | Memantau risiko"),
        (None, "Semua pekerja hendaklah mematuhi dasar ini."),
    ]
    .into_iter()
    .map(|(l, t)| (l, t.to_owned()))
    .collect();
    assert_eq!(got, expected);

    let with_core = docx(
        &document_xml(&body),
        &[("docProps/core.xml", &core_xml("Polisi K&amp;K"))],
    );
    let doc = read("polisi.docx", &with_core).unwrap();
    assert_eq!(doc.title, "Polisi K&K");
    assert_eq!(doc.lang, Lang::Ms);
    let last = doc.chunks.last().unwrap();
    assert_eq!(last.heading_path, ["Pengenalan", "Tanggungjawab"]);
}

#[test]
fn docx_rejections_are_typed() {
    let limits = ParseLimits::default();
    let err = parse(Format::Docx, b"not a zip at all", &limits).unwrap_err();
    assert!(matches!(err, ParseError::NotZip), "{err}");
    let no_document = {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("other.xml", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.finish().unwrap().into_inner()
    };
    let err = parse(Format::Docx, &no_document, &limits).unwrap_err();
    assert!(matches!(err, ParseError::MissingPart(_)), "{err}");
    let broken = docx("<w:document><w:body><w:p></w:body>", &[]);
    let err = parse(Format::Docx, &broken, &limits).unwrap_err();
    assert_eq!(err.reason(), "parse_error", "{err}");
    let truncated = &docx(&document_xml(&w_p(None, "x")), &[])[..60];
    assert!(parse(Format::Docx, truncated, &limits).is_err());
}

#[test]
fn multi_page_pdf_keeps_pages_headings_and_hyphens() {
    let page1: &[&str] = &[
        "1. Pengenalan",
        "Dasar ini terpakai kepada semua pekerja tetap dan kontrak yang berkhidmat",
        "dengan syarikat sekurang-",
        "kurangnya enam bulan. Pelaksana-",
        "an dasar ini dipantau oleh jabatan sumber manusia.",
        "",
        "- 1 -",
    ];
    let page2: &[&str] = &[
        "2. Cuti Tahunan",
        "Kanak-",
        "kanak pekerja tidak termasuk. Permohonan cuti hendaklah dibuat melalui",
        "sistem dalam talian.",
        "",
        "ﬁnal note on ﬂow control.",
    ];
    let page3: &[&str] = &[];
    let bytes = pdf(&[page1, page2, page3], Some("Dasar Cuti Syarikat"));
    let doc = read("dasar.pdf", &bytes).unwrap();
    assert_eq!(doc.title, "Dasar Cuti Syarikat");
    assert_eq!(doc.format, Format::Pdf);
    assert_eq!(doc.pages, Some(2));
    assert_eq!(doc.lang, Lang::Ms);
    assert!(
        doc.full_text.contains("sekurang-kurangnya enam bulan"),
        "{}",
        doc.full_text
    );
    assert!(
        doc.full_text.contains("Pelaksanaan dasar"),
        "{}",
        doc.full_text
    );
    assert!(
        doc.full_text.contains("Kanak-kanak pekerja"),
        "{}",
        doc.full_text
    );
    assert!(doc.full_text.contains("final note on flow control."));
    assert!(!doc.full_text.contains("- 1 -"));
    let pages: Vec<_> = doc.chunks.iter().map(|c| c.page).collect();
    assert_eq!(pages, [Some(1), Some(2)], "{:#?}", doc.chunks);
    assert_eq!(doc.chunks[0].heading_path, ["1. Pengenalan"]);
    assert_eq!(doc.chunks[1].heading_path, ["2. Cuti Tahunan"]);
    assert!(doc.chunks[1].text.starts_with("2. Cuti Tahunan"));
}

#[test]
fn pdf_without_text_and_non_pdf_are_typed_errors() {
    let empty: &[&str] = &[];
    let err = read("kosong.pdf", &pdf(&[empty, empty], None)).unwrap_err();
    assert_eq!(err.reason(), "no_text", "{err}");
    let err = read("palsu.pdf", b"<html>not a pdf</html>").unwrap_err();
    assert_eq!(err.reason(), "parse_error");
    assert!(err.to_string().contains("not a PDF"), "{err}");
}

#[test]
fn empty_and_oversized_files() {
    let err = read("kosong.md", b"").unwrap_err();
    assert_eq!(err.reason(), "no_text");
    let limits = ParseLimits {
        max_file_bytes: 10,
        ..ParseLimits::default()
    };
    let err = crate::util::read_with(
        "besar.txt",
        &[b'a'; 11],
        &limits,
        &tanya_ingest::ChunkerConfig::default(),
    )
    .unwrap_err();
    assert_eq!(err.reason(), "too_large");
    assert!(err.to_string().contains("limit"), "{err}");
}
