#!/usr/bin/env bash
# Installs the page's npm packages into web/node_modules: pdf.js (embedded into the
# binary at build time, so run this before `cargo build`) and playwright-core (drives
# Chromium in the browser tests). Exact versions from web/package-lock.json; npm's cache
# lives outside the clone. A no-op when node_modules matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../web"
source ../scripts/env.sh
stamp=node_modules/.tanya-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f node_modules/pdfjs-dist/build/pdf.min.mjs ]; then
  echo "web packages: up to date"
  exit 0
fi
echo "web packages: installing (npm ci)"
npm ci --no-audit --no-fund --loglevel=error --cache "$TANYA_CACHE/npm" --prefer-offline
echo "$want" > "$stamp"
