"""The dialplan's [dutygw-spotcheck] context: linted with the rest, matching what the gateway
originates, and its UserEvents understood by the check state machine."""

from __future__ import annotations

import dataclasses
import re
import wave
from datetime import UTC, datetime

import pytest

from gateway.ami.peer import load_story
from gateway.config import Config, DutyConfig, SpotCheckConfig
from gateway.spotcheck.check import CheckTracker, Outcome, Rules
from gateway.spotcheck.runner import originate_fields
from gateway.spotcheck.sounds import FALLBACK_TEXTS
from tests.conftest import AMI_FIXTURES
from tests.test_dialplan import DIALPLAN, EXTENSIONS, _contexts

BUILTINS = {"READSTATUS", "RECORD_STATUS", "ASTSPOOLDIR"}


def _context() -> list[str]:
    return _contexts(EXTENSIONS.read_text())[SpotCheckConfig().context]


def test_context_prompts_reads_records_and_raises_the_userevent() -> None:
    lines = _context()
    assert all(line.startswith(("exten => s,", "same =>")) for line in lines)
    code = "\n".join(lines)
    assert "Answer()" in lines[1] and lines[-1].endswith("Hangup()")
    assert "Read(SPOT_DIGIT,${SPOT_PROMPT},1,,1,6)" in code
    events = [line for line in lines if "UserEvent(" in line]
    assert events[0].split("UserEvent(", 1)[1].startswith(
        "SpotCheck,CheckID: ${SPOT_ID},Digit: ${SPOT_DIGIT},ReadStatus: ${READSTATUS},Round: ${SPOT_ROUND}")
    record = next(line for line in lines if "Record(" in line)
    assert re.search(r"Record\(\$\{SPOT_FILE\}\.wav,\d+,\$\{SPOT_RECORD_SECONDS\},k\)", record)
    assert code.index("RecordStatus: STARTED") < code.index("Record(${SPOT_FILE}"), "named before the caller can hang up"
    assert "VoiceMail" not in code and "Dial(" not in code


def test_every_variable_the_context_reads_is_set_by_the_originate_or_by_itself() -> None:
    code = "\n".join(_context())
    used = set(re.findall(r"\$\{([A-Z_]+)[}(:]", code))
    set_here = set(re.findall(r"Set\(([A-Z_]+)=", code)) | {"SPOT_DIGIT"}
    config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001"]))
    fields = originate_fields(config, "spot-1-1", "02785550001", {"prompt": "/x/p", "thanks": "/x/t"})
    originated = {v.split("=", 1)[0] for v in fields["Variable"]}
    assert used - set_here - BUILTINS <= originated, used - set_here - BUILTINS - originated
    assert (fields["Context"], fields["Exten"]) == ("dutygw-spotcheck", "s")


@pytest.mark.parametrize("name", sorted(FALLBACK_TEXTS))
def test_the_recorded_prompts_are_telephone_wavs(name: str) -> None:
    with wave.open(str(DIALPLAN / "sounds" / f"{name}.wav")) as sound:
        assert (sound.getframerate(), sound.getnchannels(), sound.getsampwidth()) == (8000, 1, 2)
        assert sound.getnframes() > 8000 * 0.5
    assert f"dutygw/{name}" in EXTENSIONS.read_text() or name == "spotcheck-name"


def test_the_contexts_own_userevents_give_the_key_and_the_recording() -> None:
    """The real answered capture, with its UserEvent as [dutygw-spotcheck] raises it."""
    story = load_story(AMI_FIXTURES / "page_ack.ami")
    action_id, wav = "spot-9-1", "/var/spool/asterisk/monitor/dutygw-spotcheck-spot-9-1.wav"
    messages = []
    for message in story.events:
        if message.event == "VarSet" and message.get("Variable") == "PAGE_ID":
            message = _with(message, Variable="SPOT_ID", Value=action_id)
        if message.get("UserEvent") == "PageAck":
            messages.append(_with(message, UserEvent="SpotCheck", CheckID=action_id))
            message = _with(message, UserEvent="SpotCheck", CheckID=action_id, Recording=wav,
                            RecordStatus="SILENCE", Digit=None)
        messages.append(message)
    tracker = CheckTracker(Rules())
    tracker.sent(action_id, "13700003333", "13700003333@trunk", datetime(2026, 10, 1, tzinfo=UTC))
    results = [r for m in messages for r in tracker.feed(m, datetime(2026, 10, 1, tzinfo=UTC))]
    (result,) = results
    assert (result.outcome, result.digit, result.recording, result.rings, result.rule_met) == (
        Outcome.ANSWERED, "1", wav, 2, True)


def _with(message, **changes):  # type: ignore[no-untyped-def]
    headers = [(k, v) for k, v in message.headers if k not in changes]
    headers += [(k, v) for k, v in changes.items() if v is not None]
    return dataclasses.replace(message, headers=tuple(headers))


@pytest.mark.parametrize("record_name", [False, True])
def test_the_spoken_prompts_are_mandarin(record_name: bool) -> None:
    """espeak-ng -x on what the check says: no switch to another language anywhere."""
    from gateway.paging.speech import check_mandarin
    from gateway.spotcheck.runner import prompt_text
    from gateway.spotcheck.sounds import THANKS_TEXT

    config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001"], room_name="省司法厅值班室"),
                    spotcheck=SpotCheckConfig(record_name=record_name))
    text = prompt_text(config)
    assert text.startswith("这里是省司法厅值班室，现在进行值班抽查。请按1确认")
    for said in (text, THANKS_TEXT, *FALLBACK_TEXTS.values()):
        assert check_mandarin(said)
