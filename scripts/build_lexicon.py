#!/usr/bin/env python3
"""Builds Tanya's English-Malay word list from two Debian packages, offline.

  dict-freedict-eng-ind   English -> Indonesian (FreeDict/WikDict, ~10k headwords)
  apertium-ind-zlm        Indonesian -> Malay (Apertium's pair, run as `apertium ind-zlm`)

Writes one pair per line, `english<TAB>malay`, to <models_dir>/lexicon/en-ms.tsv
(models_dir defaults to ~/.cache/tanya/models, as in config/tanya.toml). Each English
headword keeps every translation the dictionary gives it, in the Indonesian spelling and,
where Apertium spells it differently, the Malay one ("office" -> kantor, pejabat). Tanya
reads the file at run time to search a question's words in the other language
(src/text/lexicon.rs). Idempotent: the file is rewritten only when its content changes.

  scripts/build_lexicon.py [--models-dir DIR]
"""

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

INDEX = Path("/usr/share/dictd/freedict-eng-ind.index")
DICT = Path("/usr/share/dictd/freedict-eng-ind.dict.dz")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# A sense marker: "1. cuti", " 3.", "menyelesaikan, merampungkan 2."
SENSE_START = re.compile(r"^\s*\d+\.\s*")
SENSE_END = re.compile(r"\s+\d+\.\s*$")
WORD = re.compile(r"^[a-z][a-z' -]*[a-z]$")


def b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + B64.index(c)
    return n


def clean(phrase: str) -> str | None:
    """A translation or headword as Tanya matches it: lowercase letters, one space
    between words, at most three words; None for anything else (notes, symbols)."""
    p = re.sub(r"\([^)]*\)", " ", phrase).strip().lower()
    p = re.sub(r"\s+", " ", p)
    if not WORD.match(p) or len(p.split(" ")) > 3:
        return None
    return p


def entries():
    """(headword, [translations]) for each dictionary entry."""
    data = gzip.open(DICT).read()
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00-database"):
            continue
        head = clean(parts[0])
        if head is None:
            continue
        body = data[b64(parts[1]) : b64(parts[1]) + b64(parts[2])].decode("utf-8", "replace")
        lines = body.splitlines()[1:]
        found = []
        # The line after the headword carries the first sense's translations; a line
        # that starts with a sense number carries that sense's. Other lines are
        # English glosses.
        for i, text in enumerate(lines):
            if i == 0 or SENSE_START.match(text):
                text = SENSE_END.sub("", SENSE_START.sub("", text))
                for t in text.split(","):
                    t = clean(t)
                    if t and t != head:
                        found.append(t)
        if found:
            yield head, found


def to_malay(words: list[str]) -> dict[str, str]:
    """Apertium's Malay for each Indonesian word or phrase (unknown words unchanged)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        # One per paragraph, so that Apertium translates each on its own.
        f.write("\n\n".join(words) + "\n")
        name = f.name
    try:
        out = subprocess.run(
            ["apertium", "-u", "ind-zlm", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(name)
    malay = [p.strip().lower() for p in re.split(r"\n\s*\n", out.strip())]
    if len(malay) != len(words):
        sys.exit(f"apertium returned {len(malay)} lines for {len(words)} words")
    return dict(zip(words, malay))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default=os.path.expanduser("~/.cache/tanya/models"))
    args = ap.parse_args()
    for p in (INDEX, DICT):
        if not p.is_file():
            sys.exit(f"{p} is missing: run scripts/setup_system.sh (dict-freedict-eng-ind)")
    pairs = list(entries())
    indonesian = sorted({t for _, ts in pairs for t in ts})
    malay = to_malay(indonesian)
    # In the dictionary's order: a headword's first translations are its commonest.
    lines, seen = [], set()
    for head, ts in pairs:
        for t in ts:
            for pair in (f"{head}\t{t}", f"{head}\t{clean(malay[t]) or t}"):
                if pair not in seen:
                    seen.add(pair)
                    lines.append(pair)
    out = Path(args.models_dir) / "lexicon" / "en-ms.tsv"
    text = "".join(line + "\n" for line in lines)
    if out.is_file() and out.read_text(encoding="utf-8") == text:
        print(f"lexicon: up to date ({len(lines)} pairs) at {out}")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"lexicon: {len(lines)} pairs from {len(pairs)} English headwords -> {out}")


if __name__ == "__main__":
    main()
