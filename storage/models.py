"""Every table of the gateway, imported in one place so metadata and Alembic see them all."""

from storage.base import Base
from storage.calls import Call, ListenerGap, PhonebookEntry  # noqa: F401
from storage.faxes import InboundMail, Receipt, ReceiptPage
from storage.paging import Escalation, OutboundMail, PageAttempt
from storage.roster import RosterEntry  # noqa: F401
from storage.reports import ReportRun  # noqa: F401

__all__ = ["Base", "Escalation", "InboundMail", "OutboundMail", "PageAttempt", "Receipt", "ReceiptPage"]
