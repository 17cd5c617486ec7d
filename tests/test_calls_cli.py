"""``dutygw calls`` and ``dutygw phonebook import`` through ``gateway.cli.main``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.calls.commands import JSON_FIELDS, display_width, parse_since
from gateway.calls.recorder import CallRecorder
from gateway.cli import main
from gateway.clock import SHANGHAI
from gateway.errors import InputError
from storage.db import open_database
from tests.test_tracker import DUTY, SCENARIOS, expected_calls, track

SHANGHAI_OFFSET = "+08:00"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose database holds every recorded scenario's calls."""
    url = f"sqlite:///{tmp_path / 'calls.sqlite'}"
    path = tmp_path / "dutygw.toml"
    path.write_text(
        "[duty]\n"
        f'numbers = ["{DUTY.numbers[0]}"]\n'
        f"extensions = {json.dumps(DUTY.extensions)}\n"
        f"fax_numbers = {json.dumps(DUTY.fax_numbers)}\n"
        "[database]\n"
        f'url = "{url}"\n'
        "[paths]\n"
        f'data_dir = "{tmp_path}"\n',
        encoding="utf-8",
    )
    db = open_database(url)
    recorder = CallRecorder(db, DUTY)
    for name in sorted(SCENARIOS, key=_first_start):  # in the order they happened
        recorder.apply(track(name))
    db.dispose()
    return path


def _first_start(name: str) -> float:
    return min((c["start"] for c in SCENARIOS[name]["calls"]), default=0.0)


def _json(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    assert main(["--config", str(config), "calls", "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_exactly_the_contract_fields(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _json(config, capsys)
    assert len(calls) == sum(len(expected_calls(n)) for n in SCENARIOS)
    for call in calls:
        assert tuple(call) == JSON_FIELDS
        for field in ("arrived_at", "ended_at"):
            assert isinstance(call[field], str) and call[field].endswith(SHANGHAI_OFFSET)
    arrivals = [datetime.fromisoformat(str(c["arrived_at"])) for c in calls]
    assert arrivals == sorted(arrivals, reverse=True), "newest first"


def test_json_shows_the_real_story(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_caller: dict[str, list[dict[str, Any]]] = {}
    for call in _json(config, capsys):
        by_caller.setdefault(call["caller"], []).append(call)
    (abandoned,) = by_caller["13911112222"]
    assert abandoned["outcome"] == "missed_abandoned" and abandoned["rings"] == 3
    assert abandoned["rule_met"] is False
    assert str(abandoned["called_back_at"]).startswith("2026-11-22T15:33:49")
    (late,) = by_caller["13600002222"]
    assert late["answered_by"] == "8002" and late["rings"] == 5 and late["rule_met"] is False
    (zhang,) = [c for c in by_caller["13800001111"] if c["caller_name"] == "张三"]
    truth = next(c for c in expected_calls("answered_cn_name_chanvars"))
    answered = datetime.fromisoformat(zhang["answered_at"])
    assert zhang["answered_at"].startswith("2026-11-22T15:46:25.")
    assert abs(answered.timestamp() - truth["answer"]) < 0.001, "the fraction is kept, not cut"
    assert zhang["final_party"] == "8001" and zhang["transferred_to"] is None


def test_json_keeps_the_note_that_explains_an_unknown(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = [c for c in _json(config, capsys) if c["outcome"] == "unknown"]
    assert unknown and all(c["note"] and "restart" in c["note"] for c in unknown)


def test_missed_since_and_limit(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missed = _json(config, capsys, "--missed")
    assert {c["outcome"] for c in missed} == {"missed_abandoned", "missed_no_answer", "missed_busy"}
    assert all(c["direction"] == "in" for c in missed)
    recent = _json(config, capsys, "--since", "2026-11-22T15:40")
    assert [c["caller_name"] for c in recent] == ["张三"]
    assert len(_json(config, capsys, "--limit", "2")) == 2


def test_table_lines_up_with_chinese_names(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "calls"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert "张三" in "".join(lines) and "号码隐藏" in "".join(lines)
    column = display_width(header[: header.index("被叫")])
    for line in [line for line in lines if "来电" in line]:
        dialed_at = line.find("0278765432")
        assert dialed_at > 0 and display_width(line[:dialed_at]) == column, line


def test_phonebook_import_then_calls_show_the_name(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "phonebook.csv"
    book.write_bytes("number,name,unit\n13600002222,王五,黄陂区政府办\n".encode("gb18030"))
    assert main(["--config", str(config), "phonebook", "import", str(book)]) == 0
    assert "1" in capsys.readouterr().out
    # The name is filled as calls are recorded; a re-applied record picks it up.
    db = open_database(f"sqlite:///{tmp_path / 'calls.sqlite'}")
    CallRecorder(db, DUTY).apply(track("answered_r5_late"))
    db.dispose()
    (late,) = [c for c in _json(config, capsys) if c["caller"] == "13600002222"]
    assert (late["caller_name"], late["caller_unit"]) == ("王五", "黄陂区政府办")


def test_bad_phonebook_is_an_input_error(config: Path, tmp_path: Path) -> None:
    book = tmp_path / "bad.csv"
    book.write_text("13600002222\n", encoding="utf-8")
    assert main(["--config", str(config), "phonebook", "import", str(book)]) == InputError.exit_code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", datetime(2026, 11, 21, 12, 0, tzinfo=UTC)),
        ("30m", datetime(2026, 11, 22, 11, 30, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 15, 12, 0, tzinfo=UTC)),
        ("2026-11-22", datetime(2026, 11, 21, 16, 0, tzinfo=UTC)),
        ("2026-11-22T08:00", datetime(2026, 11, 22, 0, 0, tzinfo=UTC)),
        ("2026-11-22T08:00+00:00", datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_since(text, now, SHANGHAI) == expected


def test_parse_since_rejects_nonsense() -> None:
    with pytest.raises(InputError):
        parse_since("yesterday", datetime(2026, 11, 22, tzinfo=UTC), SHANGHAI)
