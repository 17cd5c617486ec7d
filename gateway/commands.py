"""``dutygw run`` and ``dutygw demo``: the daemon from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gateway.cli import config_from_args


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the gateway daemon (SIGTERM stops it cleanly)")
    run.add_argument("--config", "-c", dest="run_config", type=Path, default=None,
                     help="TOML configuration (same as the global --config)")
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="play a recorded night through the real daemon (no PBX needed)")
    demo.add_argument("--out", type=Path, default=None, help="folder for the demo (default: var/demo/<time>)")
    demo.set_defaults(func=_demo)


def _run(args: argparse.Namespace) -> int:
    if args.run_config is not None:
        args.config = args.run_config
    config = config_from_args(args)  # a bad configuration stops us before anything starts
    from gateway.daemon import run_daemon

    return run_daemon(config)


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import main

    return main(args.out)
