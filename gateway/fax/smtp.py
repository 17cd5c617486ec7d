"""The SMTP edge: an aiosmtpd handler that takes fax mail for our own addresses only.

Policy lives in the hooks (the string a hook returns is the reply). ``handle_DATA``
answers ``250`` only after ``store`` has put the message on disk and in the database;
any failure there is ``451`` so the fax server keeps the mail and tries again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import SmtpConfig

log = logging.getLogger("dutygw.fax.smtp")

ACCEPTED = "250 2.0.0 OK: fax mail queued for filing"
OK = "250 2.1.0 OK"
NOT_OURS = "550 5.1.1 Recipient not accepted: this server takes fax mail only, it is not a relay"
PEER_REFUSED = "554 5.7.1 Your address is not allowed to send fax mail here"
TRY_LATER = "451 4.3.0 Cannot store the message now; please try again later"
NO_RECIPIENT = "554 5.5.1 No valid recipients"

Store = Callable[[bytes, Envelope, str], Awaitable[int]]
"""Durably keeps one message; returns the ``InboundMail`` id."""


class FaxIntakeHandler:
    def __init__(self, config: SmtpConfig, store: Store) -> None:
        self._recipients = {address.strip().lower() for address in config.recipients}
        self._networks = [ipaddress.ip_network(cidr, strict=False) for cidr in config.allowed_networks]
        self._store = store

    def peer_allowed(self, peer: Any) -> bool:
        if not self._networks:
            return True
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if not self.peer_allowed(session.peer):
            log.warning("refused mail from %s: peer not in smtp.allowed_networks", session.peer)
            return PEER_REFUSED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return OK

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.strip().lower() not in self._recipients:
            log.warning("refused recipient %s from %s (not a relay)", address, session.peer)
            return NOT_OURS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not envelope.rcpt_tos:
            return NO_RECIPIENT
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            mail_id = await self._store(raw, envelope, _peer_text(session.peer))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not store a %d-byte message from %s; answered 451", len(raw), session.peer)
            return TRY_LATER
        log.info("accepted inbound mail %d (%d bytes) from %s", mail_id, len(raw), session.peer)
        return ACCEPTED


def make_smtp(handler: FaxIntakeHandler, config: SmtpConfig) -> SMTP:
    """One SMTP protocol instance per connection, with the size limit enforced by aiosmtpd."""
    return SMTP(
        handler,
        data_size_limit=config.max_message_bytes,
        enable_SMTPUTF8=True,
        decode_data=False,
        hostname="dutygw",
        ident="dutygw fax intake",
    )


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
