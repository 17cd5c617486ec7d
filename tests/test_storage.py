"""Storage: the migrations build exactly the models' schema, and instants come back as UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic import command
from sqlalchemy import inspect, select

from storage.base import Base
from storage.db import Database, alembic_config
from storage.faxes import Receipt


def test_migrations_build_the_models_schema(any_database: Database) -> None:
    with any_database.engine.begin() as connection:
        config = alembic_config(any_database.url)
        config.attributes["connection"] = connection
        command.check(config)  # raises if the models differ from the migrated schema
    tables = set(inspect(any_database.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_instants_are_stored_in_utc_and_read_back_aware(any_database: Database) -> None:
    shanghai = timezone(timedelta(hours=8))
    arrived = datetime(2026, 11, 21, 23, 5, 7, tzinfo=shanghai)
    with any_database.session() as session:
        session.add(Receipt(year=2026, seq=1, received_at=arrived))
    with any_database.session() as session:
        stored = session.scalars(select(Receipt)).one()
    assert stored.received_at == arrived
    assert stored.received_at.tzinfo is not None
    assert stored.received_at.utcoffset() == timedelta(0)
    assert stored.receipt_no == "传真〔2026〕0001号"


def test_migrating_twice_is_harmless(any_database: Database) -> None:
    any_database.migrate()
    any_database.migrate()
