"""``dutygw replay``: serve recorded AMI streams to a gateway as if they were the PBX."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from gateway.ami.replay import build_replay_server, parse_start_at
from gateway.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "replay", help="serve recorded .ami streams as an AMI server (one file per connection)")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.ami")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038, help="0 picks a free port (printed)")
    parser.add_argument("--speed", type=float, default=None,
                        help="play at F times recorded pace (default: as fast as possible)")
    parser.add_argument("--start-at", type=_start_at, default=None, metavar="TIME",
                        help="ISO 8601 instant the first event is moved to (naive: Asia/Shanghai)")
    parser.set_defaults(func=_replay)


def _start_at(text: str) -> object:
    try:
        return parse_start_at(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def _replay(args: argparse.Namespace) -> int:
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise InputError(f"no such recording: {', '.join(missing)}")
    if args.speed is not None and args.speed <= 0:
        raise InputError("--speed must be positive")
    return asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> int:
    server = build_replay_server(args.files, host=args.host, port=args.port,
                                 speed=args.speed, start_at=args.start_at)
    try:
        port = await server.start()
    except OSError as exc:
        raise InputError(f"cannot listen on {args.host}:{args.port}: {exc}",
                         remedy="pick another --port (0 picks a free one)") from None
    print(f"replay listening on {args.host}:{port}", flush=True)
    await server.wait_closed()
    return 0
