#!/usr/bin/env bash
# Installs the system packages Tanya needs to build and test (Debian/Ubuntu, as root or
# with sudo). Idempotent: does nothing when everything is present.
#   scripts/setup_system.sh            # build and run
#   scripts/setup_system.sh --browser  # also Chromium, for the browser tests
set -euo pipefail

# poppler-utils renders scanned PDF pages for OCR; tesseract reads them (Malay + English).
packages=(cmake libclang-dev clang pkg-config python3-venv poppler-utils fonts-dejavu-core
          tesseract-ocr tesseract-ocr-eng tesseract-ocr-msa
          # The HTTPS test makes a certificate and signs in as a browser would.
          openssl curl
          # English-Malay word list for cross-language search (scripts/build_lexicon.py).
          dict-freedict-eng-ind apertium apertium-ind-zlm)
# Node.js and npm install the page's pdf.js (and the browser-test driver).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ "${1:-}" = "--browser" ]; then
  packages+=(chromium)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: up to date"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
