"""交接班 sheets: the open items of a shift, generated from the database, signed twice.

A sheet's items are live until the outgoing officer signs: then they are frozen as they
stood. The next shift's sheet starts from every item of the last signed sheet that is
still open (a missed call not handled, a receipt not signed, a page not acknowledged, a
written item not marked done), plus what has opened since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.calls import Call
from storage.console import HandoverSheet
from storage.faxes import Receipt
from storage.paging import Escalation
from storage.queries import audit, open_items
from storage.states import ReceiptStatus

CLOSED_PAGE_STATES = ("acknowledged", "cancelled", "stopped")
"""A page stopped by the leader on duty (人工停止) is closed: a person decided, nothing is left open."""


def sheet(session: Session, shift_key: str) -> HandoverSheet | None:
    return session.scalar(select(HandoverSheet).where(HandoverSheet.shift_key == shift_key))


def previous_sheet(session: Session, shift_key: str) -> HandoverSheet | None:
    query = (select(HandoverSheet).where(HandoverSheet.shift_key < shift_key, HandoverSheet.outgoing_by.is_not(None))
             .order_by(HandoverSheet.shift_key.desc()).limit(1))
    return session.scalar(query)


def live_items(session: Session, shift_key: str, now: datetime, zone: Any) -> list[dict[str, Any]]:
    """What the sheet lists now: carried-over open items first, then what opened since."""
    items: dict[str, dict[str, Any]] = {}
    before = previous_sheet(session, shift_key)
    for item in (before.items if before is not None else []):
        if not is_closed(session, item, None):
            items[_key(item)] = {**item, "carried": True}
    current = open_items(session, now)
    for call, note in current.missed:
        who = (note.caller_name if note and note.caller_name else call.caller_name) or ""
        when = call.arrived_at.astimezone(zone).strftime("%m-%d %H:%M") if call.arrived_at else ""
        matter = f"，事由：{note.matter}" if note and note.matter else ""
        state = "回拨未接通" if call.called_back_at else "未回拨"
        items.setdefault(f"call:{call.id}", {"kind": "call", "ref": call.id,
                                             "text": f"{when} 未接来电 {call.caller} {who}（{state}）{matter}"})
    for receipt in current.unsigned:
        when = receipt.received_at.astimezone(zone).strftime("%m-%d %H:%M")
        mark = receipt.urgency or ("密件" if receipt.classification else "")
        items.setdefault(f"receipt:{receipt.id}", {"kind": "receipt", "ref": receipt.id,
                                                   "text": f"{when} 来文 {receipt.receipt_no} {mark} 未签收"})
    for page in current.pages:
        if page.state in CLOSED_PAGE_STATES:
            continue
        when = page.opened_at.astimezone(zone).strftime("%m-%d %H:%M")
        items.setdefault(f"page:{page.id}", {"kind": "page", "ref": page.id,
                                             "text": f"{when} 紧急呼叫 #{page.id} 未确认（{page.state}）"})
    own = sheet(session, shift_key)
    for item in (own.items if own is not None else []):
        if item.get("kind") == "note":
            items[_key(item)] = {**items.get(_key(item), {}), **item}
    return list(items.values())


def is_closed(session: Session, item: dict[str, Any], done_notes: set[str] | None) -> bool:
    kind, ref = item.get("kind"), item.get("ref")
    if kind == "call":
        call = session.get(Call, ref)
        return call is None or call.closed_by_call_id is not None
    if kind == "receipt":
        receipt = session.get(Receipt, ref)
        return receipt is None or receipt.status == ReceiptStatus.SIGNED
    if kind == "page":
        page = session.get(Escalation, ref)
        return page is None or page.state in CLOSED_PAGE_STATES
    return bool(item.get("closed")) or (done_notes is not None and _key(item) in done_notes)


def save_notes(session: Session, shift_key: str, notes: str, log_entries: str, todo: list[str],
               done: set[str], actor: str, at: datetime, address: str = "") -> HandoverSheet:
    """The outgoing officer's notes, 值班日志 and written items; refused once signed."""
    row = sheet(session, shift_key) or _new(session, shift_key)
    if row.outgoing_by is not None:
        raise PermissionError("the sheet is signed; it can no longer be changed")
    notes_items = [i for i in row.items if i.get("kind") == "note"]
    before = previous_sheet(session, shift_key)
    carried = [i for i in (before.items if before else []) if i.get("kind") == "note" and not i.get("closed")]
    kept = {_key(i): {**i, "closed": _key(i) in done} for i in carried + notes_items}
    for text in todo:
        item = {"kind": "note", "ref": f"{shift_key}:{len(kept) + 1}", "text": text, "closed": False}
        kept[_key(item)] = item
    old = {"notes": row.notes, "log_entries": row.log_entries}
    row.items = list(kept.values())
    row.notes, row.log_entries = notes, log_entries
    row.revision += 1
    audit(session, at, actor, "handover.save", f"handover:{shift_key}", old,
          {"notes": notes, "log_entries": log_entries, "todo": todo, "done": sorted(done)}, address)
    return row


def sign(session: Session, shift_key: str, actor: str, at: datetime, zone: Any, address: str = "") -> str:
    """The outgoing officer signs first (freezing the items), then a different incoming officer."""
    row = sheet(session, shift_key) or _new(session, shift_key)
    if row.outgoing_by is None:
        row.items = [{**i, "closed": is_closed(session, i, None)} for i in live_items(session, shift_key, at, zone)]
        row.items = [i for i in row.items if not i["closed"]]
        row.outgoing_by, row.outgoing_at = actor, at
        audit(session, at, actor, "handover.sign_outgoing", f"handover:{shift_key}", {}, {"items": len(row.items)},
              address)
        return "outgoing"
    if row.incoming_by is not None:
        raise PermissionError("the sheet is already signed by both officers")
    if actor == row.outgoing_by:
        raise PermissionError("the incoming officer must be someone else")
    row.incoming_by, row.incoming_at = actor, at
    audit(session, at, actor, "handover.sign_incoming", f"handover:{shift_key}", {}, {}, address)
    return "incoming"


def _new(session: Session, shift_key: str) -> HandoverSheet:
    row = HandoverSheet(shift_key=shift_key, items=[], notes="", log_entries="", revision=0)
    session.add(row)
    session.flush()
    return row


def _key(item: dict[str, Any]) -> str:
    return f"{item.get('kind')}:{item.get('ref')}"
