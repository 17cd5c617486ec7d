"""管理's imports take the uploaded file through the CLI's own import code, audited, and close
the upload (pytest runs with filterwarnings=error: a leaked temporary file fails the test)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from sqlalchemy import select

from gateway.clock import SystemClock
from gateway.config import Config, DutyConfig, PathsConfig
from gateway.web.accounts import add_user
from gateway.web.app import Console
from gateway.web.site import build_app
from storage.calls import PhonebookEntry
from storage.console import AuditEntry
from storage.db import open_database

PASSWORD = "correct-horse-7"


def test_a_phonebook_uploaded_by_the_admin_is_imported_and_audited(tmp_path: Path) -> None:
    config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001"]), paths=PathsConfig(data_dir=tmp_path))
    db = open_database(f"sqlite:///{tmp_path / 'dutygw.sqlite'}")
    with db.session() as session:
        add_user(session, "admin", "admin", PASSWORD, SystemClock().now(), display_name="管理员")
    console = Console(config, db, SystemClock())
    csv = "号码,姓名,单位\n027-8555-0001,张科长,武汉市司法局\n13900002222,钱处长,省戒毒管理局\n".encode("gb18030")

    async def scenario() -> tuple[int, str]:
        transport = httpx.ASGITransport(app=build_app(console), client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            login = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token is not None
            await client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf_token": token.group(1)})
            admin = await client.get("/admin")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', admin.text)
            assert csrf is not None
            answer = await client.post("/admin/phonebook", data={"csrf_token": csrf.group(1)},
                                       files={"file": ("通讯录.csv", csv, "text/csv")})
            return answer.status_code, answer.headers.get("location", "")

    try:
        status, location = asyncio.run(scenario())
        assert (status, location) == (303, "/admin?msg=phonebook_2")
        with db.read() as session:
            names = {e.number: e.name for e in session.scalars(select(PhonebookEntry))}
            entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "phonebook.import")).one()
        assert names == {"02785550001": "张科长", "13900002222": "钱处长"}
        assert (entry.actor, entry.new) == ("admin", {"entries": 2})
    finally:
        db.dispose()
