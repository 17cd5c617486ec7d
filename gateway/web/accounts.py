"""Accounts and sign-in: argon2 hashes, sessions in the database, throttled logins.

Sessions and failed logins live in the database (not in one process's memory), so the
console served by ``dutygw run`` and a second one started with ``dutygw web`` agree on
who is signed in and on how many wrong passwords a name has had.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gateway.errors import InputError
from storage.console import ROLES, AuditEntry, User, WebSession
from storage.queries import audit

HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes)."""
FREE_FAILURES = 4
"""Wrong passwords a name may have (within ``FAILURE_WINDOW``) before logins are slowed."""
FAILURE_WINDOW = timedelta(minutes=15)
BASE_LOCKOUT = timedelta(seconds=30)
MAX_LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Account:
    """The signed-in user as a page sees them (an immutable value, not the row)."""

    id: int
    name: str
    display_name: str
    role: str
    extension: str | None
    csrf_token: str

    @property
    def label(self) -> str:
        return self.display_name or self.name


def add_user(session: Session, name: str, role: str, password: str, now: datetime, *,
             display_name: str = "", extension: str | None = None, actor: str = "cli") -> User:
    name = name.strip()
    if not name:
        raise InputError("the user name is empty")
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}", remedy=f"use one of: {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise InputError(f"user {name!r} already exists")
    user = User(name=name, role=role, password_hash=HASHER.hash(password), display_name=display_name,
                extension=extension or None, active=True, created_at=now)
    session.add(user)
    audit(session, now, actor, "user.add", f"user:{name}", {}, {"role": role, "extension": extension or ""})
    return user


def lockout_left(session: Session, name: str, now: datetime) -> timedelta | None:
    """How long ``name`` must wait before trying again, or None (no wait)."""
    since = now - FAILURE_WINDOW
    failures, last = session.execute(
        select(func.count(AuditEntry.id), func.max(AuditEntry.at))
        .where(AuditEntry.action == "login.failed", AuditEntry.target == f"user:{name}", AuditEntry.at >= since)
    ).one()
    if failures <= FREE_FAILURES or last is None:
        return None
    wait = min(BASE_LOCKOUT * 2 ** (failures - FREE_FAILURES - 1), MAX_LOCKOUT)
    from gateway.clock import as_utc

    left = as_utc(last) + wait - now
    return left if left > timedelta(0) else None


def check_password(session: Session, name: str, password: str, now: datetime, address: str) -> User | None:
    """The user if the password is right; a wrong one is audited (and counts towards the lockout)."""
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is not None and _verify(user.password_hash, password):
        if HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = HASHER.hash(password)
        audit(session, now, name, "login", f"user:{name}", address=address)
        return user
    audit(session, now, name or "?", "login.failed", f"user:{name}", address=address)
    return None


def _verify(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def open_session(session: Session, user: User, now: datetime, hours: float, address: str) -> str:
    """A new session; returns the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_sha256=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                           created_at=now, expires_at=now + timedelta(hours=hours), address=address))
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    return token


def account_for(session: Session, token: str | None, now: datetime) -> Account | None:
    if not token:
        return None
    row = session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id)
        .where(WebSession.token_sha256 == _digest(token), WebSession.expires_at > now, User.active.is_(True))
    ).first()
    if row is None:
        return None
    web, user = row
    return Account(user.id, user.name, user.display_name, user.role, user.extension, web.csrf_token)


def close_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_sha256 == _digest(token)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
