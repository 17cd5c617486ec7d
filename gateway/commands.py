"""``dutygw run`` and ``dutygw demo``: the daemon from the command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from gateway.cli import config_from_args
from gateway.config import Config

log = logging.getLogger("dutygw")


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the gateway daemon (SIGTERM stops it cleanly)")
    run.add_argument("--config", "-c", dest="run_config", type=Path, default=None,
                     help="TOML configuration (same as the global --config)")
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="play a recorded night through the real daemon (no PBX needed)")
    demo.add_argument("--out", type=Path, default=None, help="folder for the demo (default: var/demo/<time>)")
    demo.add_argument("--console", action=argparse.BooleanOptionalAction, default=None,
                      help="leave the console running afterwards until Ctrl-C "
                           "(default: only when standard output is a terminal)")
    demo.set_defaults(func=_demo)


def _run(args: argparse.Namespace) -> int:
    if args.run_config is not None:
        args.config = args.run_config
    config = config_from_args(args)  # a bad configuration stops us before anything starts
    from gateway.daemon import run_daemon

    _log_where(config)

    return run_daemon(config)


def _log_where(config: Config) -> None:
    """Absolute paths at start-up: which file, which data folder, which phonebook."""
    log.info("configuration %s", config.source or "(environment only)")
    log.info("data folder %s", config.paths.data_dir)
    if config.paths.phonebook is not None:
        log.info("phonebook %s", config.paths.phonebook)
    if config.paths.roster is not None:
        log.info("roster %s", config.paths.roster)


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import main

    return main(args.out, args.console)
