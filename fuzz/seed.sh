#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ (gitignored) from the shared bad-input corpora, which are read
# in place and never copied into the repository otherwise:
#   pdf                 malformed-pdf/ and encrypted-pdf/
#   docx, xlsx, pptx    each xml-attacks/ file as the main XML part of a small package, raw
#                       and moved inside a text element (stored, so mutations reach the XML)
#   csv, eml, html,     each naughty string (blns.txt) as a file, a CSV cell, an email's
#   markdown, plain     subject and body, an HTML paragraph
# plus one small valid file per format. Safe to re-run: files are named by their SHA-1.
# Usage: fuzz/seed.sh [path/to/shared/corpora]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpora="${1:-$here/../../shared/corpora}"
if [ ! -d "$corpora" ]; then
    echo "seed.sh: no corpora at $corpora" >&2
    exit 1
fi
python3 - "$corpora" "$here/corpus" <<'EOF'
import base64, hashlib, io, pathlib, sys, zipfile

corpora, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
counts = {}

def seed(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
    counts[target] = counts.get(target, 0) + 1

for folder in ("malformed-pdf", "encrypted-pdf"):
    for f in sorted((corpora / folder).glob("*.pdf")):
        seed("pdf", f.read_bytes())

REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"

def rels(entries):
    body = "".join(f'<Relationship Id="{i}" Type="{REL}/{t}" Target="{g}"/>' for i, t, g in entries)
    return f'<Relationships xmlns="{PKG}">{body}</Relationships>'

def package(parts, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, body in parts:
            z.writestr(name, body)
    return buf.getvalue()

def docx(main):
    return [("_rels/.rels", rels([("rId1", "officeDocument", "word/document.xml")])),
            ("word/document.xml", main)]

def xlsx(main):
    wb = f'<workbook xmlns="{S}" xmlns:r="{REL}"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
    return [("_rels/.rels", rels([("rId1", "officeDocument", "xl/workbook.xml")])),
            ("xl/workbook.xml", wb),
            ("xl/_rels/workbook.xml.rels", rels([("rId1", "worksheet", "worksheets/sheet1.xml"),
                                                  ("rId2", "sharedStrings", "sharedStrings.xml")])),
            ("xl/sharedStrings.xml", f'<sst xmlns="{S}"><si><t>Nama</t></si><si><r><t>Ali</t></r></si></sst>'),
            ("xl/worksheets/sheet1.xml", main)]

def pptx(main):
    pres = f'<p:presentation xmlns:p="{P}" xmlns:r="{REL}"><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>'
    return [("_rels/.rels", rels([("rId1", "officeDocument", "ppt/presentation.xml")])),
            ("ppt/presentation.xml", pres),
            ("ppt/_rels/presentation.xml.rels", rels([("rId1", "slide", "slides/slide1.xml")])),
            ("ppt/slides/_rels/slide1.xml.rels", rels([("rId1", "notesSlide", "../notesSlides/notesSlide1.xml")])),
            ("ppt/notesSlides/notesSlide1.xml", f'<p:notes xmlns:p="{P}" xmlns:a="{A}"><p:sp><p:nvSpPr><p:nvPr><p:ph type="body"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>Nota</a:t></a:r></a:p></p:txBody></p:sp></p:notes>'),
            ("ppt/slides/slide1.xml", main)]

def wrap(fmt, prolog, inner):
    if fmt == "docx":
        return f'{prolog}<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>{inner}</w:t></w:r></w:p></w:body></w:document>'
    if fmt == "xlsx":
        return f'{prolog}<worksheet xmlns="{S}"><sheetData><row><c t="s"><v>0</v></c><c t="inlineStr"><is><t>{inner}</t></is></c></row><row><c t="s"><v>1</v></c><c s="1"><v>45352</v></c></row></sheetData></worksheet>'
    return f'{prolog}<p:sld xmlns:p="{P}" xmlns:a="{A}"><p:cSld><p:spTree><p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>{inner}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>'

def split_attack(xml):
    i = xml.find("]>")
    prolog, root = (xml[: i + 2], xml[i + 2 :]) if i >= 0 else ("", xml)
    a, b = prolog.find("<?xml"), prolog.find("?>")
    if 0 <= a < b:
        prolog = prolog[:a] + prolog[b + 2 :]
    a, b = root.find(">"), root.rfind("<")
    return prolog, (root[a + 1 : b] if 0 <= a < b else root)

builders = {"docx": docx, "xlsx": xlsx, "pptx": pptx}
attacks = [f for f in sorted((corpora / "xml-attacks").iterdir()) if f.suffix in (".xml", ".xsd", ".xsl")]
for fmt, build in builders.items():
    seed(fmt, package(build(wrap(fmt, "", "Dasar cuti tahunan")), zipfile.ZIP_DEFLATED))
    for f in attacks:
        raw = f.read_text("utf-8", "replace")
        prolog, inner = split_attack(raw)
        seed(fmt, package(build(raw)))
        seed(fmt, package(build(wrap(fmt, prolog, inner))))

strings = []
for line in (corpora / "naughty-strings" / "blns.txt").read_text("utf-8", "surrogateescape").splitlines():
    if line.strip() and not line.startswith("#"):
        strings.append(line)

seed("csv", "Nama,Jabatan,Baki cuti\r\nAli,Kewangan,12\r\n\"Tan, Mei\",\"HR \"\"A\"\"\",3\r\n")
seed("csv", "a;b\n1;2\n")
seed("csv", "a\tb\n1\t2\n")
pdf_b64 = base64.encodebytes(b"%PDF-1.4\n%%EOF\n").decode()
seed("eml", "From: A <a@x.my>\r\nTo: b@x.my\r\nSubject: =?UTF-8?B?Q3V0aQ==?=\r\nDate: Fri, 1 Mar 2024 09:30:00 +0800\r\n"
     "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
     "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cuti=\r\n umum\r\n"
     "--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\n" + pdf_b64 + "--b\r\nContent-Type: message/rfc822\r\n\r\n"
     "Subject: Fwd\r\nContent-Type: text/html\r\n\r\n<p>Hai</p>\r\n--b--\r\n")
seed("html", "<html><head><title>T</title></head><body><h1>Cuti</h1><p>Teks</p><table><tr><td>a</td></tr></table></body></html>")
seed("markdown", "---\ntitle: T\n---\n# Cuti\n\nTeks *ini*.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
seed("plain", "Dasar Cuti\n\n1. Pengenalan\nTeks.\n")
for f in attacks:
    seed("html", f.read_bytes())
for s in strings:
    for target in ("plain", "markdown"):
        seed(target, s)
    seed("html", f"<title>{s}</title><p>{s}</p>")
    seed("csv", f"Nama,Nilai\n{s},{s}\n")
    seed("eml", f"From: {s} <a@x.my>\r\nSubject: {s}\r\n\r\n{s}\r\n")

for target, n in sorted(counts.items()):
    print(f"{target}: {n} seeds in {out / target}")
EOF
