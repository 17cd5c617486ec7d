"""The report's figures and layout from plain rows: membership, grouping, handover, hiding."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from gateway.clock import SHANGHAI, UTC
from gateway.report.figures import (
    CallRow,
    GapRow,
    PageRow,
    ReceiptRow,
    ShiftInfo,
    UnsentReport,
    compute,
    gap_of,
    summary,
)
from gateway.report.layout import HIDDEN, Style, document


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI).astimezone(UTC)


DAY = ShiftInfo("2026-11-21/day", date(2026, 11, 21), "day", "白班", at(21, 8), at(21, 19))
NIGHT = ShiftInfo("2026-11-21/night", date(2026, 11, 21), "night", "夜班", at(21, 19), at(22, 8))


def answered(when: datetime, rings: int, caller: str = "13800001111") -> CallRow:
    return CallRow("in", caller, when, "answered", rings=rings, rule_met=rings <= 3, answered_by="8001",
                   answered_at=when + timedelta(seconds=5 * rings - 2))


def missed(when: datetime, caller: str, outcome: str = "missed_abandoned", **extra: object) -> CallRow:
    return CallRow("in", caller, when, outcome, rings=2, **extra)  # type: ignore[arg-type]


def test_a_call_belongs_to_the_shift_it_rang_in() -> None:
    call = answered(at(21, 18, 59, 58), rings=2)  # answered at 19:00:06
    assert call.answered_at is not None and call.answered_at >= NIGHT.start
    assert compute(DAY, [call], [], []).calls_in == 1
    assert compute(NIGHT, [call], [], []).calls_in == 0


def test_receipts_and_pages_by_their_own_instants() -> None:
    last_of_day = ReceiptRow("传真〔2026〕0001号", at(21, 18, 59, 59), "甲", None, "t", None, None, False, 1, "filed")
    first_of_night = ReceiptRow("传真〔2026〕0002号", at(21, 19), "乙", None, "t", None, None, False, 1, "filed")
    page = PageRow(at(21, 19, 0, 30), at(21, 19, 10, 30), ("传真〔2026〕0002号",), "open", None, None, None)
    night = compute(NIGHT, [], [last_of_day, first_of_night], [page])
    assert [r.receipt_no for r in night.faxes] == ["传真〔2026〕0002号"]
    assert len(night.pages) == 1 and compute(DAY, [], [], [page]).pages == ()


COUNT_CASES = [
    # outcomes of inbound calls → (calls_in, answered, rule_met, late, missed)
    (["answered:1", "answered:3", "answered:4"], (3, 3, 2, 1, 0)),
    (["missed_abandoned", "missed_no_answer", "missed_busy", "failed"], (4, 0, 0, 0, 4)),
    (["answered:2", "unknown", "fax"], (2, 1, 1, 0, 0)),
]


@pytest.mark.parametrize(("outcomes", "expected"), COUNT_CASES)
def test_counts(outcomes: list[str], expected: tuple[int, ...]) -> None:
    calls = []
    for minute, text in enumerate(outcomes):
        outcome, _, rings = text.partition(":")
        when = at(21, 20, minute)
        calls.append(answered(when, int(rings)) if rings else missed(when, f"1390000{minute:04d}", outcome))
    f = compute(NIGHT, calls, [], [])
    assert (f.calls_in, f.answered, f.rule_met, len(f.late), f.missed_calls) == expected
    assert sum(a + m for _, a, m in f.hourly) == f.answered + f.missed_calls
    assert sum(n for _, n in f.rings) == f.answered


def test_every_minute_of_an_odd_shift_has_its_hour_slot() -> None:
    odd = ShiftInfo("2026-11-21/day", date(2026, 11, 21), "day", "白班", at(21, 8, 30), at(21, 19))
    late = answered(at(21, 18, 59, 59), rings=1)
    f = compute(odd, [answered(at(21, 8, 30), rings=1), late], [], [])
    assert len(f.hourly) == 11 and f.hourly[0][1] == 1 and f.hourly[-1] == (at(21, 18, 30), 1, 0)


def test_repeated_missed_calls_are_grouped_but_withheld_ones_never() -> None:
    calls = [
        missed(at(21, 22), "13911112222"),
        missed(at(21, 22, 5), "13911112222", "missed_no_answer"),
        CallRow("in", "anonymous", at(21, 23), "missed_abandoned", caller_withheld=True),
        CallRow("in", "anonymous", at(21, 23, 5), "missed_abandoned", caller_withheld=True),
    ]
    f = compute(NIGHT, calls, [], [])
    assert [len(g.calls) for g in f.missed] == [2, 1, 1]
    assert f.missed_calls == 4 and len(f.missed_open) == 4


def test_open_items_are_judged_as_of_the_end_of_the_shift() -> None:
    closed_in_shift = missed(at(21, 22), "13911112222", called_back_at=at(21, 22, 30), called_back_by="8001",
                             callback_connected=True, closed_at=at(21, 22, 30))
    closed_next_morning = missed(at(22, 7), "13500003333", called_back_at=at(22, 9), closed_at=at(22, 9))
    tried_only = missed(at(21, 23), "13500005555", called_back_at=at(21, 23, 10), callback_connected=False)
    signed_late = ReceiptRow("传真〔2026〕0003号", at(21, 21), "甲", None, "t", "特急", None, True, 2, "signed",
                             "赵六", at(22, 8, 30))
    acked_late = PageRow(at(21, 21, 1), at(21, 21, 11), ("传真〔2026〕0003号",), "acknowledged",
                         at(22, 8, 5), "王局长", False)
    f = compute(NIGHT, [closed_in_shift, closed_next_morning, tried_only], [signed_late], [acked_late])
    assert [c.caller for c in f.missed_open] == ["13500005555", "13500003333"]
    assert f.unsigned_faxes == (signed_late,)
    assert f.unacknowledged_pages == (acked_late,) and f.pages_acknowledged == 0
    later = compute(NIGHT, [closed_in_shift, closed_next_morning], [signed_late], [acked_late], as_of=at(22, 10))
    assert later.missed_open == () and later.unsigned_faxes == () and later.pages_acknowledged == 1


def test_unknown_calls_point_at_their_listener_gap() -> None:
    lost = GapRow(at(22, 4, 0, 10), at(22, 4, 0, 11), "restart")
    earlier = GapRow(at(21, 20), at(21, 20, 1), "network")
    call = CallRow("in", "13800001111", at(22, 4), "unknown")
    f = compute(NIGHT, [call], [], [], [earlier, lost, GapRow(at(22, 9), None)])
    assert f.unknown == (call,) and f.gaps == (earlier, lost)
    assert gap_of(call, f.gaps) == lost


def test_summary_has_every_headline_figure() -> None:
    f = compute(NIGHT, [answered(at(21, 20), 2), missed(at(21, 21), "13911112222")], [], [],
                unsent_reports=[UnsentReport("2026-11-20/night", at(21, 8), "pending", "relay down")])
    figures = summary(f, SHANGHAI)
    for key in ("shift", "start", "end", "calls_in", "answered", "rule_met", "late", "missed", "missed_open",
                "outbound", "unknown", "faxes", "urgent_faxes", "pages", "pages_acknowledged", "deadline_met"):
        assert key in figures
    assert figures["start"] == "2026-11-21T19:00:00+08:00"
    assert (figures["calls_in"], figures["missed"], figures["missed_open"]) == (2, 1, 1)
    assert figures["unsent_reports"] == ["2026-11-20/night"]


@pytest.mark.parametrize(("hidden", "shown"), [
    (frozenset({"title"}), ("机密单位", "机密文号")),
    (frozenset({"title", "issuer", "doc_number"}), ()),
])
def test_a_classified_receipt_never_shows_its_hidden_fields(hidden: frozenset[str], shown: tuple[str, ...]) -> None:
    secret = ReceiptRow("传真〔2026〕0004号", at(21, 21), "机密单位", "机密文号", "机密标题", "特急", "机密", True, 2, "filed")
    plain = ReceiptRow("传真〔2026〕0005号", at(21, 22), "普通单位", "普通文号", "普通标题", None, None, False, 1, "filed")
    doc = document(compute(NIGHT, [], [secret, plain], []), Style(SHANGHAI, hidden))
    cells = [cell for s in doc.sections for t in s.tables for row in t.rows for cell in row]
    assert "机密标题" not in cells and HIDDEN in cells
    assert {"普通单位", "普通文号", "普通标题"} <= set(cells)
    assert {"机密单位", "机密文号"} & set(cells) == set(shown)


def test_a_receipt_marked_not_secret_is_shown_in_full() -> None:
    open_mark = ReceiptRow("传真〔2026〕0006号", at(21, 21), "单位", "文号", "公开标题", None, "非密", False, 1, "filed")
    doc = document(compute(NIGHT, [], [open_mark], []), Style(SHANGHAI))
    assert "公开标题" in [cell for s in doc.sections for t in s.tables for row in t.rows for cell in row]
