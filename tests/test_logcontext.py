"""Log lines say what they are about (gateway/logcontext.py), and loggers are named ``dutygw.<area>``."""

from __future__ import annotations

import ast
import asyncio
import io
import logging
from pathlib import Path

from gateway import logcontext
from gateway.calls.recorder import CallRecorder
from gateway.calls.tracker import CallTracker
from gateway.logcontext import ContextFilter, log_context
from storage.db import Database
from tests.test_tracker_patterns import DUTY as PATTERN_DUTY
from tests.test_tracker_patterns import TRUTHS, pattern_messages

ROOT = Path(__file__).resolve().parent.parent


def capture() -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s:%(context)s %(message)s"))
    logcontext.install([handler])
    logging.getLogger("dutygw").addHandler(handler)
    return handler, stream


def test_fields_nest_and_end_with_their_block() -> None:
    handler, stream = capture()
    log = logging.getLogger("dutygw.test")
    log.setLevel(logging.INFO)
    try:
        with log_context(linkedid="1700000000.12"):
            log.info("outer")
            with log_context(receipt="传真〔2026〕0137号", escalation=None):
                log.info("inner")
        log.info("outside")
    finally:
        logging.getLogger("dutygw").removeHandler(handler)
        log.setLevel(logging.NOTSET)
    assert stream.getvalue().splitlines() == [
        "dutygw.test: [linkedid=1700000000.12] outer",
        "dutygw.test: [linkedid=1700000000.12 receipt=传真〔2026〕0137号] inner",
        "dutygw.test: outside",
    ]
    logcontext.install([handler])
    assert sum(isinstance(f, ContextFilter) for f in handler.filters) == 1  # installed once


def test_db_run_carries_the_context_into_its_worker_thread(database: Database) -> None:
    async def scenario() -> dict[str, str]:
        with log_context(escalation=7):
            return dict(await database.run(logcontext.current))

    assert asyncio.run(scenario()) == {"escalation": "7"}


def test_the_recorder_says_which_call_a_line_is_about(database: Database) -> None:
    """The withdrawn pickup leg's line carries the leg's own Linkedid."""
    messages = pattern_messages("pickup_by_third_phone")
    start = next(i for i, m in enumerate(messages)
                 if m.event == "Newchannel" and (m.get("Channel") or "").startswith("PJSIP/8003")) + 1
    tracker = CallTracker(PATTERN_DUTY)
    records = [r for m in messages[start:] for r in tracker.feed(m)]
    (leg,) = {r.linkedid for r in records if r.merged_into}
    handler, stream = capture()
    logging.getLogger("dutygw.calls.recorder").setLevel(logging.INFO)
    try:
        recorder = CallRecorder(database, PATTERN_DUTY)
        for record in records:
            recorder.apply([record])
    finally:
        logging.getLogger("dutygw").removeHandler(handler)
        logging.getLogger("dutygw.calls.recorder").setLevel(logging.NOTSET)
    (line,) = [x for x in stream.getvalue().splitlines() if "withdrawn" in x]
    assert line.startswith(f"dutygw.calls.recorder: [linkedid={leg}] call {leg} is part of call "
                           f"{TRUTHS['pickup_by_third_phone']['linkedid']}")


def test_every_logger_is_named_dutygw_area() -> None:
    names = {}
    for package in ("gateway", "ocr", "storage", "dialplan"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger" and node.args:
                    arg = node.args[0]
                    names[str(path.relative_to(ROOT))] = arg.value if isinstance(arg, ast.Constant) else ast.dump(arg)
    assert names, "no logger found: the scan is broken"
    odd = {path: name for path, name in names.items()
           if not (isinstance(name, str) and (name == "dutygw" or name.startswith("dutygw.")))}
    # the only other names: other libraries' loggers being quietened
    assert odd == {"gateway/cli.py": "Name(id='chatty', ctx=Load())", "gateway/fax/service.py": "mail.log"}
