"""Spoken pages: Mandarin text to a WAV Asterisk can play, cached by the text's hash.

espeak-ng's ``cmn`` voice speaks; sox turns its 22.05 kHz output into 8 kHz 16-bit mono
(what a telephone channel carries, so Asterisk does not resample on every call),
normalised to -3 dBFS so the phone line does not clip it. Files are
written under a temporary name and renamed, so Asterisk never plays half a file. When the
synthesiser fails the caller gets the committed fallback prompt instead of silence.

Asterisk plays a file by name without its extension (``Playback`` / ``STREAM FILE``); an
absolute path works, so the name handed out is the file's path as the PBX sees it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import GatewayError

log = logging.getLogger("dutygw.paging.speech")

VOICE = "cmn"
SAMPLE_RATE = 8000
FALLBACK_PAGE = "dutygw/page-fallback"
"""The committed prompts (``dialplan/sounds/``), installed in Asterisk's sounds folder."""
FALLBACK_THANKS = "dutygw/page-thanks"
FALLBACK_GOODBYE = "dutygw/page-goodbye"
FALLBACK_TEXTS = {
    "page-fallback": "这里是政务值班室，有紧急来文，请尽快处理。按1确认收到，按2重听。",
    "page-thanks": "已确认收到，谢谢。",
    "page-goodbye": "未收到确认，稍后将再次呼叫，再见。",
}
"""What the committed prompts say (``render_fallbacks`` made them)."""


class SpeechError(GatewayError):
    remedy = "install espeak-ng (with its cmn voice) and sox; the fallback prompt is played meanwhile"


@dataclass(frozen=True)
class Speech:
    """Renders prompts into ``sounds_dir``; ``pbx_dir`` is that folder as Asterisk sees it."""

    sounds_dir: Path
    pbx_dir: str = ""
    voice: str = VOICE
    words_per_minute: int = 150
    timeout_seconds: float = 30.0

    def render(self, text: str) -> Path:
        """The WAV for ``text``, rendered once and reused; raises ``SpeechError``."""
        target = self.sounds_dir / f"page-{text_key(text, self.voice)}.wav"
        if target.exists() and target.stat().st_size > 44:
            return target
        self.sounds_dir.mkdir(parents=True, exist_ok=True)
        render_wav(text, target, voice=self.voice, words_per_minute=self.words_per_minute,
                   timeout=self.timeout_seconds)
        return target

    def playback_name(self, path: Path) -> str:
        """What ``STREAM FILE`` / ``Playback`` need: the PBX-side path, without ``.wav``."""
        folder = self.pbx_dir.rstrip("/") if self.pbx_dir else str(path.parent)
        return f"{folder}/{path.stem}"

    def prompt(self, text: str, fallback: str = FALLBACK_PAGE) -> str:
        """The playback name for ``text``, or ``fallback`` if it cannot be rendered."""
        try:
            return self.playback_name(self.render(text))
        except SpeechError as exc:
            log.error("spoken page falls back to %s: %s", fallback, exc)
            return fallback


def text_key(text: str, voice: str = VOICE) -> str:
    return hashlib.sha256(f"{voice}\n{text}".encode()).hexdigest()[:20]


def render_wav(text: str, target: Path, *, voice: str = VOICE, words_per_minute: int = 150,
               timeout: float = 30.0) -> None:
    """espeak-ng → sox → ``target`` (8 kHz, 16-bit, mono), atomically."""
    if not text.strip():
        raise SpeechError("nothing to say: the page text is empty")
    with tempfile.TemporaryDirectory(prefix="dutygw-tts-") as work:
        raw = Path(work) / "espeak.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), "--stdin"],
             text.encode("utf-8"), timeout)
        # unique per render: two threads may render the same text at once (same pid)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        _run(["sox", str(raw), "-t", "wav", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
              str(partial), "gain", "-n", "-3"], b"", timeout)
        os.replace(partial, target)


def _run(command: list[str], stdin: bytes, timeout: float) -> None:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(f"{command[0]} failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()[:300]
        raise SpeechError(f"{command[0]} exited {done.returncode}: {message}")


def render_fallbacks(folder: Path) -> list[Path]:
    """(Re)make the committed fallback prompts; run by hand when their texts change."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, text in FALLBACK_TEXTS.items():
        render_wav(text, folder / f"{name}.wav")
        made.append(folder / f"{name}.wav")
    return made


if __name__ == "__main__":  # python -m gateway.paging.speech dialplan/sounds
    import sys

    for made_path in render_fallbacks(Path(sys.argv[1] if len(sys.argv) > 1 else "dialplan/sounds")):
        print(made_path)
