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

ALWAYS_QUIET_LOGGERS = ("mail.log",)
"""Quiet even with ``-v``: aiosmtpd logs every DATA line at DEBUG, so a classified fax's
TIFF could be rebuilt from the log (issue 8.10)."""

UMASK = 0o027
"""What the gateway writes is 0750 folders / 0640 files: faxes and call records are not
for every account on the host (the systemd unit sets the same)."""

BROKEN_PIPE_EXIT = 141
"""``dutygw fax show 2 | head``: the reader went away; exit as a shell does on SIGPIPE."""

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
    for chatty in QUIET_LOGGERS if not args.verbose else ALWAYS_QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    os.umask(UMASK)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader gone away shows here, not in the interpreter's last flush
        return code
    except GatewayError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE_EXIT


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
