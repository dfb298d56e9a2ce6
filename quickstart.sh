#!/usr/bin/env bash
# One command for a fresh machine: system packages, build, models, sample corpus,
# ingest, two example questions (Malay and English).
#   ./quickstart.sh            # everything
# Afterwards: "$HOME/.cache/tanya/target/release/tanya" ask "your question"
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh

scripts/setup_system.sh
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
echo "Done. Ask your own questions with: $TANYA_BIN ask \"...\""
echo "Ingest your own documents with:    $TANYA_BIN ingest /path/to/folder"
