#!/usr/bin/env python3
"""The side-by-side peer for `tanya bench --ingest`: the Python pipeline a user would
otherwise run (fastembed + qdrant-client in local mode + bm25s with PyStemmer), on the
same folder with the same model files, and Tanya on it in the same run, interleaved.

    python3 scripts/peer_ingest.py FOLDER [--model all-minilm-l6-v2] [--runs 3]
                                   [--tanya PATH] [--json OUT]

Installs the peer into its own virtualenv (~/.cache/tanya/peer-venv) from PyPI, pinned,
and loads the model from Tanya's models directory ($TANYA_MODELS_DIR, else
~/.cache/tanya/models): nothing is downloaded from a model hub. The peer embeds each
file's text whole, truncated where the model was trained to stop (256 tokens for MiniLM,
512 for e5), in batches of 32 -- set as a careful user would: fastembed's defaults (the
tokenizer's 512 tokens, batches of 256) ran 4x slower here -- then stores the vectors
with their text in a local Qdrant collection and builds a BM25 index. Tanya chunks,
embeds each chunk and each sentence, and writes both of its stores. Prints each run and
the ratio of the medians (documents per second); the ratio is what carries across
machines, not the seconds.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("TANYA_CACHE", Path.home() / ".cache" / "tanya"))
VENV = CACHE / "peer-venv"
# Where each model was trained to stop (sentence-transformers' max_seq_length).
MAX_TOKENS = {"all-minilm-l6-v2": 256}
PINNED = ["fastembed==0.9.1", "qdrant-client==1.20.0", "bm25s==0.3.16", "PyStemmer==3.1.0"]
ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    return Path(os.environ.get("TANYA_MODELS_DIR", CACHE / "models"))


def ensure_venv() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import fastembed, qdrant_client, bm25s, Stemmer"],
                           capture_output=True)
    if probe.returncode != 0:
        print(f"peer: installing {' '.join(PINNED)} into {VENV}", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *PINNED], check=True)
    return py


def peer_run(folder: Path, model: str) -> dict:
    """One ingest by the peer (runs inside the venv)."""
    import bm25s
    import Stemmer
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType
    from qdrant_client import QdrantClient, models

    name = f"tanya/{model}"
    TextEmbedding.add_custom_model(model=name, pooling=PoolingType.MEAN, normalization=True,
                                   sources=ModelSource(hf=name), dim=384,
                                   model_file="model.onnx")
    prefix = "passage: " if model.startswith("multilingual-e5") else ""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())
    started = time.monotonic()
    embedder = TextEmbedding(model_name=name, specific_model_path=str(models_dir() / model),
                             threads=os.cpu_count())
    embedder.model.tokenizer.enable_truncation(MAX_TOKENS.get(model, 512))
    texts = [p.read_text(encoding="utf-8") for p in files]
    vectors = list(embedder.embed([prefix + t for t in texts], batch_size=32))
    with tempfile.TemporaryDirectory() as tmp:
        client = QdrantClient(path=str(Path(tmp) / "qdrant"))
        client.create_collection("peer", vectors_config=models.VectorParams(
            size=384, distance=models.Distance.COSINE))
        client.upsert("peer", points=[
            models.PointStruct(id=i, vector=v.tolist(), payload={"path": str(p), "text": t})
            for i, (p, t, v) in enumerate(zip(files, texts, vectors))])
        stemmer = Stemmer.Stemmer("english")
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer,
                                       show_progress=False), show_progress=False)
        retriever.save(str(Path(tmp) / "bm25"))
        client.close()
    seconds = time.monotonic() - started
    return {"documents": len(files), "seconds": seconds}


def tanya_run(binary: Path, folder: Path, model: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        env = dict(os.environ, TANYA__EMBEDDER__MODEL=model,
                   TANYA__PATHS__MODELS_DIR=str(models_dir()))
        subprocess.run([str(binary), "--data-dir", str(Path(tmp) / "data"), "bench",
                        "--ingest", str(folder), "--json", str(out)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        r = json.loads(out.read_text())
    return {"documents": r["documents"], "seconds": r["seconds"], "chunks": r["chunks"],
            "cores_busy": r["cores_busy"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", default="all-minilm-l6-v2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tanya", type=Path, help="the tanya binary (default: the release build "
                    "in the shared target directory)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        print(json.dumps(peer_run(args.folder, args.model)))
        return 0
    py = ensure_venv()
    binary = args.tanya or Path(os.environ.get(
        "CARGO_TARGET_DIR", CACHE / "target")) / "release" / "tanya"
    peer, tanya = [], []
    for i in range(args.runs):
        r = subprocess.run([str(py), str(Path(__file__).resolve()), "--inner",
                            "--model", args.model, str(args.folder)],
                           check=True, capture_output=True, text=True)
        peer.append(json.loads(r.stdout.strip().splitlines()[-1]))
        tanya.append(tanya_run(binary, args.folder, args.model))
        load = os.getloadavg()[0]
        print(f"run {i + 1}: peer {peer[-1]['seconds']:.1f} s, tanya {tanya[-1]['seconds']:.1f} s "
              f"({tanya[-1]['chunks']} chunks; load average {load:.2f})", flush=True)
    rate = lambda rs: statistics.median(r["documents"] / r["seconds"] for r in rs)
    result = {"model": args.model, "folder": str(args.folder), "peer": peer, "tanya": tanya,
              "peer_docs_per_second": rate(peer), "tanya_docs_per_second": rate(tanya),
              "ratio": rate(tanya) / rate(peer)}
    print(f"median documents/s: peer {result['peer_docs_per_second']:.2f}, "
          f"tanya {result['tanya_docs_per_second']:.2f}: tanya/peer = {result['ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
