"""The escalation engine: who to ring next, and when an escalation is over. Pure.

Fed one event and the time at a time, it returns the new (immutable) state of one
escalation and the actions the I/O layer must carry out. Nothing here reads a clock,
a socket or the database, so every rule is a table-driven test.

The rules, as the duty room runs them:

* one call at a time; each person of the chain is tried ``attempts_per_person`` times,
  ``attempt_interval_seconds`` apart (counted from the start of the previous try), then
  the next person is called at once; the whole chain may be run ``chain_rounds`` times;
* busy, unreachable, no answer, and answered without pressing 1 are all failed attempts;
* pressing 1 acknowledges every receipt the escalation carries and closes it; the
  deadline (``deadline_minutes`` after opening) is met if that happened in time;
* urgent receipts arriving while an escalation is open join it and are announced on its
  next call; once an escalation is acknowledged, receipts that arrive within
  ``coalesce_seconds`` of its opening start a new one whose first call waits for the end
  of that window, so a burst of faxes rings a leader at most twice, not once per fax;
* a call whose result never came (the gateway restarted meanwhile) counts as no answer
  once the ring timeout plus a margin has passed; nobody is rung twice for one attempt;
* a call that cannot be placed at all (AMI down, ``Originate`` refused) is the PBX's
  fault, not the callee's: the attempt stays planned and is tried again, and the first
  such failure of an escalation mails the secretariat at once (``FallBack``), so an
  urgent fax is never left with nobody told;
* the leader on duty may step in from the console: ``Stopped`` closes the escalation as
  ``stopped`` (who and why kept; a call in progress is left to end, nobody else is rung),
  and ``PageNow`` places the planned call at once instead of at its retry time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gateway.config import PagingConfig
from storage.states import AttemptResult, EscalationState

# ---------------------------------------------------------------------------- values

ACTIVE = frozenset({AttemptResult.PLANNED, AttemptResult.SENT, AttemptResult.ANSWERED})
"""Attempt results that mean the attempt is not over yet."""

ORIGINATE_REASONS = {
    0: AttemptResult.FAILED,  # no such number, congestion, and (on Asterisk 22) a busy callee
    1: AttemptResult.FAILED,  # hung up before answer
    3: AttemptResult.NO_ANSWER,  # rang until Timeout
    4: AttemptResult.ANSWERED,
    5: AttemptResult.BUSY,
    8: AttemptResult.FAILED,  # congestion
}


@dataclass(frozen=True)
class Person:
    role: str
    name: str
    number: str


@dataclass(frozen=True)
class Rules:
    """The numbers of ``[paging]`` the engine needs, as timedeltas."""

    attempts_per_person: int = 2
    attempt_interval: timedelta = timedelta(seconds=60)
    ring_timeout: timedelta = timedelta(seconds=30)
    chain_rounds: int = 2
    deadline: timedelta = timedelta(minutes=10)
    coalesce: timedelta = timedelta(seconds=180)
    result_margin: timedelta = timedelta(seconds=30)
    """How long after the ring timeout a missing OriginateResponse is taken as no answer."""
    max_call: timedelta = timedelta(minutes=3)
    """How long an answered call may last before it is taken as ended without a 1."""

    @classmethod
    def from_config(cls, config: PagingConfig) -> Rules:
        return cls(
            attempts_per_person=max(1, config.attempts_per_person),
            attempt_interval=timedelta(seconds=config.attempt_interval_seconds),
            ring_timeout=timedelta(seconds=config.ring_timeout_seconds),
            chain_rounds=max(1, config.chain_rounds),
            deadline=timedelta(minutes=config.deadline_minutes),
            coalesce=timedelta(seconds=config.coalesce_seconds),
            result_margin=timedelta(seconds=config.result_margin_seconds),
            max_call=timedelta(seconds=config.max_call_seconds),
        )


@dataclass(frozen=True)
class Attempt:
    """One call to one person; ``key`` is its ActionID and the PAGE_ID the dialplan reports."""

    key: str
    step: int
    round: int
    try_no: int
    person: Person
    planned_at: datetime
    due_at: datetime
    receipt_ids: tuple[int, ...] = ()
    """The receipts this call announces (fixed when it is placed)."""
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    result: AttemptResult = AttemptResult.PLANNED
    """planned → sent → answered → acknowledged | not_acknowledged; or no_answer | busy | failed."""
    channel: str | None = None
    detail: str | None = None
    page_token: str | None = None
    """The unguessable PAGE_ID the call carries (made by the pager, not here: the engine is pure)."""

    @property
    def active(self) -> bool:
        return self.result in ACTIVE


@dataclass(frozen=True)
class Escalation:
    id: int
    opened_at: datetime
    deadline_at: datetime
    chain: tuple[Person, ...]
    receipt_ids: tuple[int, ...]
    attempts: tuple[Attempt, ...] = ()
    state: EscalationState = EscalationState.OPEN
    """open → acknowledged | exhausted | stopped (人工停止)."""
    not_before: datetime | None = None
    """No call before this instant (the coalescing window of an earlier escalation)."""
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_number: str | None = None
    deadline_met: bool | None = None
    closed_at: datetime | None = None
    fallback_at: datetime | None = None
    """When the secretariat was mailed because the chain could not be placed."""
    stopped_by: str | None = None
    stop_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state == EscalationState.OPEN

    def attempt(self, key: str) -> Attempt | None:
        return next((a for a in self.attempts if a.key == key), None)


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True)
class UrgentReceipt:
    receipt_id: int
    at: datetime


@dataclass(frozen=True)
class OriginateSent:
    """The Originate for ``key`` left the gateway (its row was committed before)."""

    key: str
    at: datetime


@dataclass(frozen=True)
class OriginateResult:
    """The PBX's answer: ``Response: Error`` to the action (reason None) or OriginateResponse."""

    key: str
    reason: int | None
    channel: str | None
    at: datetime
    detail: str | None = None


@dataclass(frozen=True)
class DialEnded:
    """A ``DialEnd`` on the originated channel; only BUSY and the like matter here."""

    key: str
    status: str
    at: datetime


@dataclass(frozen=True)
class CallEnded:
    """The answered channel hung up."""

    key: str
    at: datetime


@dataclass(frozen=True)
class Acknowledged:
    """A ``PageAck``: ``digit`` is what was pressed in one round ("" for none)."""

    page_id: str
    digit: str
    number: str | None
    at: datetime


@dataclass(frozen=True)
class PlaceFailed:
    """The call for ``key`` could not be placed (AMI down, ``Response: Error``); try at ``retry_at``."""

    key: str
    at: datetime
    detail: str
    retry_at: datetime


@dataclass(frozen=True)
class Tick:
    now: datetime


@dataclass(frozen=True)
class Stopped:
    """The leader on duty stopped the paging from the console (人工停止)."""

    by: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class PageNow:
    """The leader on duty asked for a call now: the planned attempt is placed at once."""

    by: str
    at: datetime


Event = (UrgentReceipt | OriginateSent | OriginateResult | DialEnded | CallEnded | Acknowledged | PlaceFailed
         | Tick | Stopped | PageNow)

# ---------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class PlaceCall:
    escalation_id: int
    key: str
    number: str
    role: str
    name: str
    receipt_ids: tuple[int, ...]


@dataclass(frozen=True)
class RecordAttemptResult:
    escalation_id: int
    key: str
    result: AttemptResult
    at: datetime


@dataclass(frozen=True)
class CloseEscalation:
    escalation_id: int
    state: EscalationState
    deadline_met: bool
    at: datetime
    acknowledged_by: str | None = None


@dataclass(frozen=True)
class FallBack:
    """Mail the secretariat now: the chain cannot be placed (the calls keep being retried)."""

    escalation_id: int
    receipt_ids: tuple[int, ...]
    detail: str
    at: datetime


Action = PlaceCall | RecordAttemptResult | CloseEscalation | FallBack
Step = tuple[Escalation, list[Action]]

# ---------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    """Where a new urgent receipt goes: into ``join`` (an open escalation) or a new one."""

    kind: Literal["join", "open", "ignore"]
    join: int | None = None
    not_before: datetime | None = None
    reason: str = ""


def route_receipt(escalations: Sequence[Escalation], receipt_id: int, at: datetime, rules: Rules) -> Route:
    """Decide where an urgent receipt belongs, given the recent escalations (any state)."""
    if any(receipt_id in e.receipt_ids for e in escalations):
        return Route("ignore", reason="receipt already paged")
    open_ones = [e for e in escalations if e.is_open]
    if open_ones:
        latest = max(open_ones, key=lambda e: e.opened_at)
        return Route("join", join=latest.id, reason="joins the escalation in progress")
    recent = [e for e in escalations if e.state == EscalationState.ACKNOWLEDGED and at < e.opened_at + rules.coalesce]
    if recent:
        window_end = max(e.opened_at for e in recent) + rules.coalesce
        return Route("open", not_before=window_end, reason="burst after an acknowledged page: wait for the window")
    return Route("open", reason="first urgent receipt")


def open_escalation(escalation_id: int, receipt_ids: Iterable[int], chain: Sequence[Person], at: datetime,
                    rules: Rules, not_before: datetime | None = None) -> Step:
    """A new escalation; its first call is planned at once (or at ``not_before``)."""
    people = tuple(p for p in chain if p.number)
    escalation = Escalation(
        id=escalation_id,
        opened_at=at,
        deadline_at=at + rules.deadline,
        chain=people,
        receipt_ids=tuple(dict.fromkeys(receipt_ids)),
        not_before=not_before,
    )
    return _advance(escalation, at, rules)


def resume(escalation: Escalation, now: datetime, rules: Rules) -> Step:
    """After a restart: calls planned but never sent are sent; lost results time out."""
    return _advance(escalation, now, rules)


# ---------------------------------------------------------------------------- the engine


def handle(escalation: Escalation, event: Event, rules: Rules) -> Step:
    """Apply one event; closed escalations ignore everything."""
    if not escalation.is_open:
        return escalation, []
    if isinstance(event, Tick):
        return _advance(escalation, event.now, rules)
    if isinstance(event, UrgentReceipt):
        return _join(escalation, event), []
    if isinstance(event, Acknowledged):
        return _acknowledge(escalation, event, rules)
    if isinstance(event, PlaceFailed):
        return _place_failed(escalation, event)
    if isinstance(event, Stopped):
        return _stop(escalation, event)
    if isinstance(event, PageNow):
        return _page_now(escalation, event, rules)
    attempt = escalation.attempt(event.key)
    if attempt is None or not attempt.active:
        return escalation, []
    updated, result = _attempt_event(attempt, event)
    escalation = _replace_attempt(escalation, updated)
    actions: list[Action] = []
    if result is not None:
        actions.append(RecordAttemptResult(escalation.id, attempt.key, result, event.at))
        escalation, more = _advance(escalation, event.at, rules)
        actions += more
    return escalation, actions


def _place_failed(escalation: Escalation, event: PlaceFailed) -> Step:
    """The attempt stays planned, due again at ``retry_at``, and the secretariat is told.

    ``FallBack`` comes with every failure; the notice is keyed by the escalation and its
    receipts, so it is mailed once per set of receipts however often the placing fails.
    """
    attempt = escalation.attempt(event.key)
    if attempt is None or attempt.result != AttemptResult.PLANNED:
        return escalation, []
    retried = dataclasses.replace(attempt, due_at=max(attempt.due_at, event.retry_at), detail=event.detail)
    escalation = _replace_attempt(escalation, retried)
    if escalation.fallback_at is None:
        escalation = dataclasses.replace(escalation, fallback_at=event.at)
    return escalation, [FallBack(escalation.id, escalation.receipt_ids, event.detail, event.at)]


def _stop(escalation: Escalation, event: Stopped) -> Step:
    """Closed as ``stopped``: the attempt under way ends ``stopped`` (its late results are
    ignored, as for any closed escalation) and no further call is planned."""
    actions: list[Action] = []
    for attempt in escalation.attempts:
        if attempt.active:
            detail = f"stopped by {event.by}"
            stopped = AttemptResult.STOPPED
            escalation = _replace_attempt(escalation, _ended(attempt, stopped, event.at, detail))
            actions.append(RecordAttemptResult(escalation.id, attempt.key, stopped, event.at))
    closed = dataclasses.replace(escalation, state=EscalationState.STOPPED, closed_at=event.at,
                                 stopped_by=event.by, stop_reason=event.reason)
    actions.append(CloseEscalation(escalation.id, EscalationState.STOPPED, bool(escalation.deadline_met),
                                   event.at))
    return closed, actions


def page_now_blocker(escalation: Escalation) -> str | None:
    """Why ``PageNow`` cannot place a call now (a call is ringing or answered), or None."""
    if not escalation.is_open:
        return "closed"
    current = next((a for a in escalation.attempts if a.active), None)
    if current is not None and current.result != "planned":
        return "call_in_progress"
    return None


def _page_now(escalation: Escalation, event: PageNow, rules: Rules) -> Step:
    """The planned call becomes due now (the coalescing window and the retry interval are
    waived: the leader decided); one call at a time still holds."""
    if page_now_blocker(escalation) is not None:
        return escalation, []
    escalation = dataclasses.replace(escalation, not_before=None)
    current = next((a for a in escalation.attempts if a.active), None)
    if current is not None:
        asked = dataclasses.replace(current, due_at=min(current.due_at, event.at), detail=f"page now by {event.by}")
        escalation = _replace_attempt(escalation, asked)
    return _advance(escalation, event.at, rules)


def _join(escalation: Escalation, event: UrgentReceipt) -> Escalation:
    if event.receipt_id in escalation.receipt_ids:
        return escalation
    return dataclasses.replace(escalation, receipt_ids=escalation.receipt_ids + (event.receipt_id,))


def _attempt_event(attempt: Attempt, event: Event) -> tuple[Attempt, AttemptResult | None]:
    """The attempt after ``event``, and its final result if the event ended it."""
    if isinstance(event, OriginateSent):
        if attempt.result != AttemptResult.PLANNED:  # the PBX's answer overtook our own bookkeeping
            return dataclasses.replace(attempt, sent_at=attempt.sent_at or event.at), None
        return dataclasses.replace(attempt, result=AttemptResult.SENT, sent_at=event.at), None
    if isinstance(event, OriginateResult):
        return _originate_result(attempt, event)
    if isinstance(event, DialEnded):
        if event.status in ("BUSY", "CONGESTION", "CHANUNAVAIL"):
            result = AttemptResult.BUSY if event.status == "BUSY" else AttemptResult.FAILED
            return _ended(attempt, result, event.at, f"DialEnd {event.status}"), result
        return attempt, None
    if isinstance(event, CallEnded) and attempt.result == AttemptResult.ANSWERED:
        result = AttemptResult.NOT_ACKNOWLEDGED
        return _ended(attempt, result, event.at, "hung up without pressing 1"), result
    return attempt, None


def _originate_result(attempt: Attempt, event: OriginateResult) -> tuple[Attempt, AttemptResult | None]:
    channel = event.channel if event.channel and "@" not in event.channel else attempt.channel
    if event.reason == 4:
        return dataclasses.replace(attempt, result=AttemptResult.ANSWERED, answered_at=event.at, channel=channel), None
    result = ORIGINATE_REASONS.get(event.reason, AttemptResult.FAILED) if event.reason is not None else AttemptResult.FAILED
    detail = event.detail or (f"OriginateResponse Reason {event.reason}" if event.reason is not None else None)
    return _ended(dataclasses.replace(attempt, channel=channel), result, event.at, detail), result


def _ended(attempt: Attempt, result: AttemptResult, at: datetime, detail: str | None) -> Attempt:
    return dataclasses.replace(attempt, result=result, ended_at=at, detail=detail or attempt.detail)


def _acknowledge(escalation: Escalation, event: Acknowledged, rules: Rules) -> Step:
    attempt = escalation.attempt(event.page_id)
    if attempt is None or event.digit != "1":
        return escalation, []
    done = _ended(attempt, AttemptResult.ACKNOWLEDGED, event.at, "pressed 1")
    if done.answered_at is None:
        done = dataclasses.replace(done, answered_at=event.at)
    met = event.at <= escalation.deadline_at
    closed = dataclasses.replace(
        _replace_attempt(escalation, done),
        state=EscalationState.ACKNOWLEDGED,
        acknowledged_at=event.at,
        acknowledged_by=attempt.person.name or attempt.person.role,
        acknowledged_number=event.number or attempt.person.number,
        deadline_met=met,
        closed_at=event.at,
    )
    return closed, [
        RecordAttemptResult(escalation.id, attempt.key, AttemptResult.ACKNOWLEDGED, event.at),
        CloseEscalation(escalation.id, EscalationState.ACKNOWLEDGED, met, event.at, closed.acknowledged_by),
    ]


def _advance(escalation: Escalation, now: datetime, rules: Rules) -> Step:
    """Time passes: time out lost results, mark a missed deadline, place or plan the next call."""
    actions: list[Action] = []
    escalation, timed_out = _time_out(escalation, now, rules)
    actions += timed_out
    if escalation.deadline_met is None and now > escalation.deadline_at:
        escalation = dataclasses.replace(escalation, deadline_met=False)
    current = next((a for a in escalation.attempts if a.active), None)
    if current is None:
        escalation, current, closing = _plan_next(escalation, now, rules)
        actions += closing
    if current is not None and current.result == AttemptResult.PLANNED and current.due_at <= now:
        current = dataclasses.replace(current, receipt_ids=escalation.receipt_ids)  # what this call announces
        escalation = _replace_attempt(escalation, current)
        actions.append(PlaceCall(escalation.id, current.key, current.person.number, current.person.role,
                                 current.person.name, current.receipt_ids))
    return escalation, actions


def _time_out(escalation: Escalation, now: datetime, rules: Rules) -> Step:
    actions: list[Action] = []
    for attempt in escalation.attempts:
        result = _overdue(attempt, now, rules)
        if result is not None:
            escalation = _replace_attempt(escalation, _ended(attempt, result, now, "no result from the PBX in time"))
            actions.append(RecordAttemptResult(escalation.id, attempt.key, result, now))
    return escalation, actions


def _overdue(attempt: Attempt, now: datetime, rules: Rules) -> AttemptResult | None:
    if attempt.result == AttemptResult.SENT and attempt.sent_at and now >= attempt.sent_at + rules.ring_timeout + rules.result_margin:
        return AttemptResult.NO_ANSWER
    if attempt.result == AttemptResult.ANSWERED and attempt.answered_at and now >= attempt.answered_at + rules.max_call:
        return AttemptResult.NOT_ACKNOWLEDGED
    return None


def _plan_next(escalation: Escalation, now: datetime, rules: Rules) -> tuple[Escalation, Attempt | None, list[Action]]:
    position = _next_position(escalation, rules)
    if position is None:
        met = False
        closed = dataclasses.replace(escalation, state=EscalationState.EXHAUSTED, deadline_met=met, closed_at=now)
        return closed, None, [CloseEscalation(escalation.id, EscalationState.EXHAUSTED, met, now)]
    step, round_no, try_no = position
    attempt = Attempt(
        key=f"dutygw-page-{escalation.id}-{len(escalation.attempts) + 1}",
        step=step,
        round=round_no,
        try_no=try_no,
        person=escalation.chain[step],
        planned_at=now,
        due_at=max(now, _earliest(escalation, try_no, rules)),
    )
    return dataclasses.replace(escalation, attempts=escalation.attempts + (attempt,)), attempt, []


def _next_position(escalation: Escalation, rules: Rules) -> tuple[int, int, int] | None:
    """(step, round, try) of the next call, or None when the chain is used up."""
    if not escalation.chain:
        return None
    if not escalation.attempts:
        return 0, 0, 0
    last = escalation.attempts[-1]
    if last.try_no + 1 < rules.attempts_per_person:
        return last.step, last.round, last.try_no + 1
    if last.step + 1 < len(escalation.chain):
        return last.step + 1, last.round, 0
    if last.round + 1 < rules.chain_rounds:
        return 0, last.round + 1, 0
    return None


def _earliest(escalation: Escalation, try_no: int, rules: Rules) -> datetime:
    """A retry of the same person waits the interval; a new person is called at once."""
    floor = escalation.not_before or escalation.opened_at
    if try_no == 0 or not escalation.attempts:
        return floor
    last = escalation.attempts[-1]
    started = last.sent_at or last.planned_at
    return max(floor, started + rules.attempt_interval)


def with_page_token(escalation: Escalation, key: str, token: str) -> Escalation:
    """The escalation with ``token`` given to attempt ``key`` (the pager makes tokens; a set one stays)."""
    attempt = escalation.attempt(key)
    if attempt is None or attempt.page_token:
        return escalation
    return _replace_attempt(escalation, dataclasses.replace(attempt, page_token=token))


def _replace_attempt(escalation: Escalation, attempt: Attempt) -> Escalation:
    attempts = tuple(attempt if a.key == attempt.key else a for a in escalation.attempts)
    return dataclasses.replace(escalation, attempts=attempts)


def next_wakeup(escalation: Escalation, rules: Rules) -> datetime | None:
    """When a ``Tick`` could next change this escalation (for the service's timer)."""
    if not escalation.is_open:
        return None
    times = [escalation.deadline_at] if escalation.deadline_met is None else []
    for attempt in escalation.attempts:
        if attempt.result == AttemptResult.PLANNED:
            times.append(attempt.due_at)
        elif attempt.result == AttemptResult.SENT and attempt.sent_at:
            times.append(attempt.sent_at + rules.ring_timeout + rules.result_margin)
        elif attempt.result == AttemptResult.ANSWERED and attempt.answered_at:
            times.append(attempt.answered_at + rules.max_call)
    return min(times) if times else None
