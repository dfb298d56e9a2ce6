//! Emails end to end: headers, bodies in their encodings and charsets, attachments returned
//! for the caller, one level of nested email.

use tanya_ingest::{parse, Format, ParseError, ParseLimits};

use crate::util::{document_xml, docx, pdf, read, w_p};

/// Standard base64 with line breaks every 76 characters, as mail clients write it.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    let mut wrapped = String::new();
    for (i, c) in out.chars().enumerate() {
        if i > 0 && i % 76 == 0 {
            wrapped.push_str("\r\n");
        }
        wrapped.push(c);
    }
    wrapped
}

fn part(headers: &str, body: &str) -> String {
    format!("{headers}\r\n\r\n{body}\r\n")
}

/// A forwarded email (as message/rfc822) with a DOCX attachment and an email of its own.
fn forwarded() -> String {
    let inner_docx = docx(
        &document_xml(&w_p(None, "Borang tuntutan perjalanan.")),
        &[],
    );
    let innermost = "From: x@contoh.my\r\nSubject: Terlalu dalam\r\n\r\nTeks tersembunyi.\r\n";
    format!(
        "From: Ketua <ketua@contoh.my>\r\nTo: ali@contoh.my\r\nSubject: Borang tuntutan\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"in\"\r\n\r\n\
         --in\r\n{}--in\r\n{}--in\r\n{}--in--\r\n",
        part(
            "Content-Type: text/plain; charset=utf-8",
            "Sila guna borang baharu mulai bulan depan."
        ),
        part(
            "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=\"borang.docx\"\r\n\
             Content-Disposition: attachment; filename=\"borang.docx\"\r\nContent-Transfer-Encoding: base64",
            &base64(&inner_docx)
        ),
        part(
            "Content-Type: message/rfc822\r\nContent-Disposition: attachment",
            innermost
        ),
    )
}

fn email() -> String {
    let pdf_bytes = pdf(&[&["Jadual cuti umum 2024."]], None);
    format!(
        "Return-Path: <hr@contoh.my>\r\n\
         From: =?UTF-8?B?UGVqYWJhdCBTdW1iZXIgTWFudXNpYQ==?= <hr@contoh.my>\r\n\
         To: Ali <ali@contoh.my>, siti@contoh.my\r\n\
         Cc: Abu <abu@contoh.my>\r\n\
         Subject: =?ISO-8859-1?Q?Pekeliling_cuti_=E9dition_2024?=\r\n\
         Date: Fri, 1 Mar 2024 09:30:00 +0800\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         This is a multi-part message in MIME format.\r\n\
         --outer\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\n{}--alt\r\n{}--alt--\r\n\
         --outer\r\n{}--outer\r\n{}--outer\r\n{}--outer\r\n{}--outer\r\n{}--outer--\r\n",
        part(
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable",
            "Semua pekerja layak mendapat cuti tahunan sebanyak 20 hari. Caf=E9 ditutup pada=\r\n hari cuti umum.\r\n\r\nPermohonan hendaklah dibuat melalui sistem."
        ),
        part(
            "Content-Type: text/html; charset=utf-8",
            "<p>HTML alternative: <b>not</b> used when there is plain text.</p>"
        ),
        part(
            "Content-Type: application/pdf; name=\"jadual.pdf\"\r\nContent-Disposition: attachment; filename=\"../../jadual.pdf\"\r\nContent-Transfer-Encoding: base64",
            &base64(&pdf_bytes)
        ),
        part(
            "Content-Type: text/csv; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=\"baki.csv\"\r\nContent-Transfer-Encoding: quoted-printable",
            "Nama,Baki\r\nJos=E9,12"
        ),
        part(
            "Content-Type: image/png; name=\"logo.png\"\r\nContent-Disposition: inline; filename=\"logo.png\"\r\nContent-Transfer-Encoding: base64",
            &base64(b"\x89PNG\r\n\x1a\nnot really")
        ),
        part(
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"jadual.pdf\"\r\nContent-Transfer-Encoding: base64",
            &base64(&pdf_bytes)
        ),
        part("Content-Type: message/rfc822", &forwarded()),
    )
}

#[test]
fn headers_body_and_attachments() {
    let parsed = parse(Format::Eml, email().as_bytes(), &ParseLimits::default()).unwrap();
    assert_eq!(
        parsed.title.as_deref(),
        Some("Pekeliling cuti édition 2024")
    );
    let texts: Vec<(Option<u8>, &str)> = parsed
        .blocks
        .iter()
        .map(|b| (b.heading_level(), b.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (Some(1), "Pekeliling cuti édition 2024"),
            (
                None,
                "From: Pejabat Sumber Manusia <hr@contoh.my>; To: Ali <ali@contoh.my>, siti@contoh.my; \
                 Cc: Abu <abu@contoh.my>; Date: Fri, 1 Mar 2024 09:30:00 +0800"
            ),
            (
                None,
                "Semua pekerja layak mendapat cuti tahunan sebanyak 20 hari. Café ditutup pada hari cuti umum."
            ),
            (None, "Permohonan hendaklah dibuat melalui sistem."),
            (Some(2), "Borang tuntutan"),
            (None, "From: Ketua <ketua@contoh.my>; To: ali@contoh.my"),
            (None, "Sila guna borang baharu mulai bulan depan."),
        ]
    );
    assert!(parsed.blocks.iter().all(|b| b.page.is_none()));

    let names: Vec<(&str, Format)> = parsed
        .attachments
        .iter()
        .map(|a| (a.name.as_str(), a.format))
        .collect();
    assert_eq!(
        names,
        [
            ("jadual.pdf", Format::Pdf),
            ("baki.csv", Format::Csv),
            ("jadual (2).pdf", Format::Pdf),
            ("borang.docx", Format::Docx),
        ]
    );
    // Each attachment parses as a document of its own, decoded from its transfer encoding
    // and charset.
    let pdf = parse(
        Format::Pdf,
        &parsed.attachments[0].bytes,
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(pdf.full_text(), "Jadual cuti umum 2024.");
    let csv = parse(
        Format::Csv,
        &parsed.attachments[1].bytes,
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(csv.full_text(), "Nama: José; Baki: 12");
    let docx = parse(
        Format::Docx,
        &parsed.attachments[3].bytes,
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(docx.full_text(), "Borang tuntutan perjalanan.");
    // The email two levels down is not read.
    assert!(!parsed.full_text().contains("Teks tersembunyi"));
}

#[test]
fn read_document_hands_attachments_over() {
    let doc = read("pekeliling.eml", email().as_bytes()).unwrap();
    assert_eq!(doc.format, Format::Eml);
    assert_eq!(doc.title, "Pekeliling cuti édition 2024");
    assert_eq!(doc.attachments.len(), 4);
    assert_eq!(doc.pages, None);
}

#[test]
fn attachments_are_bounded() {
    let limits = ParseLimits {
        max_attachments: 1,
        ..ParseLimits::default()
    };
    let parsed = parse(Format::Eml, email().as_bytes(), &limits).unwrap();
    assert_eq!(parsed.attachments.len(), 1);
    let limits = ParseLimits {
        max_attachment_bytes: 10,
        ..ParseLimits::default()
    };
    let parsed = parse(Format::Eml, email().as_bytes(), &limits).unwrap();
    assert!(parsed.attachments.is_empty());
}

#[test]
fn html_only_email_goes_through_the_html_parser() {
    let html = "<html><head><style>p{}</style></head><body><h2>Notis</h2><p>Pejabat ditutup pada <b>hari Jumaat</b>.</p><script>x()</script></body></html>";
    let eml = format!(
        "From: a@contoh.my\r\nSubject: Notis\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        base64(html.as_bytes())
    );
    let parsed = parse(Format::Eml, eml.as_bytes(), &ParseLimits::default()).unwrap();
    let texts: Vec<(Option<u8>, &str)> = parsed
        .blocks
        .iter()
        .map(|b| (b.heading_level(), b.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (Some(1), "Notis"),
            (None, "From: a@contoh.my"),
            (Some(2), "Notis"),
            (None, "Pejabat ditutup pada hari Jumaat."),
        ]
    );
}

#[test]
fn not_an_email() {
    let err = parse(Format::Eml, b"", &ParseLimits::default()).unwrap_err();
    assert_eq!(err.reason(), "parse_error", "{err}");
    assert!(
        matches!(err, ParseError::NotEmail | ParseError::NoText),
        "{err}"
    );
    // Any text still gives an outcome.
    for junk in [
        &b"just a line of text"[..],
        b"\xff\xfe\x00garbage",
        b"Subject:\r\n\r\n",
    ] {
        if let Err(e) = parse(Format::Eml, junk, &ParseLimits::default()) {
            assert!(matches!(e.reason(), "parse_error" | "no_text"), "{e}");
        }
    }
}
