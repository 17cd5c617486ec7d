"""Spoken pages: Mandarin text to a WAV Asterisk can play, cached by the text's hash.

The text is first made speakable (``spoken.speakable``: numbers, dates, times, 文号 and
phone numbers as they are said) and turned into pinyin with each character's reading in
context (``spoken.as_pinyin``), then espeak-ng's ``VOICE`` speaks it at a phone-line pace
and sox band-limits it to the telephone band (300–3400 Hz), resamples it to 8 kHz 16-bit
mono (what Asterisk's ``wav`` format is, so it does not resample on every call) and
normalises it to -3 dBFS so the line does not clip. Files are written under a temporary
name and renamed, so Asterisk never plays half a file. When the synthesiser fails the
caller gets the committed fallback prompt instead of silence.

Asterisk plays a file by name without its extension (``Playback`` / ``STREAM FILE``); an
absolute path works, so the name handed out is the file's path as the PBX sees it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.errors import GatewayError
from gateway.paging.spoken import as_pinyin, speakable, twice

log = logging.getLogger("dutygw.paging.speech")

VOICE = "cmn-latn-pinyin"
"""The espeak-ng voice that really speaks Mandarin. espeak-ng reads a Chinese character by
turning it into pinyin and reading that pinyin with the voice's rules for Latin letters.
The plain Mandarin voice (cmn) reads Latin as English (``dictrules 1``), and in espeak-ng
1.51 (Debian 12) its own pinyin too: 紧急 comes out ``(en)dZI55n…``, English letters.
``cmn-latn-pinyin`` reads Latin as pinyin: Mandarin syllables with tones (``tS;'i21n``).
It is also what lets us hand it pinyin read in context (``spoken.as_pinyin``), which the
plain voice would read as English words. The cost, that a Latin word in a title is read as
pinyin, does not matter on a page. espeak-ng issues #1236 and #1370; tests/test_speech.py
checks every spoken template with it."""
WORDS_PER_MINUTE = 135
"""espeak-ng's default is 175 (about 3.4 syllables a second in Mandarin); 135 gives about
2.5, slow enough for a narrow, noisy line and a listener who was asleep a minute ago."""
SAMPLE_RATE = 8000
BAND_HZ = (300, 3400)
"""The telephone band (G.712): what is outside it is cut on the line anyway, and energy
there only aliases or distorts in the 8 kHz codecs."""
PEAK_DB = -3
RENDERING = f"{BAND_HZ[0]}-{BAND_HZ[1]}/{SAMPLE_RATE}/{PEAK_DB}"
"""Part of every cached file's name (with the voice, the pace and the text as said): a page
that would sound different is rendered anew, never taken from the cache."""
FALLBACK_PAGE = "dutygw/page-fallback"
"""The committed prompts (``dialplan/sounds/``), installed in Asterisk's sounds folder."""
FALLBACK_THANKS = "dutygw/page-thanks"
FALLBACK_GOODBYE = "dutygw/page-goodbye"
FALLBACK_TEXTS = {
    "page-fallback": twice("这里是政务值班室，有紧急来文，请尽快处理。") + "按1确认收到，按2重听。",
    "page-thanks": "已确认收到，谢谢。",
    "page-goodbye": "未收到确认，稍后将再次呼叫，再见。",
}
"""What the committed prompts say (``render_fallbacks`` made them)."""
_LANGUAGE_SWITCH = re.compile(r"\((?!cmn\))[a-z-]+\)")


class SpeechError(GatewayError):
    remedy = "install espeak-ng and sox (scripts/setup.sh); the fallback prompt is played meanwhile"


@dataclass(frozen=True)
class Speech:
    """Renders prompts into ``sounds_dir``; ``pbx_dir`` is that folder as Asterisk sees it."""

    sounds_dir: Path
    pbx_dir: str = ""
    voice: str = VOICE
    words_per_minute: int = WORDS_PER_MINUTE
    timeout_seconds: float = 30.0

    def render(self, text: str) -> Path:
        """The WAV for ``text``, rendered once and reused; raises ``SpeechError``."""
        target = self.sounds_dir / f"page-{text_key(text, self.voice, self.words_per_minute)}.wav"
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


def text_key(text: str, voice: str = VOICE, words_per_minute: int = WORDS_PER_MINUTE) -> str:
    said = f"{voice}\n{words_per_minute}\n{RENDERING}\n{speakable(text)}"
    return hashlib.sha256(said.encode()).hexdigest()[:20]


def render_wav(text: str, target: Path, *, voice: str = VOICE, words_per_minute: int = WORDS_PER_MINUTE,
               timeout: float = 30.0) -> None:
    """espeak-ng → sox (telephone band, 8 kHz, 16-bit, mono) → ``target``, atomically."""
    said = speakable(text).strip()
    if not said:
        raise SpeechError("nothing to say: the page text is empty")
    with tempfile.TemporaryDirectory(prefix="dutygw-tts-") as work:
        raw = Path(work) / "espeak.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), "--stdin"],
             as_pinyin(said).encode("utf-8"), timeout)
        # unique per render: two threads may render the same text at once (same pid)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        _run(sox_command(raw, partial), b"", timeout)
        os.replace(partial, target)


def sox_command(source: Path, target: Path) -> list[str]:
    """Band-pass to the telephone band, then 8 kHz; ``-D`` (no dither) keeps renders identical."""
    low, high = BAND_HZ
    return ["sox", "-D", str(source), "-t", "wav", "-c", "1", "-b", "16", "-e", "signed-integer", str(target),
            "sinc", f"{low}-{high}", "rate", "-v", str(SAMPLE_RATE), "gain", "-n", str(PEAK_DB)]


def phonemes(text: str, voice: str = VOICE, timeout: float = 30.0) -> str:
    """espeak-ng's phoneme transcript (``-x``) of what would be said for ``text``."""
    said = as_pinyin(speakable(text))
    done = _run(["espeak-ng", "-v", voice, "-q", "-x", "--stdin"], said.encode("utf-8"), timeout)
    return done.decode("utf-8", "replace")


def check_mandarin(text: str, voice: str = VOICE) -> str:
    """The transcript of ``text``; raises ``SpeechError`` if espeak-ng would not say it in Mandarin."""
    transcript = phonemes(text, voice)
    switched = _LANGUAGE_SWITCH.findall(transcript)
    if switched:
        raise SpeechError(f"voice {voice} switches language ({', '.join(sorted(set(switched)))}) for {text!r}")
    return transcript


def _run(command: list[str], stdin: bytes, timeout: float) -> bytes:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(f"{command[0]} failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()[:300]
        raise SpeechError(f"{command[0]} exited {done.returncode}: {message}")
    return done.stdout


def render_fallbacks(folder: Path) -> list[Path]:
    """(Re)make the committed fallback prompts; run by hand when their texts or the rendering change."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, text in FALLBACK_TEXTS.items():
        check_mandarin(text)
        render_wav(text, folder / f"{name}.wav")
        made.append(folder / f"{name}.wav")
    return made


if __name__ == "__main__":  # python -m gateway.paging.speech dialplan/sounds
    import sys

    for made_path in render_fallbacks(Path(sys.argv[1] if len(sys.argv) > 1 else "dialplan/sounds")):
        print(made_path)


def speech_for(config: Config) -> Speech:
    """The prompt renderer of the page and the spot checks alike: ``[paging] sounds_dir``
    (default ``<data_dir>/sounds``), played from ``pbx_sounds_dir`` on the PBX."""
    return Speech(config.paging.sounds_dir or config.paths.data_dir / "sounds", config.paging.pbx_sounds_dir)
