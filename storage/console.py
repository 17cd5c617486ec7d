"""What duty staff add through the console: accounts, sessions, the audit log, call notes,
corrections and sign-offs of receipts, and the handover sheets.

Nothing here overwrites what the gateway recorded: a call's 事由 lives in ``CallNote``
beside the ``Call`` row the recorder keeps upserting, and a corrected receipt field lives
in ``ReceiptCorrection`` beside the machine's reading, so misreadings can be counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.base import Base, UTCDateTime

ROLES = ("officer", "leader", "secretariat", "admin")
ROLE_LABELS = {"officer": "值班员", "leader": "带班领导", "secretariat": "秘书科", "admin": "系统管理员"}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    """The login name; also what the console writes as who signed, edited or called back."""
    display_name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id, as argon2-cffi's PasswordHasher writes it (parameters included)."""
    extension: Mapped[str | None] = mapped_column(String(30))
    """The officer's desk phone: a callback rings it first."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser; the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    address: Mapped[str] = mapped_column(String(100), default="")


class AuditEntry(Base):
    """Every change made through the console or the staff CLI: who, when, what, old → new."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50), index=True)
    """e.g. call.note, call.callback, receipt.correct, receipt.sign, user.add, login.failed."""
    target: Mapped[str] = mapped_column(String(100), default="")
    """e.g. call:17, receipt:3, user:zhangsan."""
    old: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    new: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    address: Mapped[str] = mapped_column(String(100), default="")


class CallNote(Base):
    """What the officer wrote about a call; the recorder never touches this row."""

    __tablename__ = "call_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    caller_unit: Mapped[str] = mapped_column(String(200), default="")
    matter: Mapped[str] = mapped_column(Text, default="")
    """事由."""
    handling: Mapped[str] = mapped_column(Text, default="")
    """处理情况."""
    instruction: Mapped[str] = mapped_column(Text, default="")
    """领导批示."""
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallbackRequest(Base):
    """A callback started from the console (AMI Originate from the officer's extension)."""

    __tablename__ = "callback_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    extension: Mapped[str] = mapped_column(String(30))
    number: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[str] = mapped_column(String(80), unique=True)
    result: Mapped[str] = mapped_column(String(20), default="sent")
    """sent → queued | refused (the PBX's answer to the Originate)."""
    detail: Mapped[str | None] = mapped_column(Text)


class ReceiptCorrection(Base):
    """An officer's reading of one field, kept beside the machine's."""

    __tablename__ = "receipt_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipts.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(30))
    machine_value: Mapped[str | None] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    corrected_by: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReceiptDelivery(Base):
    """分送: to whom a receipt was passed on, by whom and when."""

    __tablename__ = "receipt_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("receipts.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    delivered_by: Mapped[str] = mapped_column(String(100))
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HandoverSheet(Base):
    """交接班: one per shift, signed by the outgoing and then the incoming officer."""

    __tablename__ = "handover_sheets"
    __table_args__ = (UniqueConstraint("shift_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_key: Mapped[str] = mapped_column(String(30))
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """[{"kind", "ref", "text", "closed"}]: the open items at signing, carried over if not closed."""
    notes: Mapped[str] = mapped_column(Text, default="")
    log_entries: Mapped[str] = mapped_column(Text, default="")
    """值班日志 entries of the shift, one per line."""
    outgoing_by: Mapped[str | None] = mapped_column(String(100))
    outgoing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    incoming_by: Mapped[str | None] = mapped_column(String(100))
    incoming_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=0)


def display_names(session: Session) -> dict[str, str]:
    """Login name → the name staff read (王芳 for wangfang); users without one keep their login."""
    rows = session.execute(select(User.name, User.display_name))
    return {name: shown or name for name, shown in rows}


def person(names: dict[str, str], login: str | None) -> str:
    """What a sheet shows for who signed or edited: the display name of a known login, else as written."""
    if not login:
        return ""
    return names.get(login, login)
