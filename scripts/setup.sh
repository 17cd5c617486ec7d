#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks for duty-gateway (run as root): the Debian
# packages, then the project's own virtual environment (.venv/, since Debian's Python refuses
# system-wide pip installs, PEP 668) with the package and its test extra, and `dutygw` on the
# PATH as a link in /usr/local/bin. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv                                   # Debian's Python 3.11, for the project's venv
  ca-certificates                                        # pip's HTTPS to PyPI on a minbase system
  tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-osd  # second OCR reader (header zone, orientation)
  ghostscript                                            # PostScript faxes from HylaFAX
  espeak-ng sox                                          # the spoken page (Mandarin TTS, 8 kHz WAV)
  poppler-utils                                          # pdftotext: tests read the PDF report back
  fonts-wqy-zenhei fonts-noto-cjk fontconfig             # CJK fonts for the PDF report, charts and console
  libgl1 libglib2.0-0                                    # OpenCV (RapidOCR's image library) links against them
  postgresql                                             # the database past one machine (tests use a scratch server)
  chromium                                               # the console's browser tests (Playwright drives this binary)
  libtiff-tools fonts-arphic-uming fonts-arphic-ukai fonts-dejavu-core  # make_fax_corpus.py for new test faxes
  openssl                                                # tests: a self-signed certificate for the STARTTLS relay
  systemd                                                # systemd-analyze: tests check examples/dutygw.service
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's own Python, whatever else is first on the PATH (pyenv on the CI image).
python=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: making the virtual environment .venv/"
  "$python" -m venv .venv
fi
echo "setup: installing duty-gateway and its test extra into .venv/"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

if [ -w /usr/local/bin ]; then
  ln -sf "$PWD/.venv/bin/dutygw" /usr/local/bin/dutygw
  echo "setup: dutygw is on the PATH (/usr/local/bin/dutygw -> $PWD/.venv/bin/dutygw)"
else
  echo "setup: not root; run $PWD/.venv/bin/dutygw, or put $PWD/.venv/bin on the PATH"
fi
