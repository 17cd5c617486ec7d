"""The end of ``dutygw demo``: the console (值班台) left running on the demo's scratch database,
with a demo account made for this run only, so a newcomer sees the night in a browser.

It stays only when asked (``--console``) or when standard output is a terminal, so the
README's ``bash scripts/setup.sh && dutygw demo`` still ends on its own in CI and scripts.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gateway.clock import Clock
from gateway.config import Config, WebConfig, load_config
from gateway.errors import GatewayError
from storage.db import Database, open_database

if TYPE_CHECKING:
    from gateway.web.server import WebService

DEMO_USER = "demo"
DEMO_ROLE = "leader"
"""带班领导: every page of the console is open to this role."""
PAGES = (("值班台", "/", "当班概况、正在振铃的来电、未结事项"),
         ("来电记录", "/calls", "这一夜的来电，补录事由、处理情况"),
         ("来文登记", "/faxes", "两份传真的页面图像、识别结果、签收"),
         ("紧急呼叫", "/pages", "紧急传真的呼叫时间线与确认"),
         ("交接班", "/handover", "交班单与未结事项"),
         ("报告", "/reports", "夜班报告（PDF、XLSX）"))


def wanted(flag: bool | None, stream: TextIO) -> bool:
    """``--console``/``--no-console`` decide; without either, only a terminal keeps the console."""
    return stream.isatty() if flag is None else flag


def preferred_port(host: str = WebConfig.host) -> int:
    """The console's usual port if it is free now, else any free one."""
    for port in (WebConfig.port, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise GatewayError("demo: no free TCP port for the console")


async def serve(config_path: Path, clock: Clock) -> int:
    """Serve the console on the demo's database until SIGINT or SIGTERM (exit 0)."""
    config = load_config(config_path, env={})
    db = open_database(config.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        password = secrets.token_urlsafe(8)
        await db.run(_add_account, db, password, clock)
        service, moved = await _start(config, db, clock)
        _banner(service.console.config, password, moved)
        try:
            await stop.wait()
        finally:
            await service.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        db.dispose()
    print("值班台已停止，演示结束。", flush=True)
    return 0


def _add_account(db: Database, password: str, clock: Clock) -> None:
    from gateway.web.accounts import add_user

    with db.session() as session:
        add_user(session, DEMO_USER, DEMO_ROLE, password, clock.now(), display_name="演示账号", actor="demo")


async def _start(config: Config, db: Database, clock: Clock) -> tuple[WebService, int | None]:
    """The console on the configured port; if that was taken meanwhile, on a free one (returned)."""
    from gateway.web.server import WebService

    service = WebService(config, db, clock, None)
    try:
        await service.start()
        return service, None
    except GatewayError:
        taken = config.web.port
        moved = replace(config, web=replace(config.web, port=preferred_port(config.web.host)))
        service = WebService(moved, db, clock, None)
        await service.start()
        return service, taken


def _banner(config: Config, password: str, taken: int | None) -> None:
    base = f"http://{config.web.host}:{config.web.port}"
    print(f"\n值班台（网页控制台）已在本次演示的数据库上运行：{base}/", flush=True)
    if taken is not None:
        print(f"  （端口 {taken} 已被占用，改用 {config.web.port}）")
    elif config.web.port != WebConfig.port:
        print(f"  （端口 {WebConfig.port} 已被占用，改用 {config.web.port}）")
    print(f"  用浏览器打开，以演示账号登录：用户名 {DEMO_USER}  密码 {password}"
          "（带班领导，可查看所有页面；每次演示新生成，只存在于本次演示的数据库）")
    print("  这一夜可以看：")
    for name, path, what in PAGES:
        print(f"    {name}  {base}{path}  {what}")
    print("  演示没有连接电话交换机，回拨不会真正拨出。按 Ctrl-C 结束。", flush=True)
