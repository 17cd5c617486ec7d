"""``dutygw run`` as systemd runs it: the shipped unit, how fast SIGTERM really stops the
daemon, the files it writes (0750 / 0640), what ``-v`` logs, and a phonebook that cannot
be read (the daemon starts anyway, warns and imports it once it can)."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.calls import PhonebookEntry
from storage.db import open_database

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "examples" / "dutygw.service"
GENEROUS = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unit() -> dict[str, str]:
    keys: dict[str, str] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            keys[key.strip()] = value.strip()
    return keys


@dataclass
class Running:
    """A ``dutygw run`` process whose log lines are collected as they come."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=GENEROUS)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + GENEROUS
        while not condition():
            assert self.process.poll() is None, f"dutygw run ended while waiting for {what}:\n{self.log}"
            assert time.monotonic() < deadline, f"no {what} within {GENEROUS:.0f} s:\n{self.log}"
            time.sleep(0.1)

    def stop(self) -> float:
        """SIGTERM, then the seconds until the process has exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=GENEROUS)
        return time.monotonic() - started


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def _config(folder: Path, smtp: int, phonebook: str) -> Path:
    path = folder / "etc" / "dutygw.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        '[duty]\nnumbers = ["02787654321"]\nextensions = ["8001", "8002"]\n'
        f'[ami]\nport = {_free_port()}\nreconnect_max_seconds = 1\n'
        f'[paths]\ndata_dir = "../state"\nphonebook = "{phonebook}"\n'
        f'[smtp]\nport = {smtp}\n[paging]\nagi_port = {_free_port()}\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def daemon(folder: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*options: str, phonebook: str = "book.csv", smtp: int | None = None) -> Running:
        config = _config(folder, smtp or _free_port(), phonebook)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUTYGW_")}
        # started from another folder: the paths in the file are the file's, not the cwd's
        process = subprocess.Popen([sys.executable, "-m", "gateway.cli", *options, "--config", str(config), "run"],
                                   env=env, cwd=folder, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, umask=0o022)
        running = Running(process)
        started.append(running)
        running.wait_for(lambda: "duty-gateway running" in running.log, "start")
        return running

    yield start
    for running in started:
        running.close()


def _send_mail(port: int, body: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "fax@pbx", "fax@duty.local", "Fax"
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.send_message(message)


def test_unit_runs_as_its_own_user_with_a_state_directory_and_restarts_on_failure() -> None:
    unit = _unit()
    assert unit["User"] == unit["Group"] == "dutygw"
    assert unit["StateDirectory"] == "dutygw" and unit["StateDirectoryMode"] == "0750"
    assert unit["Restart"] == "on-failure" and "2" in unit["RestartPreventExitStatus"].split()
    assert unit["UMask"] == "0027"
    assert unit["ExecStart"].endswith("--config /etc/dutygw/dutygw.toml run")


def test_unit_is_valid_for_systemd(tmp_path: Path) -> None:
    # the shipped unit, with ExecStart pointing at this checkout's dutygw (systemd checks it exists)
    dutygw = Path(sys.executable).with_name("dutygw")
    assert dutygw.exists(), dutygw
    copy = tmp_path / "dutygw.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/dutygw", str(dutygw)), encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                          timeout=GENEROUS, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "dutygw.service" in line and "user" not in line.lower()]
    assert done.returncode == 0 or not problems, done.stdout + done.stderr
    assert not problems, problems


def test_sigterm_stops_well_inside_the_units_stop_timeout(daemon: Callable[..., Running]) -> None:
    running = daemon()
    seconds = running.stop()
    assert running.process.returncode == 0, running.log
    assert "duty-gateway stopped" in running.log
    # systemd kills at TimeoutStopSec; a clean stop must take a small part of it
    assert seconds < float(_unit()["TimeoutStopSec"]) / 3, seconds


def _modes(root: Path) -> tuple[set[str], set[str]]:
    folders, files = set(), set()
    for path in [root, *root.rglob("*")]:
        mode = oct(stat.S_IMODE(path.stat().st_mode))
        (folders if path.is_dir() else files).add(mode)
    return folders, files


def test_what_the_gateway_writes_is_not_world_readable(folder: Path, daemon: Callable[..., Running]) -> None:
    smtp = _free_port()
    running = daemon(smtp=smtp)
    _send_mail(smtp, "no fax in this one")
    running.wait_for(lambda: "quarantined" in running.log, "the mail filed")
    running.stop()
    folders, files = _modes(folder / "state")
    assert folders == {"0o750"}, (folders, running.log)
    assert files == {"0o640"}, files
    assert len(list((folder / "state").rglob("*"))) >= 3  # database, spool, the mail itself


def test_verbose_run_does_not_log_the_mail_it_receives(daemon: Callable[..., Running]) -> None:
    smtp = _free_port()
    running = daemon("-v", smtp=smtp)
    marker = "SECRET-FAX-BODY-LINE-7f3a"
    _send_mail(smtp, f"{marker}\n{marker}\n")
    running.wait_for(lambda: "quarantined" in running.log, "the mail filed")
    running.stop()
    assert " DEBUG " in running.log  # -v is on
    assert marker not in running.log


BOOK = "号码,姓名,单位\n027-8765 4321,张三,应急管理局\n"


def _phonebook_entries(folder: Path) -> int:
    db = open_database(f"sqlite:///{folder / 'state' / 'dutygw.sqlite'}")
    try:
        with db.session() as session:
            return int(session.scalar(select(func.count()).select_from(PhonebookEntry)) or 0)
    finally:
        db.dispose()


@pytest.mark.parametrize("problem", ["missing", "a folder", "not text"])
def test_a_bad_phonebook_never_stops_the_gateway(folder: Path, daemon: Callable[..., Running], problem: str) -> None:
    book = folder / "etc" / "book.csv"
    book.parent.mkdir()
    if problem == "a folder":
        book.mkdir()
    elif problem == "not text":
        book.write_bytes(bytes(range(128, 256)) * 8)
    running = daemon()
    assert "phonebook NOT imported" in running.log and " ERROR " in running.log, running.log
    if book.is_dir():  # the operator fixes it while the gateway runs
        book.rmdir()
    book.write_text(BOOK, encoding="utf-8")
    running.wait_for(lambda: "1 entries imported" in running.log, "the import retried")
    running.stop()
    assert running.process.returncode == 0, running.log
    assert _phonebook_entries(folder) == 1


def test_a_utf16_phonebook_from_excel_is_read(folder: Path, daemon: Callable[..., Running]) -> None:
    book = folder / "etc" / "book.csv"
    book.parent.mkdir()
    book.write_bytes(BOOK.encode("utf-16"))
    running = daemon()
    running.stop()
    assert "NOT imported" not in running.log and "1 entries imported" in running.log, running.log
    assert _phonebook_entries(folder) == 1


def test_start_up_log_shows_absolute_paths(folder: Path, daemon: Callable[..., Running]) -> None:
    running = daemon()
    running.stop()
    assert f"data folder {folder / 'state'}" in running.log
    assert f"phonebook {folder / 'etc' / 'book.csv'}" in running.log
    assert not (folder / "var").exists() and not (folder / "etc" / "var").exists()
    assert re.search(r"configuration /\S+/etc/dutygw.toml", running.log)
