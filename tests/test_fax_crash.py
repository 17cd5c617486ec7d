"""kill -9 while faxes wait for OCR, then a restart: every accepted fax is filed, none twice.

Runs the real daemon (``python -m gateway.cli --config CFG run``) as a subprocess; AMI
points at a closed port, so the daemon keeps retrying AMI while it serves SMTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from storage.db import Database, open_database
from storage.faxes import InboundMail, Receipt
from tests.conftest import FAX_FIXTURES, ROOT
from tests.fax_mails import asterisk_mail, crlf

ZONE = ZoneInfo("Asia/Shanghai")
ONE_PAGE = ["fax_001", "fax_002", "fax_008", "fax_010", "fax_014", "fax_016", "fax_017", "fax_018",
            "fax_020", "fax_022"]

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(folder: Path, port: int) -> Path:
    path = folder / "dutygw.toml"
    path.write_text(
        '[duty]\nnumbers = ["02787654321"]\nextensions = ["8001"]\n'
        f'[ami]\nhost = "127.0.0.1"\nport = {free_port()}\nreconnect_max_seconds = 2\n'
        f'[paths]\ndata_dir = "{folder / "var"}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        '[ocr]\nengine = "tesseract"\nheader_second_reader = "none"\n'
    )
    return path


def start(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``dutygw run``, until its SMTP intake listens."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DUTYGW_")}
    env.update(PYTHONPATH=str(ROOT), OMP_THREAD_LIMIT="1")  # only the config file configures the daemon
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(config), "run"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")
            raise AssertionError(f"dutygw run exited with {process.returncode}:\n{text[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"dutygw run did not listen on {port} within 60 s")


def send_all(port: int) -> None:
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for index, name in enumerate(ONE_PAGE):
            raw = asterisk_mail((FAX_FIXTURES / f"{name}.tif").read_bytes(), station=f"CRASH {index}", pages=1,
                                received=datetime(2026, 11, 22, 2, index, tzinfo=ZONE))
            client.sendmail("fax@pbx", ["fax@duty.local"], crlf(raw))


def counts(db: Database) -> tuple[int, int]:
    with db.session() as session:
        filed = session.scalar(select(func.count()).where(InboundMail.state == "filed")) or 0
        receipts = session.scalar(select(func.count()).select_from(Receipt)) or 0
    return filed, receipts


@pytest.mark.ocr
def test_kill_9_with_faxes_queued_then_restart(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    log = tmp_path / "daemon.log"
    process = start(config, port, log)
    db = open_database(f"sqlite:///{tmp_path / 'var' / 'dutygw.sqlite'}")
    try:
        send_all(port)  # every one answered 250: each is now our responsibility
        deadline = time.monotonic() + 120
        while counts(db)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        filed_before, _ = counts(db)
        assert filed_before < len(ONE_PAGE), "nothing was left queued at the kill; the test proves nothing"

        process = start(config, port, log)
        deadline = time.monotonic() + 600
        while counts(db)[0] < len(ONE_PAGE) and time.monotonic() < deadline:
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        process.wait(120)
        with db.session() as session:
            mails = list(session.scalars(select(InboundMail)))
            receipts = list(session.scalars(select(Receipt)))
        assert sorted(m.state for m in mails) == ["filed"] * len(ONE_PAGE), log.read_text()[-3000:]
        assert len(receipts) == len(ONE_PAGE) and len({r.mail_id for r in receipts}) == len(ONE_PAGE)
        assert sorted(r.seq for r in receipts) == list(range(1, len(ONE_PAGE) + 1))
        assert sorted(r.station or "" for r in receipts) == sorted(f"CRASH {i}" for i in range(len(ONE_PAGE)))
        assert all(r.status in ("filed", "needs_review") and r.pages == 1 for r in receipts)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        db.dispose()


def long_fax(pages: int = 8) -> bytes:
    """A real fax of ``pages`` pages (fax_012's three pages over and over)."""
    import io

    from PIL import Image, ImageSequence

    with Image.open(FAX_FIXTURES / "fax_012.tif") as image:
        frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
    frames = (frames * pages)[:pages]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", compression="group4", save_all=True, append_images=frames[1:], dpi=(204, 98))
    return out.getvalue()


@pytest.mark.ocr
def test_sigterm_while_a_fax_is_read_stops_in_seconds_and_the_fax_resumes(tmp_path: Path) -> None:
    import smtplib

    port = free_port()
    config = write_config(tmp_path, port)
    log = tmp_path / "daemon.log"
    process = start(config, port, log)
    db = open_database(f"sqlite:///{tmp_path / 'var' / 'dutygw.sqlite'}")
    try:
        raw = asterisk_mail(long_fax(), station="LONG", pages=8, received=datetime(2026, 11, 22, 2, 0, tzinfo=ZONE))
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.sendmail("fax@pbx", ["fax@duty.local"], crlf(raw))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # page 1 decided: the other seven pages are being read
            with db.session() as session:
                if session.scalars(select(Receipt.urgency_decided_at)).first() is not None:
                    break
            time.sleep(0.05)
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(120)
        took = time.monotonic() - stopping
        with db.session() as session:
            assert session.scalars(select(Receipt.status)).all() == ["reading"], "nothing was being read"
        assert took < 10, f"SIGTERM took {took:.1f} s"

        process = start(config, port, log)
        deadline = time.monotonic() + 600
        while counts(db)[0] < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        with db.session() as session:
            (receipt,) = session.scalars(select(Receipt)).all()
            assert receipt.status in ("filed", "needs_review") and receipt.pages == 8, log.read_text()[-3000:]
            assert len(receipt.page_texts) == 8
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        db.dispose()
