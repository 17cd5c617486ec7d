"""The spot check's recorded prompts (``dialplan/sounds/spotcheck-*.wav``), played when the
gateway's own rendering is unavailable; made through the paging speech path.

Regenerate them whenever the texts or the speech path change:
``python -m gateway.spotcheck.sounds dialplan/sounds``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.paging.speech import render_wav

FALLBACK_PROMPT = "dutygw/spotcheck-fallback"
FALLBACK_PROMPT_NAME = "dutygw/spotcheck-name"
FALLBACK_THANKS = "dutygw/spotcheck-thanks"
THANKS_TEXT = "谢谢，再见。"
FALLBACK_TEXTS = {
    "spotcheck-fallback": "这里是政务值班室，现在进行值班抽查。请按1确认。",
    "spotcheck-name": "这里是政务值班室，现在进行值班抽查。请按1确认，然后在提示音后说出您的姓名。",
    "spotcheck-thanks": THANKS_TEXT,
}


def render_fallbacks(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in FALLBACK_TEXTS.items():
        render_wav(text, folder / f"{name}.wav")
        paths.append(folder / f"{name}.wav")
    return paths


if __name__ == "__main__":
    for made in render_fallbacks(Path(sys.argv[1] if len(sys.argv) > 1 else "dialplan/sounds")):
        print(made)
