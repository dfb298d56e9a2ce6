#!/usr/bin/env python3
"""Verify Tanya's generated sample corpus and the written evaluation questions.

    python3 scripts/make_samples.py            # generate samples/corpus first
    python3 scripts/check_samples.py [--corpus DIR] [--determinism]

Checks that:
* the manifest covers every supported format (>= 3 PDF, >= 2 DOCX, >= 1 HTML, Markdown and
  plain text) in both languages, and each document has 1,500-4,000 words;
* every PDF has a real text layer on every page, embedded fonts, the footer "Halaman N" or
  "Page N", and the headings on the pages recorded in samples/pages.json;
* every DOCX has Title, Heading 1 and Heading 2 paragraphs;
* tests/data/questions.toml is well formed: at least 16 questions, half Malay and half English,
  at least 4 asked across languages, at least 3 that must be abstained from, the two required
  annual-leave questions; each answerable question's `evidence` occurs in its document (for a
  PDF, on page `page`, as `pdftotext -f N -l N` extracts it) and contains one of `expect`;
  no document mentions the subject of an abstain question.
With --determinism the generator is also run twice into temporary folders and the outputs must
be byte-identical to each other and to the corpus.

Text is compared after Unicode NFC normalisation with all runs of whitespace made one space.
Ends with a line "check_samples: N passed, M failed" and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import html.parser
import re
import subprocess
import sys
import tempfile
import tomllib
import unicodedata
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in scripts/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_samples  # noqa: E402  (same folder)

REPO = make_samples.REPO
QUESTIONS = REPO / "tests" / "data" / "questions.toml"

REQUIRED_QUESTIONS = {
    "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?",
    "How many days of annual leave do I get after 3 years of service?",
}

# For each abstain question: terms that must not occur anywhere in the corpus, so that the
# question really is not covered by any document. Every abstain question needs an entry.
ABSTAIN_ABSENT_TERMS = {
    "capital-peru-en": ["Peru"],
    "world-cup-2018-ms": ["Piala Dunia", "World Cup", "FIFA"],
    "parking-fee-ms": ["letak kereta", "parkir", "parking", "car park", "carpark"],
}

MIN_WORDS, MAX_WORDS = 1500, 4000


def norm(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip()


class _HTMLText(html.parser.HTMLParser):
    BLOCK = {"p", "h1", "h2", "h3", "h4", "li", "dt", "dd", "div", "section", "header", "footer", "title", "br", "tr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(raw: str) -> str:
    p = _HTMLText()
    p.feed(raw)
    return html.unescape("".join(p.parts))


def pdf_pages(path: Path) -> list[str]:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    count = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    pages = []
    for n in range(1, count + 1):
        out = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", "-f", str(n), "-l", str(n), str(path), "-"],
            capture_output=True, text=True, check=True,
        ).stdout
        pages.append(out)
    return pages


def docx_text(path: Path) -> tuple[str, set[str]]:
    from docx import Document

    d = Document(str(path))
    styles = {p.style.name for p in d.paragraphs}
    return "\n".join(p.text for p in d.paragraphs), styles


class Checker:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"FAIL: {what}")
        return ok


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=make_samples.DEFAULT_OUT)
    ap.add_argument("--pages", type=Path, default=make_samples.DEFAULT_PAGES)
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--determinism", action="store_true", help="also regenerate twice and compare bytes")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    c = Checker()

    docs = make_samples.load_manifest()
    by_output = {d["output"]: d for d in docs}
    if not args.corpus.is_dir():
        print(f"check_samples: {args.corpus} does not exist; run scripts/make_samples.py first", file=sys.stderr)
        return 2

    # ---- manifest coverage -------------------------------------------------------------------
    fmts = [d["format"] for d in docs]
    for fmt, least in (("pdf", 3), ("docx", 2), ("html", 1), ("md", 1), ("txt", 1)):
        c.check(fmts.count(fmt) >= least, f"manifest has at least {least} {fmt} document(s) (has {fmts.count(fmt)})")
    langs = [d["lang"] for d in docs]
    c.check(abs(langs.count("ms") - langs.count("en")) <= 2, f"manifest languages balanced (ms={langs.count('ms')}, en={langs.count('en')})")

    # ---- per-document checks, collecting text --------------------------------------------------
    pages_json = __import__("json").loads(args.pages.read_text(encoding="utf-8"))
    texts: dict[str, str] = {}  # output -> normalised whole text
    page_texts: dict[str, list[str]] = {}  # output -> normalised text per page (PDF only)
    for d in docs:
        out = args.corpus / d["output"]
        if not c.check(out.is_file(), f"{out} exists"):
            continue
        fmt = d["format"]
        if fmt == "pdf":
            pages = pdf_pages(out)
            page_texts[d["output"]] = [norm(p) for p in pages]
            texts[d["output"]] = norm(" ".join(pages))
            layout = pages_json.get(d["output"], {})
            c.check(len(pages) >= 2, f"{d['output']}: spans several pages ({len(pages)})")
            c.check(layout.get("pages") == len(pages), f"{d['output']}: pages.json page count {layout.get('pages')} == {len(pages)}")
            word = make_samples.PAGE_WORD[d["lang"]]
            bad = [n for n, p in enumerate(page_texts[d["output"]], 1) if not p.endswith(f"{word} {n}")]
            c.check(not bad, f"{d['output']}: every page has a text layer ending in the footer '{word} N' (bad pages: {bad})")
            misplaced = [
                (h["text"], h["page"])
                for h in layout.get("headings", [])
                if norm(h["text"]) not in page_texts[d["output"]][h["page"] - 1]
            ]
            c.check(bool(layout.get("headings")) and not misplaced, f"{d['output']}: headings on the pages recorded in pages.json (misplaced: {misplaced})")
            fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
            c.check(bool(fonts) and all(" yes yes yes " in f"{l} " for l in fonts), f"{d['output']}: fonts embedded, subset, with Unicode maps")
        elif fmt == "docx":
            text, styles = docx_text(out)
            texts[d["output"]] = norm(text)
            c.check({"Title", "Heading 1", "Heading 2"} <= styles, f"{d['output']}: uses Title, Heading 1 and Heading 2 styles ({sorted(styles)})")
        elif fmt == "html":
            texts[d["output"]] = norm(html_text(out.read_text(encoding="utf-8")))
        else:
            texts[d["output"]] = norm(out.read_text(encoding="utf-8"))
        words = sum(1 for w in texts.get(d["output"], "").split() if re.search(r"\w", w))
        c.check(MIN_WORDS <= words <= MAX_WORDS, f"{d['output']}: {MIN_WORDS}-{MAX_WORDS} words (has {words})")
        if args.verbose:
            extra = f", {len(page_texts[d['output']])} pages" if fmt == "pdf" else ""
            print(f"  {d['output']}: {fmt}, {d['lang']}, {words} words{extra}")

    # ---- questions -----------------------------------------------------------------------------
    with args.questions.open("rb") as f:
        questions = tomllib.load(f).get("question", [])
    c.check(len(questions) >= 16, f"at least 16 questions (has {len(questions)})")
    ids = [q.get("id") for q in questions]
    c.check(len(ids) == len(set(ids)) and all(ids), "question ids present and unique")
    qlangs = [q.get("lang") for q in questions]
    c.check(set(qlangs) <= {"ms", "en"}, f"question langs are ms/en ({sorted(set(map(str, qlangs)))})")
    c.check(abs(qlangs.count("ms") - qlangs.count("en")) <= 1, f"questions half Malay, half English (ms={qlangs.count('ms')}, en={qlangs.count('en')})")
    texts_asked = {q.get("question") for q in questions}
    c.check(REQUIRED_QUESTIONS <= texts_asked, f"required questions present (missing: {REQUIRED_QUESTIONS - texts_asked})")
    abstain = [q for q in questions if q.get("abstain")]
    c.check(len(abstain) >= 3, f"at least 3 abstain questions (has {len(abstain)})")
    cross = [q for q in questions if not q.get("abstain") and q.get("document") in by_output and by_output[q["document"]]["lang"] != q.get("lang")]
    c.check(len(cross) >= 4, f"at least 4 cross-language questions (has {len(cross)})")
    covered = {q.get("document") for q in questions}
    c.check(set(by_output) <= covered, f"every document has a question (missing: {sorted(set(by_output) - covered)})")

    corpus_all = " ".join(texts.values()).casefold()
    for q in questions:
        qid = q.get("id", "?")
        if q.get("abstain"):
            c.check(
                not any(k in q for k in ("document", "page", "evidence", "expect")),
                f"{qid}: abstain question has no document/page/evidence/expect",
            )
            terms = ABSTAIN_ABSENT_TERMS.get(qid)
            if c.check(terms is not None, f"{qid}: listed in ABSTAIN_ABSENT_TERMS"):
                found = [t for t in terms if re.search(rf"\b{re.escape(t.casefold())}\b", corpus_all)]
                c.check(not found, f"{qid}: no document mentions {found or terms}")
            continue
        doc = by_output.get(q.get("document"))
        if not c.check(doc is not None, f"{qid}: document {q.get('document')!r} is in the manifest"):
            continue
        expect = q.get("expect")
        c.check(isinstance(expect, list) and expect and all(isinstance(e, str) and e for e in expect), f"{qid}: expect is a non-empty list of strings")
        ev = norm(q.get("evidence", ""))
        if not c.check(len(ev) >= 10, f"{qid}: has an evidence string"):
            continue
        c.check(any(e.casefold() in ev.casefold() for e in expect or []), f"{qid}: evidence contains one of expect {expect}")
        full = texts.get(doc["output"], "")
        c.check(ev in full, f"{qid}: evidence occurs in {doc['output']}: {ev!r}")
        if doc["format"] == "pdf":
            on = [n for n, p in enumerate(page_texts.get(doc["output"], []), 1) if ev in p]
            page = q.get("page")
            c.check(isinstance(page, int) and page in on, f"{qid}: evidence on page {page} of {doc['output']} (found on pages {on})")
            if len(on) > 1:
                print(f"note: {qid}: evidence occurs on several pages {on}")
        else:
            c.check("page" not in q, f"{qid}: no page for a non-paged {doc['format']} document")

    # ---- determinism ---------------------------------------------------------------------------
    if args.determinism:
        digests = []
        with tempfile.TemporaryDirectory() as tmp:
            for run in ("a", "b"):
                out = Path(tmp) / run
                subprocess.run(
                    [sys.executable, str(Path(make_samples.__file__)), "--out", str(out), "--pages", str(out / "pages.json"), "--quiet"],
                    check=True,
                )
                digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())})
        corpus = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(args.corpus.iterdir()) if p.name in by_output}
        corpus["pages.json"] = hashlib.sha256(args.pages.read_bytes()).hexdigest()
        c.check(digests[0] == digests[1], "two generator runs give byte-identical files")
        c.check(digests[0] == corpus, "the corpus matches a fresh generation (byte-identical)")

    print(f"check_samples: {c.passed} passed, {len(c.failed)} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    make_samples.ensure_venv(__file__, sys.argv[1:])
    sys.exit(main(sys.argv[1:]))
