"""Declarative base shared by every model, and the column type for instants.

The naming convention gives constraints deterministic names, so Alembic migrations
(SQLite batch mode included) can refer to them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from gateway.clock import UTC, as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored as UTC (naive on SQLite, timestamptz on PostgreSQL), read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class State(TypeDecorator[Any]):
    """A state column: stored as the StrEnum's string, read back as its member.

    Binding a value that is not one of the enum's raises ``ValueError`` before anything is
    written; ``one_of`` makes the database refuse it too (a CHECK constraint, migrations 0007, 0009).
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 20) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.enum(value)


def one_of(column: str, enum: type[StrEnum]) -> CheckConstraint:
    """``CHECK (column IN (...))``, named ``ck_<table>_<column>`` by the naming convention."""
    return CheckConstraint(f"{column} IN ({check_values(enum)})", name=column)


def check_values(enum: type[StrEnum]) -> str:
    """The enum's values as an SQL list (they are plain words: no quoting to escape)."""
    return ", ".join(f"'{member.value}'" for member in enum)
