"""Alembic environment: runs on the connection the gateway hands it, or opens its own."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import storage.models  # noqa: F401  (registers every table on Base.metadata)
from storage.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as own:
        run_migrations(own)
