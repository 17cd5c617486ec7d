"""Every table of the gateway, imported in one place so metadata and Alembic see them all."""

from storage.base import Base
from storage.calls import Call, ListenerGap, PhonebookEntry
from storage.console import (
    AuditEntry,
    CallbackRequest,
    CallNote,
    HandoverSheet,
    ReceiptCorrection,
    ReceiptDelivery,
    User,
    WebSession,
)
from storage.faxes import InboundMail, Receipt, ReceiptPage
from storage.paging import Escalation, OutboundMail, PageAttempt, PagingRequest
from storage.reports import ReportRun
from storage.roster import RosterEntry
from storage.spotcheck import SpotAttempt, SpotCheck, SpotNote, SpotPlan, SpotUnit

__all__ = [
    "AuditEntry",
    "Base",
    "Call",
    "CallNote",
    "CallbackRequest",
    "Escalation",
    "HandoverSheet",
    "InboundMail",
    "ListenerGap",
    "OutboundMail",
    "PageAttempt",
    "PagingRequest",
    "PhonebookEntry",
    "Receipt",
    "ReceiptCorrection",
    "ReceiptDelivery",
    "ReceiptPage",
    "ReportRun",
    "RosterEntry",
    "SpotAttempt",
    "SpotCheck",
    "SpotNote",
    "SpotPlan",
    "SpotUnit",
    "User",
    "WebSession",
]
