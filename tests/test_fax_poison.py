"""Poison faxes queued ahead of an urgent one: killed within seconds, filed for review.

The real intake (SMTP, spool, the priority queue, the warm OCR worker processes with their
per-page watchdog, RapidOCR and Tesseract) receives a PostScript program that never ends,
a TIFF claiming 10,000 pages and a damaged TIFF, then an urgent fax (fax_022, 特提). The
urgent fax's decision must come a few seconds after its DATA, not after the poison.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.config import OcrConfig
from gateway.fax.worker import HEADER_PAGES
from ocr.pages import render_cpu_limit
from storage.db import open_database
from storage.faxes import InboundMail, Receipt
from tests.conftest import FAX_FIXTURES
from tests.fax_mails import (
    POSTSCRIPT_LOOP,
    asterisk_mail,
    corrupt_tiff,
    fax_config,
    hylafax_mail,
    many_pages_tiff,
    running_service,
)

ZONE = ZoneInfo("Asia/Shanghai")
WHEN = datetime(2026, 11, 24, 23, 0, tzinfo=ZONE)
PAGE_LIMIT_S = 20.0
"""CPU seconds a page may take (the default); a real page takes 1–3."""


@pytest.mark.ocr
def test_poison_faxes_ahead_of_an_urgent_one_cost_seconds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = fax_config(tmp_path)
    config = dataclasses.replace(config, ocr=OcrConfig(max_pages=12, workers=2, page_timeout_seconds=PAGE_LIMIT_S))
    db = open_database(config.database_url)
    urgent_tiff = (FAX_FIXTURES / "fax_022.tif").read_bytes()
    poison = [
        hylafax_mail(POSTSCRIPT_LOOP, station="LOOP", pages=1, received=WHEN, subtype="postscript",
                     filename="fax.ps"),
        asterisk_mail(many_pages_tiff(), station="MANY", pages=10_000, received=WHEN),
        asterisk_mail(corrupt_tiff((FAX_FIXTURES / "fax_012.tif").read_bytes()), station="BROKEN", pages=3,
                      received=WHEN),
    ]
    with running_service(config, db, None) as service:
        warm = asterisk_mail((FAX_FIXTURES / "fax_001.tif").read_bytes(), station="WARM", pages=1, received=WHEN)
        assert service.send(warm)[0] == 250  # models loaded in both workers before the clock starts
        service.wait_idle()
        alone = _urgent_delay(service, db, [], urgent_tiff, "ALONE")
        service.wait_idle()
        behind = _urgent_delay(service, db, poison, urgent_tiff + b"\0", "BEHIND")
        service.wait_idle()
    with db.session() as session:
        by_station = {r.station: r for r in session.scalars(select(Receipt))}
        mails = list(session.scalars(select(InboundMail)))
    assert all(m.state == "filed" for m in mails)
    # The poison costs a few seconds of header pass, never its own length: ghostscript stops
    # the loop at its CPU limit (2 s for each of the header pass's 2 pages) in one worker
    # while the other reads the 10,000-page claim (page 1 only) and the damaged TIFF, about
    # one header pass each. So the urgent fax waits at most for the longer of the two;
    # measured against its own time alone, their sum bounds that on a machine of any speed.
    loop_limit = render_cpu_limit(HEADER_PAGES)
    assert behind - alone < loop_limit + 2 * alone, (alone, behind)
    for station in ("LOOP", "MANY", "BROKEN"):
        receipt = by_station[station]
        assert receipt.status == "needs_review" and receipt.possibly_urgent is not None
        assert any("\u4e00" <= ch <= "\u9fff" for ch in "".join(receipt.review_reasons)), receipt.review_reasons
    assert any("PostScript 渲染超过" in r for r in by_station["LOOP"].review_reasons), by_station["LOOP"].review_reasons
    # ghostscript was stopped by its own CPU limit: no worker was killed, no models reloaded
    assert not [r.message for r in caplog.records if "killed" in r.message]
    print(f"urgent decision alone {alone:.1f} s, behind the poison {behind:.1f} s")
    assert by_station["ALONE"].is_urgent or by_station["ALONE"].possibly_urgent
    assert by_station["BEHIND"].is_urgent or by_station["BEHIND"].possibly_urgent
    db.dispose()


def _urgent_delay(service, db, ahead: list[bytes], tiff: bytes, station: str) -> float:  # type: ignore[no-untyped-def]
    for raw in ahead:
        assert service.send(raw)[0] == 250
    assert service.send(asterisk_mail(tiff, station=station, pages=1, received=WHEN))[0] == 250
    sent = time.monotonic()
    deadline = sent + 300
    while time.monotonic() < deadline:
        with db.session() as session:
            decided = session.scalars(select(Receipt.urgency_decided_at).where(Receipt.station == station)).first()
        if decided is not None:
            return time.monotonic() - sent
        time.sleep(0.05)
    raise AssertionError(f"no urgency decision for {station}")
