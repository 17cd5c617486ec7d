"""States are StrEnums: the model refuses a value that is not one, and so does the database
(the CHECK constraints of migrations 0007 and 0009); the stored strings are the ones stored before."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from gateway.clock import UTC
from storage.calls import Call
from storage.db import Database
from storage.faxes import InboundMail, Receipt, ReceiptPage
from storage.paging import Escalation, OutboundMail, PageAttempt
from storage.states import (
    AttemptResult,
    CallDirection,
    CallOutcome,
    EscalationState,
    InboundMailState,
    MailState,
    ReceiptStatus,
)

NOW = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
BAD_ROWS = {
    "calls direction": "INSERT INTO calls (linkedid, direction, caller, caller_withheld, complete, time_source) "
                       "VALUES ('x.1', 'inn', '8001', false, false, 'pbx')",
    "calls outcome": "INSERT INTO calls (linkedid, direction, caller, caller_withheld, complete, time_source, "
                     "outcome) VALUES ('x.2', 'in', '8001', false, false, 'pbx', 'anwsered')",
    "escalations state": "INSERT INTO escalations (opened_at, deadline_at, state, receipt_ids, chain) "
                         "VALUES (:now, :now, 'opened', '[]', '[]')",
    "outbound_mail state": "INSERT INTO outbound_mail (kind, created_at, due_at, recipients, subject, body, "
                           "attachments, receipt_ids, state, tries) "
                           "VALUES ('report', :now, :now, '[]', 's', 'b', '[]', '[]', 'queued', 0)",
    "receipts status": "INSERT INTO receipts (year, seq, received_at, received_time_source, pages, is_urgent, "
                       "possibly_urgent, urgency_reasons, review_reasons, status) "
                       "VALUES (2026, 1, :now, 'mail', 1, false, false, '[]', '[]', 'needs-review')",
    "inbound_mail state": "INSERT INTO inbound_mail (received_at, spool_path, sha256, mail_from, rcpt_to, peer, "
                          "size, state) VALUES (:now, 'p', 's', '', '', '', 0, 'spoolled')",
}


def test_rows_keep_the_same_strings_and_read_back_as_members(any_database: Database) -> None:
    with any_database.session() as s:
        s.add(Call(linkedid="1700000000.1", direction=CallDirection.IN, caller="02788880000",
                   outcome=CallOutcome.MISSED_BUSY, complete=True, time_source="pbx"))
        s.add(OutboundMail(kind="report", created_at=NOW, due_at=NOW, subject="s", body="b", state="pending"))
    with any_database.engine.connect() as connection:
        assert connection.execute(text("SELECT direction, outcome FROM calls")).one() == ("in", "missed_busy")
        assert connection.execute(text("SELECT state FROM outbound_mail")).scalar() == "pending"
    with any_database.session() as s:
        call = s.scalars(select(Call)).one()
        assert call.outcome is CallOutcome.MISSED_BUSY and call.direction is CallDirection.IN
        assert s.scalars(select(OutboundMail.state)).one() is MailState.PENDING
        assert s.scalar(select(Call.id).where(Call.outcome == "missed_busy")) == call.id  # plain strings still query


def test_the_model_refuses_a_misspelt_state(database: Database) -> None:
    with pytest.raises(StatementError, match="'opened' is not a valid EscalationState"):
        with database.session() as s:
            s.add(Escalation(opened_at=NOW, deadline_at=NOW, state="opened"))
    with database.session() as s:
        assert s.scalars(select(Escalation)).all() == []  # nothing half-written


@pytest.mark.parametrize("what", sorted(BAD_ROWS))
def test_the_database_refuses_a_value_that_is_no_state(any_database: Database, what: str) -> None:
    with pytest.raises(IntegrityError, match=f"ck_{what.replace(' ', '_')}"):
        with any_database.engine.begin() as connection:
            connection.execute(text(BAD_ROWS[what]), {"now": NOW.replace(tzinfo=None)})


def test_the_attempt_result_is_checked_too(any_database: Database) -> None:
    with any_database.session() as s:
        row = Escalation(opened_at=NOW, deadline_at=NOW, state=EscalationState.OPEN)
        s.add(row)
        s.flush()
        s.add(PageAttempt(escalation_id=row.id, step=0, try_no=1, role="带班领导", name="", number="8001",
                          action_id="a-1", planned_at=NOW, result=AttemptResult.PLANNED))
    with pytest.raises(IntegrityError, match="ck_page_attempts_result"):
        with any_database.engine.begin() as connection:
            connection.execute(text("UPDATE page_attempts SET result = 'rang'"))


def test_migration_0007_goes_down_and_up_again_keeping_the_attempts(database: Database) -> None:
    """0007 copies ``escalations`` on SQLite: with foreign keys on, dropping the old table
    deleted every page attempt (ON DELETE CASCADE). ``Database.migrating`` turns them off."""
    with database.migrating() as config:
        command.downgrade(config, "0006")
        connection = config.attributes["connection"]
        connection.execute(text("INSERT INTO outbound_mail (kind, created_at, due_at, recipients, subject, body, "
                                "attachments, receipt_ids, state, tries) VALUES "
                                "('report', '2026-11-21', '2026-11-21', '[]', 's', 'b', '[]', '[]', 'sent', 0)"))
        connection.execute(text("INSERT INTO escalations (id, opened_at, deadline_at, state, receipt_ids, chain) "
                                "VALUES (5, '2026-11-21', '2026-11-21', 'acknowledged', '[1]', '[]')"))
        connection.execute(text("INSERT INTO page_attempts (escalation_id, round, step, try_no, role, name, number, "
                                "action_id, planned_at, receipt_ids, result) VALUES "
                                "(5, 0, 0, 1, '带班领导', '', '8001', 'a-5', '2026-11-21', '[1]', 'acknowledged')"))
        command.upgrade(config, "head")
        assert connection.execute(text("SELECT state FROM outbound_mail")).scalar() == "sent"
        assert connection.execute(text("SELECT escalation_id, result FROM page_attempts")).all() == [
            (5, "acknowledged")]


MIGRATED_ENUMS = {
    "0007_state_checks": {("calls", "direction"): CallDirection, ("calls", "outcome"): CallOutcome,
                          ("escalations", "state"): EscalationState,
                          ("page_attempts", "result"): AttemptResult,
                          ("outbound_mail", "state"): MailState},
    "0009_receipt_mail_checks": {("receipts", "status"): ReceiptStatus,
                                 ("inbound_mail", "state"): InboundMailState},
}


@pytest.mark.parametrize("name", sorted(MIGRATED_ENUMS))
def test_a_check_migration_lists_exactly_the_enums_values(name: str) -> None:
    """The migration lists the values as they stood (it must not import them); they agree today."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / f"storage/migrations/versions/{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    listed = {(table, column): values for table, columns in migration.CHECKS.items() for column, values in columns.items()}
    assert listed == {key: tuple(enum) for key, enum in MIGRATED_ENUMS[name].items()}


def test_receipt_and_mail_keep_their_strings_and_read_back_as_members(any_database: Database) -> None:
    with any_database.session() as s:
        mail = InboundMail(received_at=NOW, spool_path="p", sha256="s", state=InboundMailState.FILED)
        s.add(mail)
        s.flush()
        s.add(Receipt(year=2026, seq=1, mail_id=mail.id, received_at=NOW, status="needs_review"))
    with any_database.engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM receipts")).scalar() == "needs_review"
        assert connection.execute(text("SELECT state FROM inbound_mail")).scalar() == "filed"
    with any_database.session() as s:
        assert s.scalars(select(Receipt.status)).one() is ReceiptStatus.NEEDS_REVIEW
        assert s.scalars(select(InboundMail.state)).one() is InboundMailState.FILED


def test_migration_0009_goes_down_and_up_keeping_the_rows_that_refer_to_receipts(
        any_database: Database) -> None:
    """On SQLite a CHECK is added by copying the table, dropping and renaming it: with foreign
    keys on, the drop would delete a receipt's pages (ON DELETE CASCADE) or fail on the mail a
    receipt refers to. ``Database.migrating`` turns them off while it runs."""
    any_database.migrate("0008")
    with any_database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO inbound_mail (id, received_at, spool_path, sha256, mail_from, rcpt_to, peer, size, state) "
            "VALUES (7, :now, 'p', 's', '', '', '', 0, 'filed')"), {"now": NOW.replace(tzinfo=None)})
        connection.execute(text(
            "INSERT INTO receipts (id, year, seq, mail_id, received_at, received_time_source, pages, is_urgent, "
            "possibly_urgent, urgency_reasons, review_reasons, status) "
            "VALUES (3, 2026, 1, 7, :now, 'mail', 2, false, false, '[]', '[]', 'signed')"),
            {"now": NOW.replace(tzinfo=None)})
        connection.execute(text("INSERT INTO receipt_pages (receipt_id, page_no, text, lines) "
                                "VALUES (3, 1, '第一页', '[]'), (3, 2, '第二页', '[]')"))
    any_database.migrate()
    with any_database.migrating() as config:
        command.downgrade(config, "0008")
    any_database.migrate()
    with any_database.session() as s:
        receipt = s.scalars(select(Receipt)).one()
        assert (receipt.id, receipt.mail_id, receipt.status) == (3, 7, ReceiptStatus.SIGNED)
        assert [p.text for p in s.scalars(select(ReceiptPage).order_by(ReceiptPage.page_no))] == [
            "第一页", "第二页"]
        assert s.scalars(select(InboundMail.state)).one() is InboundMailState.FILED
    with pytest.raises(IntegrityError, match="ck_receipts_status"), any_database.engine.begin() as connection:
        connection.execute(text("UPDATE receipts SET status = 'read'"))
