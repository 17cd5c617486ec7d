"""``dutygw web`` (the console on its own) and ``dutygw user add`` (accounts; there is no default one)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from gateway.cli import config_from_args
from gateway.clock import SystemClock
from gateway.errors import InputError
from storage.console import ROLE_LABELS, ROLES
from storage.db import open_database


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="serve the duty officers' console (值班台) on its own")
    web.add_argument("--config", "-c", dest="web_config", type=Path, default=None,
                     help="TOML configuration (same as the global --config)")
    web.set_defaults(func=_web)
    user = sub.add_parser("user", help="console accounts (值班台用户)")
    actions = user.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create an account: dutygw user add NAME --role ROLE")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--display-name", default="", help="the person's name as shown (e.g. 张伟)")
    add.add_argument("--extension", default=None, help="the desk phone a callback rings first")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=_user_add)


def _web(args: argparse.Namespace) -> int:
    if args.web_config is not None:
        args.config = args.web_config
    config = config_from_args(args)
    from gateway.web.server import run_standalone

    return run_standalone(config)


def _user_add(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    password = _password(args.password_stdin)
    from gateway.web.accounts import add_user

    db = open_database(config.database_url)
    try:
        with db.session() as session:
            add_user(session, args.name, args.role, password, SystemClock().now(),
                     display_name=args.display_name, extension=args.extension, actor="cli")
    finally:
        db.dispose()
    print(f"已创建用户 {args.name}（{ROLE_LABELS[args.role]}）")
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码：")
    if getpass.getpass("再次输入密码：") != first:
        raise InputError("the two passwords differ")
    return first
