//! XLSX, CSV and PPTX end to end, from packages and files built here.

use tanya_ingest::{parse, Format, Lang, ParseError, ParseLimits};

use crate::util::{outline, p_sp, pptx, read, sheet_xml, slide_xml, xlsx};

const STYLES: &str = r#"<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts><cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="4"/></cellXfs></styleSheet>"#;

fn leave_workbook() -> Vec<u8> {
    // Shared strings: 0 Nama, 1 Jabatan, 2 Baki cuti, 3 Ali, 4 Kewangan, 5 Mula.
    let shared = ["Nama", "Jabatan", "Baki cuti", "Ali", "Kewangan", "Mula"];
    let cuti = sheet_xml(
        r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Senarai Baki Cuti</t></is></c></row>
           <row r="3"><c r="A3" t="s"><v>0</v></c><c r="B3" t="s"><v>1</v></c><c r="C3" t="s"><v>2</v></c><c r="D3" t="s"><v>5</v></c></row>
           <row r="4"><c r="A4" t="s"><v>3</v></c><c r="B4" t="s"><v>4</v></c><c r="C4"><f>10+2</f><v>12</v></c><c r="D4" s="1"><v>45352</v></c></row>
           <row r="5"><c r="A5" t="inlineStr"><is><r><t>Siti </t></r><r><t>Aminah</t></r></is></c><c r="C5" s="2"><v>3.5</v></c><c r="E5" t="b"><v>1</v></c></row>
           <row r="6"><c r="A6" t="e"><v>#N/A</v></c></row>
           <row r="7"/>"#,
    );
    let nota = sheet_xml(
        r#"<row><c t="inlineStr"><is><t>Nota</t></is></c></row><row><c t="str"><f>A1</f><v>Cuti perlu diluluskan</v></c></row>"#,
    );
    xlsx(
        &[("Cuti 2024", &cuti), ("Nota", &nota)],
        &shared,
        Some(STYLES),
    )
}

#[test]
fn xlsx_rows_keep_their_header_and_sheet() {
    let parsed = parse(Format::Xlsx, &leave_workbook(), &ParseLimits::default()).unwrap();
    let expected: Vec<(Option<u8>, String)> = [
        (Some(1), "Cuti 2024"),
        (None, "Senarai Baki Cuti"),
        (
            None,
            "Nama: Ali; Jabatan: Kewangan; Baki cuti: 12; Mula: 2024-03-01",
        ),
        (None, "Nama: Siti Aminah; Baki cuti: 3.5; TRUE"),
        (Some(1), "Nota"),
        (None, "Nota: Cuti perlu diluluskan"),
    ]
    .into_iter()
    .map(|(l, t)| (l, t.to_owned()))
    .collect();
    assert_eq!(outline(&parsed), expected);
    assert!(parsed.blocks.iter().all(|b| b.page.is_none()));

    let doc = read("baki cuti.xlsx", &leave_workbook()).unwrap();
    assert_eq!(doc.format, Format::Xlsx);
    assert_eq!(doc.title, "baki cuti");
    assert_eq!(doc.pages, None);
    assert!(doc.chunks[0].text.contains("Nama: Ali; Jabatan: Kewangan"));
}

#[test]
fn xlsx_limits_and_damage_are_typed() {
    let limits = ParseLimits {
        max_table_rows: 2,
        ..ParseLimits::default()
    };
    let err = parse(Format::Xlsx, &leave_workbook(), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::TableTooLarge {
                what: "rows",
                max: 2
            }
        ),
        "{err}"
    );
    assert_eq!(err.reason(), "too_large");

    let broken = xlsx(
        &[("S", "<worksheet><sheetData><row></sheetData>")],
        &[],
        None,
    );
    let err = parse(Format::Xlsx, &broken, &ParseLimits::default()).unwrap_err();
    assert_eq!(err.reason(), "parse_error", "{err}");

    let empty = xlsx(&[("S", &sheet_xml(""))], &[], None);
    let err = parse(Format::Xlsx, &empty, &ParseLimits::default()).unwrap_err();
    assert_eq!(err.reason(), "no_text");

    // A DOCX renamed .xlsx has no workbook.
    let docx = crate::util::docx(&crate::util::document_xml(""), &[]);
    let err = parse(Format::Xlsx, &docx, &ParseLimits::default()).unwrap_err();
    assert!(matches!(err, ParseError::WrongKind(_)), "{err}");
    assert_eq!(err.reason(), "parse_error");
    let err = parse(Format::Xlsx, b"Nama,Baki\n", &ParseLimits::default()).unwrap_err();
    assert!(matches!(err, ParseError::NotZip), "{err}");
}

#[test]
fn csv_and_tsv_files() {
    let csv = "Nama;Jabatan;Baki cuti\r\nAli;Kewangan;12\r\n\"Tan; Mei Ling\";\"Sumber \"\"Manusia\"\"\";3\r\n";
    let doc = read("baki.csv", csv.as_bytes()).unwrap();
    assert_eq!(doc.format, Format::Csv);
    assert_eq!(
        doc.full_text,
        "Nama: Ali; Jabatan: Kewangan; Baki cuti: 12\n\n\
         Nama: Tan; Mei Ling; Jabatan: Sumber \"Manusia\"; Baki cuti: 3"
    );
    // Windows-1252 bytes decode like text files.
    let tsv = b"Name\tCity\nJos\xe9\tKuala Lumpur\n";
    let doc = read("staff.tsv", tsv).unwrap();
    assert_eq!(doc.full_text, "Name: José; City: Kuala Lumpur");
    let err = read("empty.csv", b"\n,,\n").unwrap_err();
    assert_eq!(err.reason(), "no_text");
}

fn deck() -> Vec<u8> {
    let s1 = slide_xml(
        "sld",
        &[
            p_sp(Some("ctrTitle"), &["Dasar Cuti 2024"]),
            p_sp(Some("subTitle"), &["Jabatan Sumber Manusia"]),
        ]
        .concat(),
    );
    let s2 = slide_xml(
        "sld",
        &[
            p_sp(Some(""), &["Permohonan dibuat 14 hari lebih awal.", "Kelulusan oleh ketua jabatan."]),
            p_sp(Some("title"), &["Cuti Tahunan"]),
            p_sp(Some("sldNum"), &["2"]),
            p_sp(Some("ftr"), &["Sulit"]),
            r#"<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>Gred</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>Hari</a:t></a:r></a:p></a:txBody></a:tc></a:tr><a:tr><a:tc><a:txBody><a:p><a:r><a:t>41</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>25</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>"#.to_owned(),
        ]
        .concat(),
    );
    let n2 = slide_xml(
        "notes",
        &[
            p_sp(Some("sldImg"), &[]),
            p_sp(Some("body"), &["Tekankan tarikh akhir permohonan."]),
            p_sp(Some("sldNum"), &["2"]),
        ]
        .concat(),
    );
    let s3 = slide_xml("sld", &p_sp(None, &["Soalan?"]));
    // Part names in one order, the presentation in another: slide3.xml is shown second.
    pptx(&[(s1, None), (s2, Some(n2)), (s3, None)], &[0, 2, 1], None)
}

#[test]
fn pptx_slides_in_presentation_order_with_notes() {
    let parsed = parse(Format::Pptx, &deck(), &ParseLimits::default()).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Dasar Cuti 2024"));
    let got: Vec<(Option<u8>, &str, Option<u32>)> = parsed
        .blocks
        .iter()
        .map(|b| (b.heading_level(), b.text.as_str(), b.page))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), "Dasar Cuti 2024", Some(1)),
            (None, "Jabatan Sumber Manusia", Some(1)),
            (None, "Soalan?", Some(2)),
            (Some(1), "Cuti Tahunan", Some(3)),
            (None, "Permohonan dibuat 14 hari lebih awal.", Some(3)),
            (None, "Kelulusan oleh ketua jabatan.", Some(3)),
            (None, "Gred | Hari", Some(3)),
            (None, "41 | 25", Some(3)),
            (None, "Tekankan tarikh akhir permohonan.", Some(3)),
        ]
    );

    let doc = read("taklimat.pptx", &deck()).unwrap();
    assert_eq!(doc.format, Format::Pptx);
    assert_eq!(doc.pages, Some(3));
    assert_eq!(doc.lang, Lang::Ms);
    let pages: Vec<Option<u32>> = doc.chunks.iter().map(|c| c.page).collect();
    assert!(pages.windows(2).all(|w| w[0] <= w[1]), "{pages:?}");
    assert_eq!(doc.chunks.last().unwrap().page, Some(3));
    assert_eq!(doc.chunks.last().unwrap().heading_path, ["Cuti Tahunan"]);
}

#[test]
fn pptx_core_title_and_damage() {
    let s = slide_xml("sld", &p_sp(Some("title"), &["Satu"]));
    let bytes = pptx(&[(s, None)], &[0], Some("Taklimat Cuti"));
    let parsed = parse(Format::Pptx, &bytes, &ParseLimits::default()).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("Taklimat Cuti"));

    let broken = pptx(&[("<p:sld><p:sp></p:sld>".to_owned(), None)], &[0], None);
    let err = parse(Format::Pptx, &broken, &ParseLimits::default()).unwrap_err();
    assert_eq!(err.reason(), "parse_error", "{err}");
    let empty = pptx(&[(slide_xml("sld", ""), None)], &[0], None);
    let err = parse(Format::Pptx, &empty, &ParseLimits::default()).unwrap_err();
    assert_eq!(err.reason(), "no_text");
}
