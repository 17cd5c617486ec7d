"""Yearly receipt numbers (传真〔2026〕0137号) that never collide, on SQLite and PostgreSQL.

The number is computed inside the INSERT itself (``MAX(seq) + 1`` as a subquery), so on
SQLite the write lock covers both reading and writing. On PostgreSQL two concurrent
inserts can compute the same number; the ``(year, seq)`` unique constraint rejects the
second, which simply tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.faxes import Receipt

log = logging.getLogger("dutygw.fax.numbering")

ATTEMPTS = 20


def next_seq_expression(year: int):  # type: ignore[no-untyped-def]
    """``COALESCE(MAX(seq), 0) + 1`` for ``year``, evaluated by the database at insert time."""
    return (
        select(func.coalesce(func.max(Receipt.seq), 0) + 1)
        .where(Receipt.year == year)
        .scalar_subquery()
    )


def insert_numbered(db: Database, make: Callable[[], Receipt]) -> Receipt:
    """Insert the receipt ``make()`` builds with the next number of its year; return it loaded.

    ``make`` is called once per attempt so a failed attempt leaves no half-used object.
    """
    for attempt in range(ATTEMPTS):
        receipt = make()
        receipt.seq = next_seq_expression(receipt.year)  # type: ignore[assignment]
        try:
            with db.session() as session:
                session.add(receipt)
                session.flush()
                session.refresh(receipt)
            return receipt
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
            log.debug("receipt number taken by a concurrent insert; trying again")
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
