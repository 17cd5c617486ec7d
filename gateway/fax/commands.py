"""``dutygw faxes`` and ``dutygw fax show|sign|setaside|ingest``: the duty room's fax register by hand.

The register shows a classified fax's title (it is the duty room's own book); e-mail
never does, and nothing here sends mail.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway import terms
from gateway.clock import SystemClock, local_iso
from gateway.config import Config
from gateway.errors import InputError
from storage import queries
from storage.db import Database, open_database
from storage.faxes import InboundMail, Receipt, set_aside_mail

JSON_FIELDS = ("receipt_no", "received_at", "station", "pages", "doc_number", "issuer", "title",
               "urgency", "classification", "is_urgent", "urgency_reasons", "status")
_STATUS_LABELS = terms.RECEIPT_STATUS


def register(subparsers: Any) -> None:
    faxes = subparsers.add_parser("faxes", help="list fax receipts (来文登记)")
    faxes.add_argument("--format", choices=("table", "json"), default="table")
    faxes.add_argument("--status", choices=tuple(_STATUS_LABELS), default=None)
    faxes.add_argument("--limit", type=int, default=50, help="newest N receipts (0: all)")
    faxes.set_defaults(func=list_command)

    fax = subparsers.add_parser("fax", help="one fax receipt: show, sign, or ingest a file")
    actions = fax.add_subparsers(dest="fax_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="fields and per-page text of receipt N")
    show.add_argument("receipt", help="receipt id or number, e.g. 12 or 传真〔2026〕0012号")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(func=show_command)
    sign = actions.add_parser("sign", help="sign for receipt N (签收)")
    sign.add_argument("receipt")
    sign.add_argument("--by", required=True, help="who signs")
    sign.set_defaults(func=sign_command)
    aside = actions.add_parser("setaside", help="mail set aside (quarantined, duplicates) and why")
    aside.add_argument("--since", default="7d", help="24h, 7d, or a date (default 7d)")
    aside.add_argument("--format", choices=("table", "json"), default="table")
    aside.set_defaults(func=set_aside_command)
    ingest = actions.add_parser("ingest", help="file a .eml, .tif or .pdf by hand")
    ingest.add_argument("file", type=Path)
    ingest.set_defaults(func=ingest_command)


def _open(args: argparse.Namespace) -> tuple[Config, Database]:
    from gateway.cli import config_from_args

    config = config_from_args(args)
    return config, open_database(config.database_url)


# --- faxes -------------------------------------------------------------------------------

def list_command(args: argparse.Namespace) -> int:
    config, db = _open(args)
    with db.session() as session:
        query = select(Receipt).order_by(Receipt.received_at.desc(), Receipt.id.desc())
        if args.status:
            query = query.where(Receipt.status == args.status)
        if args.limit:
            query = query.limit(args.limit)
        rows = [register_row(r, config) for r in session.scalars(query)]
        aside = len(set_aside_mail(session, since=SystemClock().now() - timedelta(days=7)))
    db.dispose()
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        print(_table(rows))
        if aside:
            print(f"\n另有 {aside} 封来信近 7 天未登记（隔离或重复），查看：dutygw fax setaside")
    return 0


# --- fax setaside ----------------------------------------------------------------------------

def set_aside_command(args: argparse.Namespace) -> int:
    from gateway.calls.commands import parse_since

    config, db = _open(args)
    since = parse_since(args.since, SystemClock().now(), config.zone)
    with db.session() as session:
        rows = [set_aside_row(mail, config) for mail in set_aside_mail(session, since=since)]
    db.dispose()
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    print(f"未登记的来信（{args.since} 内）：{len(rows)} 封")
    for row in rows:
        print(f"{row['received_at'][:19].replace('T', ' ')}  {row['kind']}  发件：{row['mail_from'] or '（无）'}"
              f"  来自：{row['peer'] or '（无）'}\n    原因：{row['reason'] or '（未记录）'}\n    留存：{row['spool']}")
    return 0


def set_aside_row(mail: InboundMail, config: Config) -> dict[str, Any]:
    return {"mail_id": mail.id, "received_at": local_iso(mail.received_at, config.zone),
            "kind": terms.SET_ASIDE_KIND.get(mail.state, mail.state), "state": mail.state, "reason": mail.reason,
            "mail_from": mail.mail_from, "peer": mail.peer, "message_id": mail.message_id,
            "spool": mail.spool_path, "size": mail.size}


def register_row(receipt: Receipt, config: Config) -> dict[str, Any]:
    row = {name: getattr(receipt, name) for name in JSON_FIELDS}
    row["received_at"] = local_iso(receipt.received_at, config.zone)
    row["is_urgent"] = bool(receipt.is_urgent)
    row["urgency_reasons"] = list(receipt.urgency_reasons or [])
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    headings = ("登记号", "收文时间", "发送方", "页数", "文号", "来文单位", "标题", "紧急程度", "状态")
    lines = [[r["receipt_no"], (r["received_at"] or "")[:16].replace("T", " "), r["station"] or "",
              str(r["pages"]), r["doc_number"] or "", r["issuer"] or "", _title(r),
              _urgency(r), _STATUS_LABELS.get(r["status"], r["status"])] for r in rows]
    widths = [max([_width(h)] + [_width(line[i]) for line in lines]) for i, h in enumerate(headings)]
    out = ["  ".join(_pad(h, w) for h, w in zip(headings, widths))]
    out += ["  ".join(_pad(cell, w) for cell, w in zip(line, widths)) for line in lines]
    return "\n".join(out) if lines else out[0] + "\n（没有来文）"


def _title(row: dict[str, Any]) -> str:
    title = (row["title"] or "")[:30]
    return f"【{row['classification']}】{title}" if row["classification"] else title


def _urgency(row: dict[str, Any]) -> str:
    mark = row["urgency"] or ""
    return f"{mark}!" if row["is_urgent"] else mark


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


# --- fax show / sign ------------------------------------------------------------------------

def find_receipt(session: Any, key: str) -> Receipt:
    """A receipt by id (``12``) or number (``传真〔2026〕0012号``, also ``2026-12``)."""
    key = key.strip()
    query = select(Receipt).options(selectinload(Receipt.page_texts))
    if key.isdigit():
        receipt = session.scalars(query.where(Receipt.id == int(key))).first()
    else:
        match = re.search(r"(\d{4})\D+0*(\d+)", key)
        receipt = None if match is None else session.scalars(query.where(
            Receipt.year == int(match.group(1)), Receipt.seq == int(match.group(2)))).first()
    if receipt is None:
        raise InputError(f"no fax receipt {key!r}", remedy="list them with: dutygw faxes")
    return receipt


def show_command(args: argparse.Namespace) -> int:
    config, db = _open(args)
    with db.session() as session:
        receipt = find_receipt(session, args.receipt)
        details = receipt_details(receipt, config)
    db.dispose()
    if args.format == "json":
        print(json.dumps(details, ensure_ascii=False, indent=1))
    else:
        print(_details_text(details))
    return 0


def receipt_details(receipt: Receipt, config: Config) -> dict[str, Any]:
    details = register_row(receipt, config)
    details.update(
        id=receipt.id, sender_number=receipt.sender_number, copy_no=receipt.copy_no,
        recipients=receipt.recipients, doc_date=receipt.doc_date, sender=receipt.sender,
        secrecy_period=receipt.secrecy_period, possibly_urgent=receipt.possibly_urgent,
        urgency_decided_at=local_iso(receipt.urgency_decided_at, config.zone),
        received_time_source=receipt.received_time_source, original=receipt.original_path,
        resolution=f"{receipt.dpi_x}×{receipt.dpi_y} dpi" if receipt.dpi_x and receipt.dpi_y else None,
        ocr_engine=receipt.ocr_engine, ocr_confidence=receipt.ocr_confidence,
        review_reasons=list(receipt.review_reasons or []), filed_at=local_iso(receipt.filed_at, config.zone),
        signed_by=receipt.signed_by, signed_at=local_iso(receipt.signed_at, config.zone),
        page_texts=[{"page": p.page_no, "confidence": p.confidence, "error": p.error, "text": p.text}
                    for p in receipt.page_texts],
    )
    return details


_LABELS = (("receipt_no", "登记号"), ("received_at", "收文时间"), ("station", "发送方"),
           ("sender_number", "主叫号码"), ("pages", "页数"), ("resolution", "分辨率"), ("doc_number", "文号"), ("issuer", "来文单位"),
           ("title", "标题"), ("urgency", "紧急程度"), ("is_urgent", "紧急"), ("possibly_urgent", "可能紧急"),
           ("classification", "密级"), ("secrecy_period", "保密期限"), ("copy_no", "份号"),
           ("recipients", "主送"), ("doc_date", "成文日期"), ("status", "状态"),
           ("review_reasons", "待核对原因"), ("ocr_confidence", "识别置信度"), ("original", "原件"),
           ("signed_by", "签收人"), ("signed_at", "签收时间"))


def _details_text(details: dict[str, Any]) -> str:
    shown = {**details, "status": terms.word(terms.RECEIPT_STATUS, details.get("status"))}
    out = [f"{label}: {_show(shown[key])}" for key, label in _LABELS if shown.get(key) not in (None, "", [])]
    for reason in details["urgency_reasons"]:
        rule = terms.word(terms.URGENCY_RULE, reason.get("rule"))
        out.append(f"  紧急依据: {rule} 「{reason.get('word')}」 {reason.get('where')}")
    for page in details["page_texts"]:
        out.append(f"\n--- 第 {page['page']} 页 ---" + (f" （{page['error']}）" if page["error"] else ""))
        out.append(page["text"])
    return "\n".join(out)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    return str(value)


def sign_command(args: argparse.Namespace) -> int:
    config, db = _open(args)
    now = SystemClock().now()
    if not args.by.strip():
        raise InputError("--by must name who signs")
    with db.session() as session:
        receipt = find_receipt(session, args.receipt)
        if not queries.sign_receipt(session, receipt.id, args.by, now):
            raise InputError(f"{receipt.receipt_no} was already signed by {receipt.signed_by}")
        print(f"{receipt.receipt_no} 已由 {receipt.signed_by} 签收（{local_iso(now, config.zone)}）")
    db.dispose()
    return 0


# --- fax ingest ------------------------------------------------------------------------------

def ingest_command(args: argparse.Namespace) -> int:
    from gateway.fax.filing import Filer
    from gateway.fax.service import default_reader_factory
    from gateway.fax.spool import Arrival, Spool, accept

    path: Path = args.file
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    config, db = _open(args)
    clock = SystemClock()
    suffix = ".eml" if path.suffix.lower() in (".eml", ".msg", ".mail") else path.suffix.lower() or ".bin"
    mail_id = accept(db, Spool(config.paths.data_dir / "spool"), path.read_bytes(),
                     Arrival(clock.now(), peer=f"file:{path.name}"), suffix)
    print(f"正在识别 {path.name}（每页需数秒）……", file=sys.stderr, flush=True)
    result = Filer(config, db, clock, default_reader_factory(config)).file(mail_id)
    if result.receipt_id is not None:
        with db.session() as session:
            receipt = find_receipt(session, str(result.receipt_id))
            print(f"{receipt.receipt_no} {_STATUS_LABELS.get(receipt.status, receipt.status)}"
                  + (f": {'；'.join(receipt.review_reasons)}" if receipt.review_reasons else ""))
    else:
        print(f"{path.name}: {terms.word(terms.MAIL_STATE, result.outcome, default=result.outcome)}"
              f"（{result.reason}）", file=sys.stderr)
    db.dispose()
    return 0 if result.receipt_id is not None else 1
