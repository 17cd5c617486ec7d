#!/usr/bin/env python3
"""Mail a fax Asterisk received (or failed to receive) to the gateway's SMTP intake.

Run from the dialplan's hangup handler with ``System()``, so a failed or partial fax is
reported too. Standard library of Python 3.8 or newer only (nothing newer, no third-party
package): it runs on the PBX host's own ``python3`` (Debian 11 has 3.9, Ubuntu 20.04 3.8),
which may not have the gateway installed; ``System()`` discards its stderr, so an import
error would lose faxes silently. ``tests/test_dialplan.py`` runs it under the oldest
Python the machine has. Every fact comes as an option (already filtered to safe characters
by the dialplan) and goes out as an ``X-Fax-*`` header the intake reads:

    dutygw_fax_mail.py --file /var/spool/asterisk/fax/x.tif --status SUCCESS --pages 3 \
        --station "+86 27 8765" --callerid 02787654329 --received 1795332847 ...

The mail is retried for ``--retry-seconds`` (the gateway may be restarting); after that
the TIFF stays where it is and the failure goes to syslog, so nothing is lost silently.
"""

import argparse
import smtplib
import socket
import sys
import syslog
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import List, Optional

HEADERS = {
    "station": "X-Fax-Remote-Station",
    "pages": "X-Fax-Pages",
    "status": "X-Fax-Status",
    "error": "X-Fax-Error",
    "resolution": "X-Fax-Resolution",
    "callerid": "X-Fax-CallerID",
    "received": "X-Fax-Received",
}


def build_message(args: argparse.Namespace) -> EmailMessage:
    message = EmailMessage()
    message["From"] = args.sender
    message["To"] = args.to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid("fax", domain=socket.getfqdn() or "pbx")
    received = _received(args.received)
    for key, header in HEADERS.items():
        value = received if key == "received" else getattr(args, key)
        if value:
            message[header] = value
    status = args.status or "UNKNOWN"
    message["Subject"] = f"Fax from {args.station or args.callerid or 'unknown'}: {status}, {args.pages or 0} pages"
    message.set_content(
        "\n".join(f"{header}: {message[header]}" for header in HEADERS.values() if message[header]) + "\n"
    )
    path = Path(args.file) if args.file else None
    if path is not None and path.is_file() and path.stat().st_size > 0:
        message.add_attachment(path.read_bytes(), maintype="image", subtype="tiff", filename=path.name)
    return message


def _received(epoch: str) -> str:
    """ISO 8601 in UTC from the dialplan's ${EPOCH} (empty when unknown)."""
    try:
        return datetime.fromtimestamp(float(epoch), timezone.utc).isoformat(timespec="seconds")
    except (TypeError, ValueError):
        return ""


def send(message: EmailMessage, host: str, port: int, retry_seconds: float) -> None:
    deadline = time.monotonic() + retry_seconds
    delay = 2.0
    while True:
        try:
            with smtplib.SMTP(host, port, timeout=30) as smtp:
                smtp.send_message(message)
            return
        except (OSError, smtplib.SMTPException) as exc:
            if time.monotonic() + delay > deadline:
                raise
            syslog.syslog(syslog.LOG_WARNING, f"dutygw fax mail to {host}:{port} failed ({exc}); retrying")
            time.sleep(delay)
            delay = min(delay * 2, 60.0)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="")
    for key in HEADERS:
        parser.add_argument(f"--{key}", default="")
    parser.add_argument("--to", default="fax@duty.local")
    parser.add_argument("--sender", default="asterisk-fax@duty.local")
    parser.add_argument("--smtp-host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--retry-seconds", type=float, default=600.0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    message = build_message(args)
    try:
        send(message, args.smtp_host, args.smtp_port, args.retry_seconds)
    except (OSError, smtplib.SMTPException) as exc:
        syslog.syslog(syslog.LOG_ERR, f"dutygw: fax {args.file or '(no file)'} NOT delivered to the gateway: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
