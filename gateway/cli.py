"""The ``dutygw`` command: one entry point, subcommands registered by each feature module.

Each module in ``COMMAND_MODULES`` has ``register(subparsers)``; its parsers set
``func(args) -> int``. This is the one place that turns a ``GatewayError`` into a log line
and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import logcontext
from gateway.config import CONFIG_FILE_VARIABLE, Config, load_config
from gateway.errors import GatewayError

log = logging.getLogger("dutygw")

QUIET_LOGGERS = ("alembic", "mail.log", "matplotlib", "PIL")
"""Libraries that log every step at INFO; their warnings still show."""

COMMAND_MODULES: tuple[str, ...] = (
    "gateway.ami.commands",
    "gateway.calls.commands",
    "gateway.commands",
    "gateway.fax.commands",
    "gateway.paging.commands",
    "gateway.report.commands",
    "gateway.web.commands",
    "gateway.spotcheck.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dutygw", description="政务值班室 telephony and fax gateway")
    parser.add_argument("--config", "-c", type=Path, default=None,
                        help="TOML configuration (default: $DUTYGW_CONFIG, else environment only)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """The configuration named by ``--config`` (or ``$DUTYGW_CONFIG``), validated."""
    named = os.environ.get(CONFIG_FILE_VARIABLE)
    path = args.config or (Path(named) if named else None)
    return load_config(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=logcontext.FORMAT,
        stream=sys.stderr,
    )
    logcontext.install()  # each line says which call, receipt or escalation it is about
    if not args.verbose:
        for chatty in QUIET_LOGGERS:
            logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except GatewayError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
