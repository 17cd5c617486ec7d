"""A running duty room for the console's browser tests: the real daemon (``dutygw run``),
``dutygw replay`` serving recorded AMI through a timing proxy, and a real Chromium.

The proxy sits between the daemon and the replay server and notes the wall-clock time
every chunk of the PBX's stream reached the daemon, so a test can say how long after an
AMI event the browser showed it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import AMI_FIXTURES

MANIFEST = json.loads((AMI_FIXTURES / "manifest.json").read_text(encoding="utf-8"))
PASSWORD = "correct-horse-7"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("TEST_DUTYGW_SHOTS", "/tmp/dutygw-console-shots"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dutygw(*args: str, stdin: str | None = None, **kwargs: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUTYGW_")}
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], env=env, text=True,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def run_dutygw(*args: str, stdin: str | None = None, timeout: float = 300) -> str:
    process = dutygw(*args, stdin=stdin)
    output, _ = process.communicate(stdin, timeout=timeout)
    assert process.returncode == 0, output
    return output


def start_daemon_with_users(config: Path) -> subprocess.Popen[str]:
    """The console's accounts (``USERS``, all with ``PASSWORD``), then ``dutygw run`` on ``config``."""
    for name, role, display, extension in USERS:
        args = ["--config", str(config), "user", "add", name, "--role", role, "--display-name", display,
                "--password-stdin"]
        run_dutygw(*args, *(["--extension", extension] if extension else []), stdin=PASSWORD + "\n")
    return dutygw("--config", str(config), "run")


def console_answers(base: str) -> bool:
    """Whether the console at ``base`` serves its login page yet."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/login", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy (generous timeouts; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class TimingProxy:
    """TCP proxy daemon → replay; ``received`` holds (time, bytes) of what the PBX sent."""

    upstream: int
    port: int = field(default_factory=free_port)
    received: list[tuple[float, bytes]] = field(default_factory=list)

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, note: bool) -> None:
        try:
            while data := source.recv(65536):
                if note:
                    self.received.append((time.time(), data))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def first_time(self, pattern: bytes, after: float = 0.0) -> float | None:
        return next((t for t, data in self.received if t >= after and pattern in data), None)

    def close(self) -> None:
        self._listener.close()


@dataclass
class DutyRoom:
    folder: Path
    config: Path
    web: str
    smtp_port: int
    replay_port: int
    proxy: TimingProxy
    daemon: subprocess.Popen[str]

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.folder / 'var' / 'dutygw.sqlite'}"

    def replay(self, name: str, *, speed: float | None = None, start_at: str | None = None) -> subprocess.Popen[str]:
        args = ["replay", str(AMI_FIXTURES / name), "--port", str(self.replay_port)]
        if speed is not None:
            args += ["--speed", str(speed)]
        if start_at is not None:
            args += ["--start-at", start_at]
        process = dutygw(*args)
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or "replay listening" not in lines[-1]:
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        return process


def write_config(folder: Path, *, ami: int, smtp: int, web: int) -> Path:
    config = folder / "dutygw.toml"
    config.write_text(
        f'[duty]\nnumbers = ["{MANIFEST["duty_number"]}"]\n'
        f'extensions = {json.dumps(MANIFEST["duty_phones"])}\nfax_numbers = ["{MANIFEST["fax_number"]}"]\n'
        f'[ami]\nport = {ami}\nuser = "gateway"\nsecret = "x"\nreconnect_max_seconds = 0.5\n'
        f'[paths]\ndata_dir = "{folder / "var"}"\n[smtp]\nport = {smtp}\n'
        f'[paging]\nagi_port = {free_port()}\n'
        f'[mail]\nrelay_port = {free_port()}\n'
        f'[web]\nport = {web}\npoll_seconds = 0.2\n',
        encoding="utf-8",
    )
    return config


USERS = (
    ("wangfang", "officer", "王芳", "8001"),
    ("lijun", "officer", "李军", "8002"),
    ("zhaoling", "leader", "赵岭", "8003"),
    ("admin", "admin", "管理员", ""),
)


@dataclass
class Browser:
    """One Chromium for the module; a fresh context (cookies) per person."""

    playwright: Any
    browser: Any
    base: str

    def signed_in(self, name: str) -> Any:
        context = self.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                           bypass_csp=True)  # lets the tests instrument the page
        page = context.new_page()
        page.goto(f"{self.base}/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/$"))
        return page

    def shot(self, page: Any, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path


def start_browser(base: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield Browser(playwright, browser, base)
        finally:
            browser.close()
