"""``dutygw report``: make any past shift's report again, or print its figures."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="make a shift's report (值班报告) again")
    parser.add_argument("--shift", required=True, metavar="DATE/NAME",
                        help="the shift, e.g. 2026-11-21/night or 2026-11-21/day")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for report.html, report.pdf, calls.xlsx and charts "
                             "(default: <data_dir>/reports/<shift>)")
    parser.add_argument("--format", choices=("files", "json"), default="files",
                        help="json: print the figures only (and write files only with --out)")
    parser.add_argument("--send", action="store_true", help="also queue the mail to [mail] report_recipients")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``--out``: write the files there only; else remake the shift's own folder and its run record."""
    from gateway.cli import config_from_args
    from gateway.clock import SystemClock
    from gateway.report.figures import summary
    from gateway.report.make import write_report
    from gateway.report.publish import publish
    from gateway.report.query import shift_figures
    from storage.db import open_database

    config = config_from_args(args)
    db = open_database(config.database_url)
    try:
        if args.out is not None and not args.send:
            figures = shift_figures(db, config, args.shift)
            files = write_report(figures, config, args.out)
        elif args.format == "files" or args.send:
            made = publish(db, config, args.shift, SystemClock().now(), send=args.send, folder=args.out)
            figures, files = made.figures, made.files
        else:
            figures, files = shift_figures(db, config, args.shift), None
    finally:
        db.dispose()
    if args.format == "json":
        json.dump(summary(figures, config.zone), sys.stdout, ensure_ascii=False, indent=2)
        print()
    elif files is not None:
        print("\n".join(str(files.path(name)) for name in files.names))
    return 0
