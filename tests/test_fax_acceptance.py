"""Every fax fixture mailed over SMTP to the running intake, as HylaFAX and as Asterisk's
ReceiveFAX script send them, is filed with the register fields right (issue acceptance).

The reader is the real one (Tesseract reads every header zone for real); RapidOCR's
reading of a whole normalised page comes from the session's corpus, so the corpus is
OCR'd once per test session, not once per test.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.clock import SHANGHAI
from ocr.config import UrgencyConfig
from ocr.engines import RapidOcrEngine, TesseractEngine
from ocr.reader import FaxReader
from storage.db import open_database
from storage.faxes import Receipt
from tests.fax_mails import asterisk_mail, fax_config, hylafax_mail, running_service
from tests.ocr_corpus import OcrPage
from tests.test_reader import SessionEngine

pytestmark = pytest.mark.ocr
DEFAULT_RECEIVED = datetime(2026, 11, 21, 23, 5, tzinfo=SHANGHAI)


def received_at(sidecar: dict[str, Any], index: int) -> datetime:
    stamp = sidecar["fax"].get("received_at")
    when = datetime.fromisoformat(stamp).replace(tzinfo=SHANGHAI) if stamp else DEFAULT_RECEIVED
    return when + timedelta(seconds=index)  # distinct, so the check below can pair them up


def mail_for(index: int, path: Path, sidecar: dict[str, Any]) -> bytes:
    station = sidecar["fax"].get("sender_fax") or "unknown"
    pages = sidecar["fields"]["pages"]
    make = hylafax_mail if index % 2 == 0 else asterisk_mail
    return make(path.read_bytes(), station=station, pages=pages, received=received_at(sidecar, index),
                caller=station.replace("-", ""))


@pytest.fixture(scope="module")
def filed(tmp_path_factory: pytest.TempPathFactory, ocr_corpus: dict[str, tuple[OcrPage, ...]],
          rapid_engine: RapidOcrEngine, tesseract_engine: TesseractEngine) -> list[tuple[dict[str, Any], Receipt]]:
    folder = tmp_path_factory.mktemp("acceptance")
    db = open_database(f"sqlite:///{folder / 'dutygw.sqlite'}")
    reader = FaxReader(SessionEngine(rapid_engine, ocr_corpus), tesseract_engine, UrgencyConfig())
    fixtures = [pages[0].fixture for pages in ocr_corpus.values()]
    with running_service(fax_config(folder / "var"), db, reader) as service:
        for index, fixture in enumerate(fixtures):
            assert service.send(mail_for(index, fixture.path, fixture.sidecar))[0] == 250
        service.wait_idle()
    with db.session() as session:
        receipts = {r.received_at: r for r in session.scalars(select(Receipt))}
    db.dispose()
    return [(f.sidecar, receipts[received_at(f.sidecar, i)]) for i, f in enumerate(fixtures)]


def test_every_fixture_is_filed_once_from_its_mail(filed: list[tuple[dict[str, Any], Receipt]]) -> None:
    assert len(filed) == 24
    for sidecar, receipt in filed:
        assert receipt.status in ("filed", "needs_review"), (sidecar["file"], receipt.review_reasons)
        assert receipt.pages == sidecar["fields"]["pages"]
        assert receipt.received_time_source != "ocr"


def test_urgency_and_classification_right_on_every_fax(filed: list[tuple[dict[str, Any], Receipt]]) -> None:
    wrong_urgency = [(s["file"], r.urgency_reasons) for s, r in filed
                     if (r.is_urgent or r.possibly_urgent) != s["fields"]["is_urgent"]]
    wrong_class = [(s["file"], r.classification) for s, r in filed
                   if r.classification != s["fields"]["classification"]]
    assert wrong_urgency == [] and wrong_class == []


def test_register_fields_meet_the_rates(filed: list[tuple[dict[str, Any], Receipt]]) -> None:
    def rate(ok: list[bool]) -> float:
        return sum(ok) / len(ok)

    doc = rate([r.doc_number == s["fields"]["doc_number"] for s, r in filed])
    issuer = rate([r.issuer == s["fields"]["issuer"] for s, r in filed])
    title = rate([r.title == (s["fields"]["title"] or "").replace(" ", "") for s, r in filed])
    assert doc >= 0.95 and issuer >= 0.90 and title >= 0.90, (doc, issuer, title)
