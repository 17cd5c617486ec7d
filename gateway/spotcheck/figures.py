"""The 情况通报's figures: pure functions of the stored checks.

Every finished check falls in exactly one category: answered within the ring rule, answered
late, answered without the key (not a person), not answered, busy (after every retry),
unreachable, unknown. A unit passes a check only in the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

CATEGORIES = ("within", "late", "no_key", "no_answer", "busy", "unreachable", "unknown")


def labels(within_rings: int) -> dict[str, str]:
    """What staff read for each category."""
    return {"within": f"{within_rings}声内接听", "late": f"超过{within_rings}声接听", "no_key": "接听未按键",
            "no_answer": "无人接听", "busy": "占线", "unreachable": "无法接通", "unknown": "结果不明"}


@dataclass(frozen=True)
class TryRow:
    try_no: int
    sent_at: datetime
    outcome: str | None
    rings: int | None


@dataclass(frozen=True)
class CheckRow:
    id: int
    unit_name: str
    group_name: str
    number: str
    drawn_at: datetime
    due_at: datetime
    moves: int
    state: str
    outcome: str | None
    tries: int
    answered_at: datetime | None
    ended_at: datetime | None
    ring_seconds: float | None
    rings: int | None
    rule_met: bool | None
    digit: str | None
    recording: str | None
    attempts: tuple[TryRow, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def category(self) -> str | None:
        if self.state != "done" or self.outcome is None:
            return None
        if self.outcome == "answered":
            return "within" if self.rule_met else "late"
        return self.outcome

    @property
    def called_at(self) -> datetime:
        """When the (last) call went out, else when it was due."""
        return self.attempts[-1].sent_at if self.attempts else self.due_at


@dataclass(frozen=True)
class Tally:
    counts: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, rows: Iterable[CheckRow]) -> Tally:
        counts = dict.fromkeys(CATEGORIES, 0)
        for row in rows:
            if row.category is not None:
                counts[row.category] += 1
        return cls(tuple(counts.items()))

    def __getitem__(self, category: str) -> int:
        return dict(self.counts)[category]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    @property
    def passed_percent(self) -> float | None:
        return None if not self.total else round(100.0 * self["within"] / self.total, 1)


@dataclass(frozen=True)
class SpotFigures:
    plan_id: int
    title: str
    first_day: date
    last_day: date
    seed: int
    within_rings: int
    rows: tuple[CheckRow, ...]
    total: Tally
    by_group: tuple[tuple[str, int, Tally], ...]
    """(group, units, tally), in the order groups first appear."""
    by_unit: tuple[tuple[str, str, Tally], ...]
    """(unit, group, tally)."""
    pending: int
    """Checks not finished yet (a report made before the plan's end says so)."""

    @property
    def units(self) -> int:
        return len(self.by_unit)

    @property
    def failed(self) -> tuple[CheckRow, ...]:
        return tuple(r for r in self.rows if r.category not in (None, "within"))


def compute(plan_id: int, title: str, first_day: date, last_day: date, seed: int, within_rings: int,
            rows: Sequence[CheckRow]) -> SpotFigures:
    ordered = tuple(sorted(rows, key=lambda r: (r.called_at, r.id)))
    groups: dict[str, list[CheckRow]] = {}
    units: dict[str, list[CheckRow]] = {}
    for row in ordered:
        groups.setdefault(row.group_name or "未分组", []).append(row)
        units.setdefault(row.unit_name, []).append(row)
    return SpotFigures(
        plan_id, title, first_day, last_day, seed, within_rings, ordered, Tally.of(ordered),
        tuple((g, len({r.unit_name for r in rs}), Tally.of(rs)) for g, rs in groups.items()),
        tuple((u, rs[0].group_name, Tally.of(rs)) for u, rs in sorted(units.items(), key=lambda i: i[1][0].group_name)),
        sum(1 for r in ordered if r.category is None),
    )
