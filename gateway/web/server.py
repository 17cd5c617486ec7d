"""Serving the console: a service of ``dutygw run``, or its own process (``dutygw web``).

uvicorn runs on the caller's event loop; its own signal handling is switched off so the
daemon's SIGTERM handler stays the one that stops everything in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from gateway.clock import Clock, SystemClock
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.web.app import AmiSender, Console
from gateway.web.site import build_app
from storage.db import Database, open_database

log = logging.getLogger("dutygw.web")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon (or run_standalone) owns SIGTERM/SIGINT


class WebService:
    """The console as a daemon service: ``start`` returns once it listens."""

    def __init__(self, config: Config, db: Database, clock: Clock, ami: AmiSender | None) -> None:
        self.console = Console(config, db, clock, ami)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        web = self.console.config.web
        await self.console.hub.start()
        settings = uvicorn.Config(build_app(self.console), host=web.host, port=web.port, log_level="warning",
                                  access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = _Server(settings)
        self._task = asyncio.create_task(self._server.serve(), name="web")
        while not self._server.started:
            if self._task.done():
                await self.console.hub.stop()
                raise GatewayError(f"the console cannot listen on {web.host}:{web.port}",
                                   remedy="free the port or set [web] port")
            await asyncio.sleep(0.02)
        log.info("console (值班台) at http://%s:%d/", web.host, web.port)

    async def stop(self) -> None:
        await self.console.hub.stop()  # ends every open event stream first
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def run_standalone(config: Config) -> int:
    """``dutygw web``: the console alone against the gateway's database, with its own AMI login
    for callbacks (the daemon keeps listening on its own)."""
    async def main() -> None:
        from gateway.ami.client import AmiClient

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        db = open_database(config.database_url)
        ami = AmiClient(config.ami, clock=SystemClock(), on_message=_ignore)
        ami_stop = asyncio.Event()
        ami_task = asyncio.create_task(ami.run(ami_stop), name="ami")
        service = WebService(config, db, SystemClock(), ami)
        try:
            await service.start()
            print(f"值班台已启动：http://{config.web.host}:{config.web.port}/", flush=True)
            await stop.wait()
        finally:
            await service.stop()
            ami_stop.set()
            await asyncio.gather(ami_task, return_exceptions=True)
            db.dispose()

    asyncio.run(main())
    return 0


def _ignore(_message: Any) -> None:
    """The standalone console's AMI login only sends callbacks; the daemon records calls."""
