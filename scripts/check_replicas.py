#!/usr/bin/env python3
"""Asks every written question (tests/data/questions.toml) of several running `tanya serve`
replicas and compares their answers and citations: with each other, and with an earlier
run's saved answers. The check behind docs/deploy.md's figures for replicas sharing one
index (start the replicas and the Qdrant cluster yourself; kill what you like between two
runs).

    python3 scripts/check_replicas.py --data-dir /srv/r1 --data-dir /srv/r2 --save before.json
    python3 scripts/check_replicas.py --data-dir /srv/r1 --data-dir /srv/r2 --compare before.json

Each replica is reached through its `server.json` (its address and the command line's key,
which acts as an administrator). Exits 1 when any two answers differ.
"""

import argparse
import json
import os
import sys
import time
import tomllib
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def replica(data_dir):
    with open(os.path.join(data_dir, "server.json")) as f:
        info = json.load(f)
    return info["url"], info["key"]


def ask(url, key, question):
    req = urllib.request.Request(
        f"{url}/api/ask",
        data=json.dumps({"question": question, "mode": "extractive"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as e:
        return {"error": f"HTTP {e.code}: {e.read()[:300]!r}"}, time.monotonic() - started
    except OSError as e:
        return {"error": str(e)}, time.monotonic() - started
    # What a person sees: the answer, whether it abstained, and what it cites.
    seen = {
        "answer": body.get("answer"),
        "abstained": body.get("abstained"),
        "citations": [
            (c.get("rel_path"), c.get("page"), c.get("char_start"), c.get("char_end"))
            for c in body.get("citations", [])
        ],
    }
    return seen, time.monotonic() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", action="append", required=True, help="a replica's data directory (repeat)")
    ap.add_argument("--questions", default=os.path.join(ROOT, "tests", "data", "questions.toml"))
    ap.add_argument("--save", help="write the answers here (JSON)")
    ap.add_argument("--compare", help="compare with the answers saved here")
    args = ap.parse_args()
    with open(args.questions, "rb") as f:
        questions = tomllib.load(f)["question"]
    replicas = [replica(d) for d in args.data_dir]
    answers, times, errors, differ = {}, [], 0, 0
    for q in questions:
        seen = []
        for url, key in replicas:
            a, took = ask(url, key, q["question"])
            times.append(took)
            errors += "error" in a
            seen.append(a)
        if any(s != seen[0] for s in seen[1:]):
            differ += 1
            print(f"DIFFER between replicas: {q['id']}: {seen}")
        answers[q["id"]] = seen[0]
    cited = sum(1 for a in answers.values() if a.get("citations"))
    print(
        f"{len(questions)} questions x {len(replicas)} replicas: {errors} errors, "
        f"{len(questions) - differ} of {len(questions)} the same on every replica, "
        f"{cited} with citations; median {sorted(times)[len(times) // 2] * 1000:.0f} ms per answer"
    )
    changed = 0
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)
        for qid, a in answers.items():
            if json.loads(json.dumps(a)) != before.get(qid):
                changed += 1
                print(f"CHANGED since {args.compare}: {qid}: {before.get(qid)} -> {a}")
        print(f"{len(answers) - changed} of {len(answers)} answers identical to {args.compare}")
    if args.save:
        with open(args.save, "w") as f:
            json.dump(answers, f, indent=1, ensure_ascii=False)
    sys.exit(1 if errors or differ or changed else 0)


if __name__ == "__main__":
    main()
