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
# A real llama.cpp llama-server for the model-server backend's tests
# (tests/model_server.rs), built once into $TANYA_CACHE; its path is the last line.
TANYA_LLAMA_SERVER="$(scripts/setup_llama_server.sh | tail -1)"
export TANYA_LLAMA_SERVER
# A real PostgreSQL server (Debian's) on loopback for the shared state's tests ([shared]
# postgres: accounts, the shared records, the writer lease); each test makes a database of
# its own. Its admin URL is the last line.
TANYA_TEST_POSTGRES="$(scripts/setup_postgres.sh start | tail -1)"
export TANYA_TEST_POSTGRES
cargo fmt --all -- --check
# The dependency rule of ARCHITECTURE.md: no import cycles, layers import only below.
python3 scripts/layers.py
cargo clippy --release --locked --workspace --all-targets -- -D warnings
# --all-targets: unit, integration and bench targets (the crates have no doc tests).
# --include-ignored: tests that need an installed resource (the models, poppler and tesseract,
# ../shared/corpora, the sample corpus) are #[ignore]d for a plain `cargo test`; the steps
# above prepare all of them, so here every test runs, and a missing resource fails it.
log="$(mktemp)"
# Trace logging for the whole suite: every test process and every binary it starts
# appends its events to one file, searched for secrets below.
trace_dir="$(mktemp -d)"
export TANYA_LOG_FILE="$trace_dir/suite.log"
export TANYA_LOG_FILE_FILTER="${TANYA_LOG_FILE_FILTER:-trace,mio=debug,actix_server=debug,h2=debug,hyper=debug,rustls=debug,tantivy=debug,ort=debug,qdrant_edge=debug,segment=debug}"
trap 'rm -f "$log"; rm -rf "$trace_dir"' EXIT
# The Qdrant store's contract suite, its own tests and the migrate round trip need a
# Qdrant server (none is in any package registry: docs/deploy.md says how to run one).
# With QDRANT_URL (its gRPC address) they run against it; without, they are left out,
# and this says so at the start and at the end.
qdrant_filter=()
if [ -n "${QDRANT_URL:-}" ]; then
    qdrant_note="== the Qdrant store suites ran against QDRANT_URL=$QDRANT_URL"
else
    qdrant_filter=(--skip qdrant)
    qdrant_note="!! QDRANT_URL is not set: the tests named *qdrant* (the Qdrant store's contract suite, its own tests, migrate to Qdrant and back, replicas sharing one index) did NOT run"
fi
echo "$qdrant_note"
set +e
cargo test --release --locked --no-fail-fast --workspace --all-targets -- --include-ignored "${qdrant_filter[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The page in a real browser (Debian's Chromium driven by Playwright) against the real
# binary built above. Screenshots go to artifacts/browser/.
echo "== browser tests (tests/browser, headless Chromium)"
node --test --test-reporter=spec tests/browser/*.test.mjs 2>&1 | tee -a "$log"
browser_status=${PIPESTATUS[0]}
echo "== the suite's trace log: no password, token or canary"
python3 scripts/check_logs.py "$TANYA_LOG_FILE" 2>&1 | tee -a "$log"
logs_status=${PIPESTATUS[0]}
set -e
echo "$qdrant_note"
# Nothing may be left out: an ignored Rust test or a skipped browser test fails the command.
summary_status=0
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     /^[^ ]+ pass [0-9]+$/ { p += $3 } /^[^ ]+ fail [0-9]+$/ { f += $3 }
     /^[^ ]+ (skipped|todo) [0-9]+$/ { s += $3 }
     END { printf "tests: %d passed, %d failed, %d ignored or skipped\n", p, f, s; exit (s > 0) }' "$log" ||
    summary_status=$?
[ "$status" -eq 0 ] && [ "$browser_status" -eq 0 ] && [ "$summary_status" -eq 0 ] && [ "$logs_status" -eq 0 ]
