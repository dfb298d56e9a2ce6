#!/usr/bin/env bash
# The test command: prepares what the tests need (system packages, models, sample
# corpus; each step is a no-op when already done), then runs every test with the real
# models and stores, then fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

scripts/setup_system.sh --browser
scripts/setup_web.sh
python3 scripts/install_models.py --dest "$TANYA_MODELS_DIR"
python3 scripts/make_samples.py --out samples/corpus --quiet
export TANYA_SAMPLES_DIR="$PWD/samples/corpus"
cargo fmt --all -- --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
# --all-targets: unit, integration and bench targets (the crates have no doc tests).
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --locked --workspace --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The page in a real browser (Debian's Chromium driven by Playwright) against the real
# binary built above. Screenshots go to artifacts/browser/.
echo "== browser tests (tests/browser, headless Chromium)"
node --test --test-reporter=spec tests/browser/*.test.mjs 2>&1 | tee -a "$log"
browser_status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^[^ ]+ pass [0-9]+$/ { p += $3 } /^[^ ]+ fail [0-9]+$/ { f += $3 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
[ "$status" -eq 0 ] && [ "$browser_status" -eq 0 ]
