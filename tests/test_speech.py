"""Spoken pages: real espeak-ng and sox, checked as Mandarin and as Asterisk would need the file."""

from __future__ import annotations

import json
import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from gateway.paging.agi import GOODBYE_TEXT, PROMPT_SUFFIX, THANKS_TEXT
from gateway.paging.notices import spoken_page_text
from gateway.paging.speech import (
    BAND_HZ,
    FALLBACK_PAGE,
    FALLBACK_TEXTS,
    VOICE,
    Speech,
    SpeechError,
    check_mandarin,
    phonemes,
    render_wav,
)
from gateway.paging.spoken import SAY_AGAIN, speakable
from tests.conftest import FAX_FIXTURES
from tests.test_notices import ROOM, receipt_from_fixture

ROOT = Path(__file__).resolve().parents[1]
TEXT = "这里是政务值班室。传真〔2026〕0137号，省应急管理厅，特急，关于做好强降雨防范工作的紧急通知。按1确认收到，按2重听。"
HAN = re.compile(r"[\u4e00-\u9fff〇]")
TONE = re.compile(r"\d{2,3}")
"""espeak-ng's Mandarin phonemes carry their tone as pitch digits (tS;'i21n, s.'@35N)."""


def _audio(path: Path) -> tuple[int, int, int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), np.frombuffer(frames, "<i2")


def _sox_rms(path: Path) -> float:
    done = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True)
    line = next(line for line in done.stderr.splitlines() if line.startswith("RMS     amplitude"))
    return float(line.split(":")[1])


def _band_shares(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Shares of the energy below 300 Hz and above 3400 Hz."""
    power = np.abs(np.fft.rfft(samples.astype(float))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(power[freqs < BAND_HZ[0]].sum() / power.sum()), float(power[freqs > BAND_HZ[1]].sum() / power.sum())


def _envelope(samples: np.ndarray, rate: int, frame_s: float = 0.02) -> np.ndarray:
    """Loudness in dB per 20 ms: what a listener hears, robust to filter phase and gain."""
    size = int(rate * frame_s)
    frames = samples[: len(samples) // size * size].astype(float).reshape(-1, size)
    return 10 * np.log10((frames ** 2).mean(axis=1) + 1.0)


def assert_mandarin(text: str) -> None:
    """espeak-ng says ``text`` in Mandarin: no language switch, one toned syllable per character."""
    transcript = phonemes(text)
    assert not re.search(r"\((?!cmn\))[a-z-]+\)", transcript), (text, transcript)
    said = speakable(text)
    assert not re.search(r"[0-9]", said), said
    assert len(TONE.findall(transcript)) == len(HAN.findall(said)), (said, transcript)


def spoken_templates() -> dict[str, str]:
    """Every text the phone says: pages of each shape, the dialog's prompts, the fallbacks."""
    unknown = receipt_from_fixture("fax_001", 3)
    unknown.issuer = unknown.title = None
    possibly = receipt_from_fixture("fax_002", 4)
    possibly.is_urgent, possibly.possibly_urgent, possibly.urgency = False, True, None
    pages = {
        "one": [receipt_from_fixture("fax_022", 137)],
        "three": [receipt_from_fixture(name, seq) for name, seq in (("fax_008", 140), ("fax_006", 141), ("fax_020", 142))],
        "classified": [receipt_from_fixture("fax_003", 5)],
        "unknown fields": [unknown],
        "possibly urgent": [possibly],
    }
    texts = {f"page: {name}": spoken_page_text(receipts, **ROOM) for name, receipts in pages.items()}
    texts |= {"thanks": THANKS_TEXT, "goodbye": GOODBYE_TEXT, "keys": PROMPT_SUFFIX}
    return texts | {f"fallback: {name}": text for name, text in FALLBACK_TEXTS.items()}


@pytest.mark.parametrize("name", sorted(spoken_templates()))
def test_every_spoken_template_is_mandarin(name: str) -> None:
    assert_mandarin(spoken_templates()[name])


@pytest.mark.parametrize("truth", sorted(p.name for p in FAX_FIXTURES.glob("*.json")))
def test_real_fax_fields_are_mandarin(truth: str) -> None:
    fields = json.loads((FAX_FIXTURES / truth).read_text(encoding="utf-8"))["fields"]
    told = [fields[name] for name in ("issuer", "title", "doc_number") if fields.get(name)]
    assert told
    for text in told:
        assert_mandarin(text)


def test_the_check_sees_a_language_switch() -> None:
    """The plain ``cmn`` voice reads Latin as English: the (en) switch this module guards against."""
    assert "(en)" in phonemes("hello duty room", voice="cmn")
    with pytest.raises(SpeechError, match="switches language"):
        check_mandarin("hello duty room", voice="cmn")
    check_mandarin("紧急传真，湖北省司法厅")


def test_no_plain_cmn_voice_anywhere() -> None:
    """Every espeak-ng call site uses ``VOICE``; ``cmn`` alone would speak English letters."""
    plain = re.compile(r"""(?:-v\s*|voice\s*[=:]\s*|["'`])cmn(?![\w-])""", re.IGNORECASE)
    assert all(plain.search(line) for line in ('VOICE = "cmn"', "espeak-ng -v cmn -q", "voice=cmn", "`-v cmn`"))
    assert not plain.search(f'VOICE = "{VOICE}"')
    found = []
    for folder in ("gateway", "dialplan", "examples", "scripts"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".conf", ".md", ".sh", ".toml", ".ini"} and path.is_file():
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                    if plain.search(line):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
    assert VOICE == "cmn-latn-pinyin" and Speech(ROOT).voice == VOICE


def test_rendered_page_is_8khz_16bit_mono_band_limited_speech(tmp_path: Path) -> None:
    speech = Speech(tmp_path / "sounds")
    path = speech.render(TEXT)
    rate, channels, width, samples = _audio(path)
    assert (rate, channels, width) == (8000, 1, 2)
    seconds = len(samples) / rate
    assert 5.0 < seconds < 60.0, seconds
    assert np.abs(samples).max() < 32767, "normalised, not clipped"
    assert _sox_rms(path) > 0.02, "speech, not silence"
    low, high = _band_shares(samples, rate)
    assert high < 0.005, f"{high:.2%} of the energy above {BAND_HZ[1]} Hz"
    assert low < 0.05, f"{low:.2%} of the energy below {BAND_HZ[0]} Hz"


def test_page_is_slow_enough_for_a_phone_line(tmp_path: Path) -> None:
    rate, _, _, samples = _audio(Speech(tmp_path).render(TEXT))
    syllables = len(HAN.findall(speakable(TEXT)))
    per_second = syllables / (len(samples) / rate)
    assert 2.0 < per_second < 3.0, per_second  # espeak-ng's default pace is about 3.4


def assert_heard_twice(page: Path, message: Path) -> None:
    """``message``'s loudness contour is found twice in ``page``, one after the other, then more."""
    rate, _, _, samples = _audio(page)
    heard, wanted = _envelope(samples, rate), _envelope(_audio(message)[3], rate)
    n = len(wanted)
    assert len(heard) >= 2 * n, "long enough for the message twice"
    scores = np.array([np.corrcoef(heard[i:i + n], wanted)[0, 1] for i in range(len(heard) - n + 1)])
    first = int(np.argmax(scores[: n // 2]))
    second = n // 2 + int(np.argmax(scores[n // 2:]))
    assert scores[first] > 0.9 and scores[second] > 0.9, (scores[first], scores[second])
    assert second - first >= n, "two whole messages, one after the other"
    assert len(heard) > second + n + 1.0 / 0.02, "the keys are said after the second message"


def test_page_says_the_message_twice_before_the_keys(tmp_path: Path) -> None:
    text = spoken_page_text([receipt_from_fixture("fax_008", 137)], **ROOM)
    message, again = text.split(SAY_AGAIN)
    assert again == message + PROMPT_SUFFIX
    assert_heard_twice(Speech(tmp_path).render(text), Speech(tmp_path).render(message))


def test_recorded_fallback_says_its_message_twice_too(tmp_path: Path) -> None:
    message = FALLBACK_TEXTS["page-fallback"].split(SAY_AGAIN)[0]
    assert_heard_twice(ROOT / "dialplan" / "sounds" / "page-fallback.wav", Speech(tmp_path).render(message))


def test_same_text_is_rendered_once_and_named_for_the_pbx(tmp_path: Path) -> None:
    speech = Speech(tmp_path / "sounds", pbx_dir="/var/spool/asterisk/dutygw/")
    first = speech.render(TEXT)
    stamp = first.stat().st_mtime_ns
    assert speech.render(TEXT) == first and first.stat().st_mtime_ns == stamp
    assert speech.render(TEXT + "再说一遍") != first
    assert speech.render(TEXT.replace("按1", "按一")) == first, "named by what is said, not how it is written"
    slower = Speech(tmp_path / "sounds", words_per_minute=110).render(TEXT)
    assert slower != first and len(_audio(slower)[3]) > len(_audio(first)[3]), "another pace is another file"
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
def test_committed_fallback_prompts_are_the_mandarin_texts_as_asterisk_plays_them(name: str, tmp_path: Path) -> None:
    path = ROOT / "dialplan" / "sounds" / f"{name}.wav"
    rate, channels, width, samples = _audio(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 300, "not silence"
    low, high = _band_shares(samples, rate)
    assert high < 0.005 and low < 0.05, (low, high)
    assert_mandarin(FALLBACK_TEXTS[name])
    render_wav(FALLBACK_TEXTS[name], tmp_path / "fresh.wav")  # as `python -m gateway.paging.speech` makes it
    _, _, _, fresh = _audio(tmp_path / "fresh.wav")
    assert abs(len(samples) - len(fresh)) <= 0.02 * len(fresh), "made from this text with this voice and pace"
    n = min(len(samples), len(fresh))
    assert np.corrcoef(_envelope(samples[:n], rate), _envelope(fresh[:n], rate))[0, 1] > 0.95


@pytest.mark.parametrize("path", sorted((ROOT / "dialplan" / "sounds").glob("*.wav")), ids=lambda p: p.name)
def test_every_committed_prompt_is_what_asterisk_plays_on_a_phone_line(path: Path) -> None:
    """Any recorded prompt, not only the page's: 8 kHz 16-bit mono in the telephone band."""
    rate, channels, width, samples = _audio(path)
    assert (rate, channels, width) == (8000, 1, 2)
    low, high = _band_shares(samples, rate)
    assert high < 0.005 and low < 0.05, f"rendered before the band-pass: {low:.2%} low, {high:.2%} high"
