"""CHECK constraints on state columns, for the migrations that add them (0007, 0009).

Only the mechanics live here; each migration lists its values as they stood at its revision
(a later StrEnum must not rewrite history). Batch mode, so SQLite copies the table.
"""

from __future__ import annotations

from collections.abc import Mapping

from alembic import op

Checks = Mapping[str, Mapping[str, tuple[str, ...]]]
"""table → column → the values it may hold."""


def add_checks(checks: Checks) -> None:
    for table, columns in checks.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values in columns.items():
                listed = ', '.join(f"'{value}'" for value in values)
                batch_op.create_check_constraint(op.f(f'ck_{table}_{column}'), f'{column} IN ({listed})')


def drop_checks(checks: Checks) -> None:
    for table, columns in reversed(list(checks.items())):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_constraint(op.f(f'ck_{table}_{column}'), type_='check')
