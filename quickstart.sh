#!/usr/bin/env bash
# One command for a fresh machine: system packages, the page's pdf.js, build, models,
# sample corpus, ingest, two example questions (Malay and English), and then the page:
# it ends serving http://127.0.0.1:8080/ until Ctrl+C.
#   ./quickstart.sh                       # everything
#   TANYA_BIND=127.0.0.1:9000 ./quickstart.sh   # another port
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh

scripts/setup_system.sh
echo "== installing the page's packages (pdf.js)"
scripts/setup_web.sh
echo "== building tanya (release; the first build takes tens of minutes on 2 cores)"
cargo build --release --locked
echo "== installing models into $TANYA_MODELS_DIR"
python3 scripts/install_models.py --dest "$TANYA_MODELS_DIR"
echo "== generating the sample corpus"
python3 scripts/make_samples.py --out samples/corpus --quiet
echo "== ingesting the sample corpus"
"$TANYA_BIN" ingest samples/corpus
for q in "Berapa hari cuti tahunan selepas 3 tahun berkhidmat?" \
         "How many days of annual leave do I get after 3 years of service?"; do
  echo
  echo "== tanya ask \"$q\""
  "$TANYA_BIN" ask "$q"
done
echo
echo "Ask from the terminal with:     $TANYA_BIN ask \"...\""
echo "Ingest your own documents with: $TANYA_BIN ingest /path/to/folder (or upload them in the page)"
echo
echo "== serving the page: open the address below in your browser (Ctrl+C stops)"
exec "$TANYA_BIN" serve --bind "${TANYA_BIND:-127.0.0.1:8080}"
