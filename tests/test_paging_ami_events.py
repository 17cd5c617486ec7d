"""The page calls' AMI events through the pure translation, on the byte-exact captures.

``page_ack.ami`` and ``page_noanswer.ami`` are a real Asterisk 22 answering the gateway's
own Originate; each is parsed by the gateway's framing, fed one message at a time with its
own time, and what comes out is fed to the escalation engine as the pager does (the
escalation remembered again after every step). The whole story must equal the manifest's
ground truth. Every other capture is the PBX's traffic that is not ours: nothing comes out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.ami.framing import iter_messages
from gateway.ami.message import AmiMessage
from gateway.clock import utc_from_epoch
from gateway.paging import escalation as engine
from gateway.paging.ami_events import PageCalls
from gateway.paging.escalation import (
    Acknowledged,
    CallEnded,
    Escalation,
    OriginateResult,
    OriginateSent,
    Person,
    Rules,
)
from storage.states import AttemptResult, EscalationState
from tests.conftest import AMI_FIXTURES

MANIFEST = json.loads((AMI_FIXTURES / "manifest.json").read_text(encoding="utf-8"))
SCENARIOS = MANIFEST["scenarios"]
PAGES = ("page_ack", "page_noanswer")
RULES = Rules()
RECEIPT = 7
FALLBACK_TIME = datetime(2026, 11, 22, 7, 34, tzinfo=UTC)
"""For the few messages with no time of their own (responses): none of them may matter."""


def messages(name: str) -> list[AmiMessage]:
    return [m for f in SCENARIOS[name]["files"] for m in iter_messages((AMI_FIXTURES / f).read_bytes())]


def page_call(name: str) -> dict[str, Any]:
    (call,) = [c for c in SCENARIOS[name]["calls"] if c["kind"] == "originate"]
    return call


def page_token(name: str) -> str:
    """The PAGE_ID the recorded Originate carried (its channel sets it first thing)."""
    (token,) = {m["Value"] for m in messages(name) if m.event == "VarSet" and m.get("Variable") == "PAGE_ID"}
    return token


def sent_escalation(name: str) -> Escalation:
    """An escalation whose first call is the capture's Originate, sent at the call's start."""
    call, action_id = page_call(name), SCENARIOS[name]["originate_action_id"]
    started = utc_from_epoch(call["start"])
    opened, (place,) = engine.open_escalation(1, [RECEIPT], [Person("director", "李主任", call["dialed_number"])],
                                              started - timedelta(seconds=1), RULES)
    assert isinstance(place, engine.PlaceCall)
    (attempt,) = opened.attempts
    opened = dataclasses.replace(opened, attempts=(dataclasses.replace(attempt, key=action_id),))
    opened = engine.with_page_token(opened, action_id, page_token(name))
    sent, _ = engine.handle(opened, OriginateSent(action_id, started), RULES)
    return sent


def replay(name: str, calls: PageCalls, escalation: Escalation,
           stream: list[AmiMessage] | None = None) -> tuple[list[object], Escalation]:
    """Every message in, each engine event applied at once, the escalation remembered again."""
    calls.remember(escalation)
    calls.placed(SCENARIOS[name]["originate_action_id"])
    events: list[object] = []
    for message in stream if stream is not None else messages(name):
        event = calls.feed(message, message.time or FALLBACK_TIME)
        if event is not None:
            events.append(event)
            escalation, actions = engine.handle(escalation, event, RULES)
            calls.remember(escalation)
            if any(isinstance(a, engine.CloseEscalation) for a in actions):
                calls.close(escalation.id)
    return events, escalation


def fed(calls: PageCalls, stream: list[AmiMessage]) -> list[object]:
    """What comes out of a whole stream fed with no engine behind."""
    return [e for m in stream if (e := calls.feed(m, m.time or FALLBACK_TIME)) is not None]


def at(epoch: float | str) -> datetime:
    return utc_from_epoch(float(epoch))


def test_an_acknowledged_page_is_answered_acknowledged_and_hung_up() -> None:
    name, calls = "page_ack", PageCalls()
    call, (response,) = page_call(name), SCENARIOS[name]["originate_response"]
    (ack,) = call["page_ack_events"]
    key = response["ActionID"]
    events, escalation = replay(name, calls, sent_escalation(name))
    assert events == [
        OriginateResult(key, int(response["Reason"]), response["Channel"], at(response["Timestamp"])),
        Acknowledged(key, ack["digit"], None, at(ack["timestamp"])),
        CallEnded(key, at(call["end"])),
    ]
    assert escalation.state == EscalationState.ACKNOWLEDGED and escalation.deadline_met is True
    (attempt,) = escalation.attempts
    assert attempt.result == AttemptResult.ACKNOWLEDGED
    assert attempt.answered_at == at(response["Timestamp"]) and attempt.channel == call["pbx_channel"]


def test_the_answered_call_is_known_by_its_channel_and_uniqueid_while_it_lasts() -> None:
    name, calls = "page_ack", PageCalls()
    call, key = page_call(name), SCENARIOS[name]["originate_action_id"]
    stream = messages(name)
    ack = next(i for i, m in enumerate(stream) if m.get("UserEvent") == "PageAck")
    replay(name, calls, sent_escalation(name), stream[:ack])
    assert calls.sightings > 0
    assert calls.is_our_channel(key, call["pbx_channel"], "")
    assert calls.is_our_channel(key, "", call["pbx_uniqueid"])
    assert not calls.is_our_channel(key, "PJSIP/trunk-00000099", "1795332880.99")
    assert calls.channels_of({key}) == [call["pbx_channel"]]


def test_a_page_nobody_answers_is_no_answer_and_the_next_try_is_planned() -> None:
    name, calls = "page_noanswer", PageCalls()
    call, (response,) = page_call(name), SCENARIOS[name]["originate_response"]
    key = response["ActionID"]
    events, escalation = replay(name, calls, sent_escalation(name))
    assert events == [
        OriginateResult(key, int(response["Reason"]), response["Channel"], at(response["Timestamp"])),
        CallEnded(key, at(call["end"])),  # the trunk leg's Hangup (cause 19): the attempt is over already
    ]
    first, second = escalation.attempts
    assert first.result == AttemptResult.NO_ANSWER and first.ended_at == at(response["Timestamp"])
    assert second.result == AttemptResult.PLANNED and escalation.state == EscalationState.OPEN
    assert not calls.is_placed(key), "an attempt over needs no FastAGI session"
    assert calls.channels_of({key}) == []


@pytest.mark.parametrize("name", PAGES)
def test_a_page_of_another_gateway_or_an_escalation_closed_is_not_ours(name: str) -> None:
    calls = PageCalls()
    assert fed(calls, messages(name)) == []
    assert calls.sightings == 0
    escalation = sent_escalation(name)
    calls.remember(escalation)
    calls.close(escalation.id)
    calls.remember(dataclasses.replace(escalation, state=EscalationState.STOPPED))
    assert fed(calls, messages(name)) == []


@pytest.mark.parametrize("name", sorted(n for n in SCENARIOS if n not in PAGES))
def test_the_pbx_traffic_that_is_not_a_page_gives_no_event(name: str) -> None:
    """A live page of ours is waiting meanwhile: duty-line calls, faxes, callbacks and restarts are not it."""
    calls = PageCalls()
    calls.remember(sent_escalation("page_ack"))
    assert fed(calls, messages(name)) == []
    assert calls.sightings == 0


def test_a_page_ack_from_another_channel_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    name = "page_ack"
    stream = [_moved(m) if m.get("UserEvent") == "PageAck" else m for m in messages(name)]
    with caplog.at_level(logging.WARNING, logger="dutygw.paging"):
        events, escalation = replay(name, PageCalls(), sent_escalation(name), stream)
    assert [type(e) for e in events] == [OriginateResult, CallEnded]
    assert escalation.state == EscalationState.OPEN
    assert "not the page's own call" in caplog.text


def test_a_late_echo_of_a_finished_page_is_quiet_and_an_unknown_token_is_not(
        caplog: pytest.LogCaptureFixture) -> None:
    name, calls = "page_ack", PageCalls()
    stream = messages(name)
    replay(name, calls, sent_escalation(name), stream)
    (ack,) = [m for m in stream if m.get("UserEvent") == "PageAck"]
    forged = AmiMessage(tuple((k, "x" + v if k == "PageID" else v) for k, v in ack.headers))
    with caplog.at_level(logging.DEBUG, logger="dutygw.paging"):
        assert calls.feed(ack, at(0)) is None and calls.feed(forged, at(0)) is None
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.WARNING]


def _moved(message: AmiMessage) -> AmiMessage:
    """The same UserEvent, raised on a channel that is not the page's call."""
    other = {"Channel": "PJSIP/trunk-00000099", "Uniqueid": "1795332880.99", "Linkedid": "1795332880.99"}
    return AmiMessage(tuple((k, other.get(k, v)) for k, v in message.headers), message.received_at)
