"""Shared test fixtures: where the shared recordings live, and a real database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.db import Database, open_database

pytest_plugins = ["tests.ocr_corpus"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TEST_DUTYGW_SHARED", ROOT.parent / "shared"))
AMI_FIXTURES = SHARED / "fixtures" / "ami"
FAX_FIXTURES = SHARED / "fixtures" / "fax"
EXAMPLE_CONFIG = ROOT / "examples" / "dutygw.toml"
POSTGRES_URL = os.environ.get("TEST_DUTYGW_POSTGRES_URL")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dutygw.sqlite'}"


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    """A fresh, migrated SQLite database in the test's own folder."""
    db = open_database(sqlite_url)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test on SQLite and on a real PostgreSQL server (a scratch schema each time).

    CI starts the server and sets TEST_DUTYGW_POSTGRES_URL; without it the PostgreSQL
    half is reported as skipped, never silently passed.
    """
    if request.param == "sqlite":
        db = open_database(f"sqlite:///{tmp_path / 'dutygw.sqlite'}")
        yield db
        db.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip("TEST_DUTYGW_POSTGRES_URL is not set (CI sets it)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    db = open_database(url)
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
