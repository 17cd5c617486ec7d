"""The states stored in the database, as StrEnums: a typo is a type error, not a silent new state.

Plain values with no SQLAlchemy, so the pure cores (call tracker, escalation engine) use them
too; the models store them with ``storage.base.State`` and CHECK constraints (migrations
0007 and 0009).
The stored strings are the members' values.
"""

from __future__ import annotations

from enum import StrEnum


class CallDirection(StrEnum):
    IN = "in"
    """On a duty number."""
    OUT = "out"
    """From a duty extension."""


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    MISSED_ABANDONED = "missed_abandoned"
    """The caller hung up before anyone answered."""
    MISSED_NO_ANSWER = "missed_no_answer"
    MISSED_BUSY = "missed_busy"
    FAILED = "failed"
    FAX = "fax"
    UNKNOWN = "unknown"
    """The gateway lost sight of the call (a gap in the AMI stream)."""


class EscalationState(StrEnum):
    """open → acknowledged | exhausted | stopped (人工停止 from the console) | cancelled."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    EXHAUSTED = "exhausted"
    STOPPED = "stopped"
    """Main's page-stop control (merged after this branch began) closes an escalation so."""
    CANCELLED = "cancelled"


class AttemptResult(StrEnum):
    """planned → sent → answered → acknowledged | not_acknowledged; or no_answer | busy | failed."""

    PLANNED = "planned"
    SENT = "sent"
    ANSWERED = "answered"
    ACKNOWLEDGED = "acknowledged"
    NOT_ACKNOWLEDGED = "not_acknowledged"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    STOPPED = "stopped"
    """The call under way when the leader stopped the page (main's page-stop control)."""


class MailState(StrEnum):
    """pending → sent | failed (kept retrying while pending)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class ReceiptStatus(StrEnum):
    """A fax receipt (来文登记): reading → filed | needs_review → signed."""

    READING = "reading"
    """Numbered; the pages are being read (the urgency decision may already be recorded)."""
    FILED = "filed"
    NEEDS_REVIEW = "needs_review"
    """Filed, but something is doubtful: a person checks it against the original."""
    SIGNED = "signed"
    """签收: a duty officer took it in hand."""


class InboundMailState(StrEnum):
    """An accepted fax mail: spooled → filed | duplicate | quarantined."""

    SPOOLED = "spooled"
    """Durably stored, not yet filed (a restart files it)."""
    FILED = "filed"
    """It became a receipt."""
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


class FilingOutcome(StrEnum):
    """What filing one mail came to (not stored: a receipt's status or the mail's state says it)."""

    FILED = "filed"
    NEEDS_REVIEW = "needs_review"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"
    """Already handled (filed before, or not spooled)."""
