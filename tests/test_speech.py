"""Spoken pages: real espeak-ng and sox, checked as Asterisk would need the file."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from gateway.paging.speech import FALLBACK_PAGE, FALLBACK_TEXTS, Speech, SpeechError, render_wav

ROOT = Path(__file__).resolve().parents[1]
TEXT = "这里是政务值班室。传真〔2026〕0137号，省应急管理厅，特急，关于做好强降雨防范工作的紧急通知。按1确认收到，按2重听。"

needs_tts = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                               reason="espeak-ng and sox are Debian packages the gateway host needs")


def _audio(path: Path) -> tuple[int, int, int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), np.frombuffer(frames, "<i2")


def _sox_rms(path: Path) -> float:
    done = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True)
    line = next(l for l in done.stderr.splitlines() if l.startswith("RMS     amplitude"))
    return float(line.split(":")[1])


@needs_tts
def test_rendered_page_is_8khz_16bit_mono_speech(tmp_path: Path) -> None:
    speech = Speech(tmp_path / "sounds")
    path = speech.render(TEXT)
    rate, channels, width, samples = _audio(path)
    assert (rate, channels, width) == (8000, 1, 2)
    seconds = len(samples) / rate
    assert 5.0 < seconds < 60.0, seconds
    assert np.abs(samples).max() < 32767, "normalised, not clipped"
    assert _sox_rms(path) > 0.02, "speech, not silence"


@needs_tts
def test_same_text_is_rendered_once_and_named_for_the_pbx(tmp_path: Path) -> None:
    speech = Speech(tmp_path / "sounds", pbx_dir="/var/spool/asterisk/dutygw/")
    first = speech.render(TEXT)
    stamp = first.stat().st_mtime_ns
    assert speech.render(TEXT) == first and first.stat().st_mtime_ns == stamp
    assert speech.render(TEXT + "再说一遍") != first
    name = speech.prompt(TEXT)
    assert name == f"/var/spool/asterisk/dutygw/{first.stem}" and not name.endswith(".wav")
    assert [p.name for p in (tmp_path / "sounds").iterdir() if p.name.startswith(".")] == [], "no partial files"


def test_broken_synthesiser_falls_back_to_the_recorded_prompt(tmp_path: Path) -> None:
    speech = Speech(tmp_path / "sounds", voice="zzq")
    with pytest.raises(SpeechError):
        speech.render(TEXT)
    assert speech.prompt(TEXT) == FALLBACK_PAGE
    assert not any((tmp_path / "sounds").glob("*.wav"))


def test_empty_text_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpeechError):
        render_wav("  ", tmp_path / "x.wav")


@pytest.mark.parametrize("name", sorted(FALLBACK_TEXTS))
def test_committed_fallback_prompts_are_playable(name: str) -> None:
    path = ROOT / "dialplan" / "sounds" / f"{name}.wav"
    rate, channels, width, samples = _audio(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert len(samples) / rate > 1.5
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 300, "not silence"
