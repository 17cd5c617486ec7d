"""The escalation engine, fed events one at a time against a FixedClock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.clock import UTC, FixedClock
from gateway.paging.escalation import (
    Acknowledged,
    CallEnded,
    CloseEscalation,
    DialEnded,
    Escalation,
    FallBack,
    OriginateResult,
    OriginateSent,
    PageNow,
    Person,
    PlaceCall,
    PlaceFailed,
    RecordAttemptResult,
    Rules,
    Stopped,
    Tick,
    UrgentReceipt,
    handle,
    next_wakeup,
    open_escalation,
    page_now_blocker,
    resume,
    route_receipt,
)
from storage.states import EscalationState

NIGHT = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
CHAIN = (Person("带班领导", "王局长", "13700003333"), Person("办公室主任", "李主任", "13900004444"))
RULES = Rules(attempts_per_person=2, attempt_interval=timedelta(seconds=60), ring_timeout=timedelta(seconds=30),
              chain_rounds=2, deadline=timedelta(minutes=10), coalesce=timedelta(seconds=180),
              result_margin=timedelta(seconds=30), max_call=timedelta(minutes=3))


class Run:
    """Drives one escalation the way the pager does: every PlaceCall is sent at once."""

    def __init__(self, rules: Rules = RULES, chain: tuple[Person, ...] = CHAIN) -> None:
        self.clock = FixedClock(NIGHT)
        self.rules = rules
        self.calls: list[PlaceCall] = []
        self.log: list[object] = []
        self.escalation, actions = open_escalation(1, [101], chain, NIGHT, rules)
        self._take(actions)

    def _take(self, actions: list) -> None:
        for action in actions:
            self.log.append(action)
            if isinstance(action, PlaceCall):
                self.calls.append(action)
                self.feed(OriginateSent(action.key, self.clock.now()))

    def feed(self, event: object) -> None:
        self.escalation, actions = handle(self.escalation, event, self.rules)  # type: ignore[arg-type]
        self._take(actions)

    def at(self, seconds: float) -> datetime:
        return self.clock.advance(seconds)

    @property
    def last(self) -> PlaceCall:
        return self.calls[-1]

    def outcome(self, kind: str) -> None:
        """The last call ends as ``kind``, with the PBX events that say so."""
        key = self.last.key
        if kind == "no_answer":
            self.feed(OriginateResult(key, 3, "PJSIP/x@trunk", self.at(30)))
        elif kind == "busy":
            self.feed(DialEnded(key, "BUSY", self.at(1)))
            self.feed(OriginateResult(key, 0, "PJSIP/x@trunk", self.at(0)))
        elif kind == "unreachable":
            self.feed(OriginateResult(key, 0, "PJSIP/x@trunk", self.at(2)))
        elif kind in ("no_key", "key_2", "ack"):
            self.feed(OriginateResult(key, 4, "PJSIP/trunk-0000001b", self.at(5)))
            digit = {"no_key": "", "key_2": "2", "ack": "1"}[kind]
            self.feed(Acknowledged(key, digit, None, self.at(3)))
            if kind != "ack":
                self.feed(CallEnded(key, self.at(10)))

    def tick_to_next(self) -> None:
        wake = next_wakeup(self.escalation, self.rules)
        assert wake is not None
        self.clock.set(max(wake, self.clock.now()))
        self.feed(Tick(self.clock.now()))


def test_first_call_goes_out_at_once_to_the_first_person() -> None:
    run = Run()
    assert [(c.number, c.role, c.receipt_ids) for c in run.calls] == [("13700003333", "带班领导", (101,))]
    attempt = run.escalation.attempts[0]
    assert (attempt.result, attempt.sent_at, attempt.key) == ("sent", NIGHT, run.last.key)
    assert run.escalation.deadline_at == NIGHT + timedelta(minutes=10)


def test_acknowledged_on_first_call_closes_with_deadline_met() -> None:
    run = Run()
    run.outcome("ack")
    esc = run.escalation
    assert (esc.state, esc.deadline_met, esc.acknowledged_by, esc.acknowledged_number) == (
        "acknowledged", True, "王局长", "13700003333")
    assert esc.acknowledged_at == NIGHT + timedelta(seconds=8)
    assert isinstance(run.log[-1], CloseEscalation) and run.log[-1].deadline_met
    run.feed(Tick(run.at(600)))
    assert len(run.calls) == 1, "a closed escalation never calls again"


@pytest.mark.parametrize("failure", ["no_answer", "busy", "unreachable", "no_key", "key_2"])
def test_every_kind_of_failure_is_retried_then_the_next_person(failure: str) -> None:
    run = Run()
    run.outcome(failure)
    results = [a for a in run.log if isinstance(a, RecordAttemptResult)]
    assert results[-1].result == {"no_answer": "no_answer", "busy": "busy", "unreachable": "failed",
                                  "no_key": "not_acknowledged", "key_2": "not_acknowledged"}[failure]
    assert len(run.calls) == 1, "the retry waits for the interval"
    run.tick_to_next()
    assert [c.number for c in run.calls] == ["13700003333", "13700003333"]
    assert run.escalation.attempts[1].sent_at == NIGHT + timedelta(seconds=60), "60 s after the first try began"
    run.outcome(failure)
    assert [c.number for c in run.calls] == ["13700003333", "13700003333", "13900004444"], "next person at once"


def test_key_2_is_a_replay_not_an_acknowledgement_and_a_later_1_counts() -> None:
    run = Run()
    key = run.last.key
    run.feed(OriginateResult(key, 4, "PJSIP/trunk-1", run.at(5)))
    run.feed(Acknowledged(key, "2", None, run.at(4)))
    assert run.escalation.is_open
    run.feed(Acknowledged(key, "1", "13700003333", run.at(6)))
    assert run.escalation.state == "acknowledged"


TABLE = [
    # (outcomes in order, expected numbers called, final state)
    (["ack"], ["A"], "acknowledged"),
    (["no_answer", "ack"], ["A", "A"], "acknowledged"),
    (["no_answer", "no_answer", "ack"], ["A", "A", "B"], "acknowledged"),
    (["busy", "no_key", "unreachable", "ack"], ["A", "A", "B", "B"], "acknowledged"),
    (["no_answer"] * 4 + ["ack"], ["A", "A", "B", "B", "A"], "acknowledged"),
    (["no_answer"] * 8, ["A", "A", "B", "B", "A", "A", "B", "B"], "exhausted"),
]


@pytest.mark.parametrize(("outcomes", "numbers", "state"), TABLE)
def test_the_chain_table(outcomes: list[str], numbers: list[str], state: str) -> None:
    run = Run()
    for index, outcome in enumerate(outcomes):
        if index and len(run.calls) == index:
            run.tick_to_next()
        run.outcome(outcome)
    names = {"13700003333": "A", "13900004444": "B"}
    assert [names[c.number] for c in run.calls] == numbers
    assert run.escalation.state == state
    if state == "exhausted":
        assert run.escalation.deadline_met is False
        assert next_wakeup(run.escalation, run.rules) is None


def test_acknowledged_after_the_deadline_is_recorded_as_missed() -> None:
    run = Run(Rules(attempts_per_person=1, attempt_interval=timedelta(seconds=60), deadline=timedelta(minutes=1)))
    run.outcome("no_answer")  # 30 s
    run.feed(Tick(run.at(40)))  # 70 s: past the deadline
    assert run.escalation.deadline_met is False and run.escalation.is_open
    run.outcome("ack")
    assert (run.escalation.state, run.escalation.deadline_met) == ("acknowledged", False)


def test_receipts_joining_are_announced_on_the_next_call() -> None:
    run = Run()
    run.feed(UrgentReceipt(102, run.at(20)))
    run.feed(UrgentReceipt(103, run.at(5)))
    run.feed(UrgentReceipt(102, run.at(1)))
    assert run.calls[0].receipt_ids == (101,)
    run.outcome("no_answer")
    run.tick_to_next()
    assert run.last.receipt_ids == (101, 102, 103)


def test_sent_without_result_times_out_as_no_answer_after_the_margin() -> None:
    run = Run()
    run.feed(Tick(run.at(59)))
    assert run.escalation.attempts[0].result == "sent"
    run.feed(Tick(run.at(1)))  # 30 s ring + 30 s margin
    assert run.escalation.attempts[0].result == "no_answer"


def test_answered_call_that_never_ends_counts_as_not_acknowledged() -> None:
    run = Run()
    run.feed(OriginateResult(run.last.key, 4, "PJSIP/trunk-1", run.at(5)))
    run.feed(Tick(run.at(179)))
    assert run.escalation.attempts[0].result == "answered"
    run.feed(Tick(run.at(1)))
    assert run.escalation.attempts[0].result == "not_acknowledged"


def test_resume_sends_planned_attempts_and_never_resends_sent_ones() -> None:
    esc, actions = open_escalation(7, [1], CHAIN, NIGHT, RULES)
    assert [type(a) for a in actions] == [PlaceCall]
    # the row was committed, the gateway died before the Originate left: resume sends it
    again, actions = resume(esc, NIGHT + timedelta(seconds=5), RULES)
    assert [a.key for a in actions if isinstance(a, PlaceCall)] == [esc.attempts[0].key]
    # it left; the gateway died again before the result: resume does not send it again
    sent, _ = handle(again, OriginateSent(esc.attempts[0].key, NIGHT + timedelta(seconds=5)), RULES)
    _, actions = resume(sent, NIGHT + timedelta(seconds=20), RULES)
    assert actions == []
    later, actions = resume(sent, NIGHT + timedelta(seconds=70), RULES)
    assert [a.result for a in actions if isinstance(a, RecordAttemptResult)] == ["no_answer"]
    assert later.attempts[0].result == "no_answer" and later.attempts[1].result == "planned"


def test_an_unknown_or_stale_page_id_changes_nothing() -> None:
    run = Run()
    before = run.escalation
    run.feed(Acknowledged("dutygw-page-99-1", "1", None, run.at(1)))
    run.feed(OriginateResult("nope", 4, "x", run.at(1)))
    assert run.escalation == before


def test_people_without_a_number_are_skipped() -> None:
    _esc, actions = open_escalation(1, [1], (Person("带班领导", "", ""),) + CHAIN, NIGHT, RULES)
    assert [a.number for a in actions if isinstance(a, PlaceCall)] == ["13700003333"]


def test_an_empty_chain_is_exhausted_at_once() -> None:
    esc, actions = open_escalation(1, [1], (), NIGHT, RULES)
    assert esc.state == "exhausted" and isinstance(actions[0], CloseEscalation)


def _escalation(id_: int, state: str, opened: datetime, receipts: tuple[int, ...]) -> Escalation:
    return Escalation(id_, opened, opened + RULES.deadline, CHAIN, receipts, state=EscalationState(state))


ROUTES = [
    ("nothing before", [], 5, 0, ("open", None, None)),
    ("open escalation", [("open", 0, (1,))], 5, 60, ("join", 1, None)),
    ("already paged", [("acknowledged", 0, (5,))], 5, 60, ("ignore", None, None)),
    ("burst after ack", [("acknowledged", 0, (1,))], 5, 100, ("open", None, 180)),
    ("after the window", [("acknowledged", 0, (1,))], 5, 200, ("open", None, None)),
    ("exhausted is not a reason to wait", [("exhausted", 0, (1,))], 5, 100, ("open", None, None)),
]


@pytest.mark.parametrize(("why", "existing", "receipt", "after", "expected"), ROUTES, ids=[r[0] for r in ROUTES])
def test_route_receipt(why: str, existing: list, receipt: int, after: int, expected: tuple) -> None:
    escalations = [_escalation(i + 1, s, NIGHT + timedelta(seconds=o), r) for i, (s, o, r) in enumerate(existing)]
    route = route_receipt(escalations, receipt, NIGHT + timedelta(seconds=after), RULES)
    kind, join, wait = expected
    assert (route.kind, route.join) == (kind, join)
    assert route.not_before == (None if wait is None else NIGHT + timedelta(seconds=wait))


def test_a_deferred_escalation_waits_for_the_window() -> None:
    later = NIGHT + timedelta(seconds=100)
    esc, actions = open_escalation(2, [5, 6], CHAIN, later, RULES, not_before=NIGHT + timedelta(seconds=180))
    assert actions == []
    assert next_wakeup(esc, RULES) == NIGHT + timedelta(seconds=180)
    _, actions = handle(esc, Tick(NIGHT + timedelta(seconds=180)), RULES)
    assert [(a.number, a.receipt_ids) for a in actions if isinstance(a, PlaceCall)] == [("13700003333", (5, 6))]


# -- a call that cannot be placed -------------------------------------------------------------


def test_a_call_that_cannot_be_placed_stays_planned_and_falls_back_at_once() -> None:
    escalation, actions = open_escalation(1, [101], CHAIN, NIGHT, RULES)
    (call,) = actions
    assert isinstance(call, PlaceCall)
    retry = NIGHT + timedelta(seconds=30)
    escalation, actions = handle(escalation, PlaceFailed(call.key, NIGHT, "Originate refused: Permission denied",
                                                         retry), RULES)
    assert actions == [FallBack(1, (101,), "Originate refused: Permission denied", NIGHT)]
    (attempt,) = escalation.attempts
    assert (attempt.result, attempt.due_at, attempt.detail) == ("planned", retry,
                                                                "Originate refused: Permission denied")
    assert escalation.fallback_at == NIGHT and escalation.is_open
    escalation, actions = handle(escalation, Tick(NIGHT + timedelta(seconds=29)), RULES)
    assert actions == [], "not before retry_at"
    escalation, actions = handle(escalation, Tick(retry), RULES)
    assert [type(a) for a in actions] == [PlaceCall] and actions[0].key == call.key  # type: ignore[union-attr]
    escalation, actions = handle(escalation, PlaceFailed(call.key, retry, "AMI down", retry), RULES)
    assert escalation.fallback_at == NIGHT, "the first fallback's time is kept"
    assert [type(a) for a in actions] == [FallBack]
    escalation, _ = handle(escalation, Tick(NIGHT + timedelta(minutes=11)), RULES)
    assert escalation.is_open and escalation.deadline_met is False
    assert [a.result for a in escalation.attempts] == ["planned"], "still to be placed, never dropped"


def test_place_failed_is_ignored_for_a_call_already_sent() -> None:
    run = Run()
    key = run.calls[0].key
    before = run.escalation
    run.feed(PlaceFailed(key, NIGHT, "late", NIGHT))
    assert run.escalation == before


# -- the leader on duty steps in (人工停止, 立即呼叫) -------------------------------------------


@pytest.mark.parametrize("moment", ["ringing", "answered", "waiting_for_retry"])
def test_stop_closes_the_escalation_and_nobody_is_called_again(moment: str) -> None:
    run = Run()
    if moment == "answered":
        run.feed(OriginateResult(run.last.key, 4, "PJSIP/trunk-1", run.at(5)))
    elif moment == "waiting_for_retry":
        run.outcome("no_answer")
    stopped_at = run.at(2)
    run.feed(Stopped("zhaoling", "已电话联系王局长本人", stopped_at))
    esc = run.escalation
    assert (esc.state, esc.stopped_by, esc.stop_reason, esc.closed_at) == (
        "stopped", "zhaoling", "已电话联系王局长本人", stopped_at)
    assert esc.acknowledged_at is None and esc.acknowledged_by is None, "a stop is not an acknowledgement"
    assert not any(a.active for a in esc.attempts), "the attempt under way ends as stopped"
    assert esc.attempts[-1].result == "stopped" and esc.attempts[-1].ended_at == stopped_at
    close = run.log[-1]
    assert isinstance(close, CloseEscalation) and close.state == "stopped"
    calls = len(run.calls)
    run.feed(OriginateResult(esc.attempts[0].key, 3, "PJSIP/x@trunk", run.at(30)))  # a late result
    for _ in range(20):
        run.feed(Tick(run.at(60)))
    assert len(run.calls) == calls and run.escalation == esc, "a stopped escalation never calls again"
    assert next_wakeup(run.escalation, RULES) is None


def test_stop_of_a_closed_escalation_changes_nothing() -> None:
    run = Run()
    run.outcome("ack")
    before = run.escalation
    run.feed(Stopped("zhaoling", "误操作", run.at(5)))
    assert run.escalation == before and run.escalation.state == "acknowledged"


def test_page_now_places_the_retry_at_once_instead_of_after_the_interval() -> None:
    run = Run()
    run.outcome("no_answer")  # at +30 s; the retry is due at +60 s
    assert len(run.calls) == 1
    asked_at = run.at(5)
    run.feed(PageNow("zhaoling", asked_at))
    assert [c.number for c in run.calls] == ["13700003333", "13700003333"]
    retry = run.escalation.attempts[1]
    assert (retry.sent_at, retry.step, retry.try_no) == (asked_at, 0, 1), "the current step, its next try"
    assert retry.detail == "page now by zhaoling"
    run.outcome("no_answer")
    assert [c.number for c in run.calls][-1] == "13900004444", "the chain goes on as before"


def test_page_now_while_a_call_rings_places_no_second_call() -> None:
    run = Run()
    assert page_now_blocker(run.escalation) == "call_in_progress"
    before = run.escalation
    run.feed(PageNow("zhaoling", run.at(3)))
    assert len(run.calls) == 1 and run.escalation == before, "one call at a time"


def test_page_now_waives_the_coalescing_window_of_a_deferred_escalation() -> None:
    window_end = NIGHT + timedelta(seconds=150)
    esc, actions = open_escalation(2, [102], CHAIN, NIGHT, RULES, not_before=window_end)
    assert actions == [] and page_now_blocker(esc) is None
    esc, actions = handle(esc, PageNow("zhaoling", NIGHT + timedelta(seconds=10)), RULES)
    (call,) = [a for a in actions if isinstance(a, PlaceCall)]
    assert (call.number, call.receipt_ids) == ("13700003333", (102,))
    assert esc.not_before is None


def test_page_now_on_a_closed_escalation_is_refused() -> None:
    run = Run()
    run.outcome("ack")
    assert page_now_blocker(run.escalation) == "closed"
    before = run.escalation
    run.feed(PageNow("zhaoling", run.at(5)))
    assert run.escalation == before and len(run.calls) == 1
