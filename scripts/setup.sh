#!/usr/bin/env bash
# Install what a fresh Debian machine lacks for duty-gateway (run as root), then the package itself.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-osd  # second OCR reader (header zone, orientation)
  ghostscript                                            # PostScript faxes from HylaFAX
  espeak-ng sox                                          # the spoken page (Mandarin TTS, 8 kHz WAV)
  poppler-utils                                          # pdftotext: tests read the PDF report back
  fonts-wqy-zenhei fonts-noto-cjk fontconfig             # CJK fonts for the PDF report and charts (found via fc-list)
  libgl1 libglib2.0-0                                    # OpenCV (RapidOCR's image library) links against them
  postgresql                                             # the database past one machine (tests use a scratch server)
  libtiff-tools fonts-arphic-uming fonts-arphic-ukai fonts-dejavu-core  # make_fax_corpus.py for new test faxes
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
