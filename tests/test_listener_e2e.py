"""Every recorded stream, served by ``dutygw replay`` over a real socket to ``dutygw run``,
ends up in the database as the PBX's ground truth says: one record per call.

Both sides are the real command-line programs in their own processes; the replay serves
one recording per connection (as Asterisk does across a restart), so the daemon's
reconnect and CoreShowChannels rebuild run between every two files.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from sqlalchemy import select

from storage.calls import Call
from storage.db import open_database
from tests.conftest import AMI_FIXTURES
from tests.test_tracker import OUTCOME_NAMES, expected_rule_met
from tests.test_tracker_patterns import PATTERNS, TRUTHS, final_party

MANIFEST = json.loads((AMI_FIXTURES / "manifest.json").read_text(encoding="utf-8"))
SCENARIOS = MANIFEST["scenarios"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dutygw(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUTYGW_")}
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def expected_calls() -> dict[str, dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS.values():
        for call in scenario["calls"]:
            if call["kind"] != "originate":
                calls[call["pbx_linkedid"]] = call
    return calls


def expected_patterns() -> dict[str, dict[str, Any]]:
    return {truth["linkedid"]: truth for truth in TRUTHS.values()}


def read_rows(path: Any) -> dict[str, Call]:
    db = open_database(f"sqlite:///{path}", migrate=False)
    try:
        with db.session() as session:
            return {row.linkedid: row for row in session.scalars(select(Call))}
    finally:
        db.dispose()


def wait_until_recorded(path: Any, linkedids: set[str], process: subprocess.Popen[str]) -> None:
    """Poll the database (generously) until every call is there and complete."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists():
            rows = read_rows(path)
            if linkedids <= {k for k, r in rows.items() if r.complete}:
                return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Call]:
    folder = tmp_path_factory.mktemp("listener")
    ami = free_port()
    config = folder / "dutygw.toml"
    config.write_text(
        f'[duty]\nnumbers = ["{MANIFEST["duty_number"]}"]\n'
        f'extensions = {json.dumps([*MANIFEST["duty_phones"], "8003"])}\nfax_numbers = ["{MANIFEST["fax_number"]}"]\n'
        f'[ami]\nport = {ami}\nuser = "gateway"\nsecret = "x"\nreconnect_max_seconds = 1\n'
        f'[paths]\ndata_dir = "{folder / "var"}"\n[smtp]\nport = {free_port()}\n'
        f'[paging]\nagi_port = {free_port()}\n',
        encoding="utf-8",
    )
    files = [str(AMI_FIXTURES / f) for name in sorted(SCENARIOS) for f in SCENARIOS[name]["files"]]
    files += [str(PATTERNS / truth["file"]) for truth in TRUTHS.values()]
    replay = dutygw("replay", *files, "--port", str(ami))
    daemon = dutygw("--config", str(config), "run")
    try:
        replay_output, _ = replay.communicate(timeout=240)
        assert replay.returncode == 0, replay_output
        wait_until_recorded(folder / "var" / "dutygw.sqlite", set(expected_calls()) | set(expected_patterns()), daemon)
        daemon.send_signal(signal.SIGTERM)
        daemon_output, _ = daemon.communicate(timeout=60)
    finally:
        for process in (replay, daemon):
            if process.poll() is None:
                process.kill()
    assert daemon.returncode == 0, daemon_output
    assert "duty-gateway stopped" in daemon_output
    return read_rows(folder / "var" / "dutygw.sqlite")


def test_one_record_per_call_and_nothing_else(recorded: dict[str, Call]) -> None:
    """No record for a consultation leg, a pickup's own leg or a paging call."""
    assert set(recorded) == set(expected_calls()) | set(expected_patterns())


@pytest.mark.parametrize("linkedid", sorted(expected_patterns()))
def test_pattern_recorded_as_its_truth_says(recorded: dict[str, Call], linkedid: str) -> None:
    truth, row = expected_patterns()[linkedid], recorded[linkedid]
    assert row.outcome == truth["outcome"] and row.complete
    assert row.rings == truth["rings_before_first_answer_cn_cadence"]
    assert row.answered_by == truth["first_answer"]["extension"]
    assert row.answered_at is not None
    assert abs(row.answered_at.timestamp() - truth["first_answer"]["at"]) <= 0.5
    assert row.final_party == final_party(truth)
    assert row.transferred_to == (truth["transfer"]["to"] if "transfer" in truth else None)
    assert row.picked_up_by == (truth["pickup"]["by"] if "pickup" in truth else None)
    talks = json.loads(row.talks or "[]")
    assert [t["party"] for t in talks] == [t["party"] for t in truth["talk"]]
    for talk, expected in zip(talks, truth["talk"], strict=True):
        assert abs(talk["seconds"] - expected["seconds"]) <= 0.5


@pytest.mark.parametrize("linkedid", sorted(expected_calls()))
def test_record_matches_the_pbx(recorded: dict[str, Call], linkedid: str) -> None:
    call, row = expected_calls()[linkedid], recorded[linkedid]
    assert row.outcome == OUTCOME_NAMES.get(call["outcome"], call["outcome"])
    assert row.rings == call["rings_cn_cadence"]
    assert row.rule_met == expected_rule_met(call)
    assert row.caller == call["caller_number"]
    assert row.answered_by == call["answered_by"]
    if call["answer"] is None:
        assert row.answered_at is None
    else:
        assert row.answered_at is not None
        assert abs(row.answered_at.timestamp() - call["answer"]) <= 0.5
    assert row.complete
    assert row.time_source == "pbx"
