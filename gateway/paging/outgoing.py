"""What paging puts in the outbox: the urgent notice to the secretariat and the night digests.

``queue_urgent_notice`` and ``queue_due_digests`` turn receipts into queued notices
(``gateway.outbox.queue_mail``); the daemon gives ``queue_due_digests`` to the outbox's
``MailService`` as a queuer, run at every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Config
from gateway.outbox import queue_mail
from gateway.paging.notices import NIGHT_DIGEST, night_digest_mail, urgent_notice_mail
from gateway.paging.policy import ReceiptFacts, decide
from gateway.shifts.calendar import Shift, shifts_between
from storage.faxes import Receipt
from storage.paging import OutboundMail
from storage.states import ReceiptStatus

log = logging.getLogger("dutygw.paging.outgoing")

DIGEST_LOOKBACK = timedelta(days=1)
"""How far back a (re)started gateway looks for shifts whose digest was not queued yet."""
DIGEST_GRACE = timedelta(minutes=15)
"""How long a digest waits for faxes of its shift still being read."""


def receipt_notice_key(receipt_id: int) -> str:
    """The one immediate notice of a receipt (day shift, or paging switched off)."""
    return f"receipt:{receipt_id}"


def escalation_notice_key(escalation_id: int, receipt_ids: Sequence[int]) -> str:
    """The secretariat's notice for an escalation nobody could be reached for, per set of receipts."""
    return f"escalation:{escalation_id}:" + ",".join(str(r) for r in sorted(set(receipt_ids)))


def queue_urgent_notice(session: Session, receipts: Sequence[Receipt], config: Config, now: datetime,
                        shift_key: str | None = None, key: str | None = None) -> OutboundMail:
    """The immediate mail to the secretariat for urgent faxes (day shift, paging off, or nobody
    reachable); ``key`` defaults to the receipt's own when there is one receipt."""
    if key is None and len(receipts) == 1:
        key = receipt_notice_key(receipts[0].id)
    notice = urgent_notice_mail(receipts, room_name=config.duty.room_name, room_phone=config.duty.room_phone,
                                tz=config.zone, shift_key=shift_key)
    return queue_mail(session, notice, config.mail.secretariat, now, key=key)


def queue_due_digests(session: Session, config: Config, now: datetime,
                      lookback: timedelta = DIGEST_LOOKBACK) -> list[OutboundMail]:
    """Queue the digest of every off-hours shift that has ended and has ordinary faxes.

    The digest's receipts are found again by ``decide`` (pure, so the same answer as when
    each fax arrived); a shift gets one digest, whatever the outcome of sending it.
    """
    queued = []
    for shift in shifts_between(now - lookback, now, config.calendar, config.zone):
        if not shift.off_hours or shift.end > now or _digest_exists(session, shift.key):
            continue
        receipts = _shift_receipts(session, shift)
        if not digest_ready(shift, now, [r.status for r in receipts]):
            continue
        listed = [r for r in receipts if decide(ReceiptFacts.of(r), shift, config.paging).digest]
        if listed:
            notice = night_digest_mail(listed, shift, room_name=config.duty.room_name,
                                       room_phone=config.duty.room_phone, tz=config.zone)
            queued.append(queue_mail(session, notice, config.mail.secretariat, now))
            log.info("digest of shift %s queued (%d faxes)", shift.key, len(listed))
    return queued


def digest_ready(shift: Shift, now: datetime, statuses: Sequence[str]) -> bool:
    """A fax that came at 07:59 is still being read at 08:00: wait for it, but not for ever."""
    still_reading = any(status == ReceiptStatus.READING for status in statuses)
    return now >= shift.end and (not still_reading or now >= shift.end + DIGEST_GRACE)


def _digest_exists(session: Session, shift_key: str) -> bool:
    query = select(OutboundMail.id).where(OutboundMail.kind == NIGHT_DIGEST, OutboundMail.shift_key == shift_key)
    return session.scalar(query.limit(1)) is not None


def _shift_receipts(session: Session, shift: Shift) -> list[Receipt]:
    query = select(Receipt).where(Receipt.received_at >= shift.start, Receipt.received_at < shift.end)
    return list(session.scalars(query.order_by(Receipt.received_at, Receipt.id)))
