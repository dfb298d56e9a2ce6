#!/usr/bin/env python3
"""Searches a log written during the test suite for secrets that must never reach a log:
API tokens (`tanya_` and 43 characters), the suite's passwords and its canaries (the
unique strings planted in test documents that people may or may not see).

    python3 scripts/check_logs.py LOG_FILE

Exits 1 when the file is missing or empty (a run that wrote no log proves nothing) or
when any secret is found, printing each hit; prints what it searched otherwise.
"""

import os
import re
import sys

# What the suite uses: every password in tests/ starts `kata-laluan` (or is the one wrong
# password the throttling test sends); canaries are `KANARI...`; tokens are
# `tanya_` + 43 characters of URL-safe base64 (src/accounts).
SECRETS = {
    "token": re.compile(rb"tanya_[A-Za-z0-9_-]{43}"),
    "password": re.compile(rb"kata-laluan|salah-sama-sekali"),
    "canary": re.compile(rb"KANARI"),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        print(f"check_logs: {path} is missing or empty: the suite wrote no log", file=sys.stderr)
        sys.exit(1)
    hits, lines = [], 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            lines = n
            for kind, pattern in SECRETS.items():
                if pattern.search(line):
                    hits.append((n, kind, line[:300].decode("utf-8", "replace").rstrip()))
    size = os.path.getsize(path) / 2**20
    if hits:
        print(f"check_logs: {len(hits)} secret(s) in {path} ({lines} lines):", file=sys.stderr)
        for n, kind, text in hits[:50]:
            print(f"  line {n} ({kind}): {text}", file=sys.stderr)
        sys.exit(1)
    print(f"check_logs: no token, password or canary in {lines} lines ({size:.1f} MiB) of the suite's log")


if __name__ == "__main__":
    main()
