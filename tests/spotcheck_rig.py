"""A spot-check rig: the runner and a real AmiClient talking over TCP to the AMI peer that
replays the real PBX captures (``page_*.ami``); a real SQLite database; a FixedClock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway.ami.client import AmiClient
from gateway.ami.peer import AmiPeer
from gateway.clock import FixedClock
from gateway.config import AmiConfig, Config, DutyConfig, PathsConfig, SmtpConfig, SpotCheckConfig
from gateway.spotcheck.plan import Drawn
from gateway.spotcheck.records import create_plan
from gateway.spotcheck.runner import SpotCheckRunner
from gateway.spotcheck.units import Unit, store_units
from storage.db import Database
from storage.spotcheck import SpotCheck, SpotUnit
from tests.conftest import AMI_FIXTURES

NIGHT = datetime(2026, 10, 2, 14, 0, tzinfo=UTC)  # 22:00 on 2 October 2026 in Shanghai (国庆节)
UNITS = (
    Unit("武汉市司法局", "市州司法局", "02785550001", "张科长", 2),
    Unit("黄石市司法局", "市州司法局", "07146660002", "李科长", 3),
    Unit("襄阳市司法局", "市州司法局", "13700001111", "王科员", 4),
    Unit("省监狱管理局", "厅直属单位", "02788880004", "赵处长", 5),
    Unit("省戒毒管理局", "厅直属单位", "13900002222", "钱处长", 6),
)


def config_for(tmp_path: Path, port: int, **spot: Any) -> Config:
    return Config(
        duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"], room_name="省司法厅值班室"),
        ami=AmiConfig(port=port, secret="x", reconnect_min_seconds=0.05, reconnect_max_seconds=0.2,
                      ping_interval_seconds=30),
        smtp=SmtpConfig(port=0),
        paths=PathsConfig(data_dir=tmp_path),
        spotcheck=SpotCheckConfig(**{"retry_gap_seconds": 300.0, **spot}),
    )


@dataclass
class Rig:
    config: Config
    db: Database
    clock: FixedClock
    peer: AmiPeer
    client: AmiClient
    runner: SpotCheckRunner
    listeners: list[Callable[[Any], None]] = field(default_factory=list)

    def units(self) -> dict[str, SpotUnit]:
        with self.db.session() as session:
            return {u.number: u for u in session.scalars(select(SpotUnit))}

    def due_now(self, *numbers: str, kind: str = "now") -> list[int]:
        """Checks of these units, due at the clock's time, in a plan of their own."""
        units = self.units()
        chosen = [units[n] for n in numbers]
        with self.db.session() as session:
            plan = create_plan(session, "2026年国庆节期间", kind, NIGHT.date(), NIGHT.date(), (), chosen,
                               [Drawn(u.id, self.clock.now()) for u in chosen], checks_per_unit=1, seed=7,
                               spot=self.config.spotcheck, now=self.clock.now())
            return [c.id for c in plan.checks]

    def checks(self, ids: list[int] | None = None) -> list[SpotCheck]:
        with self.db.session() as session:
            query = select(SpotCheck).options(selectinload(SpotCheck.attempts), selectinload(SpotCheck.notes))
            if ids is not None:
                query = query.where(SpotCheck.id.in_(ids))
            return list(session.scalars(query.order_by(SpotCheck.id)))

    async def pass_(self) -> None:
        """One runner pass, then let the peer play what it was asked and the runner store it."""
        await self.runner.tick()
        await self.settle()

    async def settle(self) -> None:
        for _ in range(4):
            await self.peer.settle()
            await asyncio.sleep(0.05)
        await self.runner.idle()

    async def until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Poll (never a fixed sleep) until the condition holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await self.settle()

    def later(self, seconds: float) -> None:
        self.clock.advance(seconds)


@asynccontextmanager
async def rig(tmp_path: Path, database: Database, behaviours: dict[str, str], **spot: Any) -> AsyncIterator[Rig]:
    clock = FixedClock(NIGHT)
    peer = AmiPeer.from_fixtures(AMI_FIXTURES, behaviours=behaviours, now=lambda: clock.now().timestamp())
    port = await peer.start()
    config = config_for(tmp_path, port, **spot)
    with database.session() as session:
        store_units(session, UNITS, "units.csv", NIGHT)
    listeners: list[Callable[[Any], None]] = []

    def hear(message: Any) -> None:
        for listener in listeners:
            listener(message)

    client = AmiClient(config.ami, clock=clock, on_message=hear)
    runner = SpotCheckRunner(config, database, clock, client, tick_seconds=3600)
    listeners.append(runner.on_ami_message)
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    await asyncio.wait_for(client.connected.wait(), 10)
    await runner.start()
    try:
        yield Rig(config, database, clock, peer, client, runner, listeners)
    finally:
        await runner.stop()
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await peer.stop()


def run(test: Callable[[], Any], timeout: float = 90) -> Any:
    return asyncio.run(asyncio.wait_for(test(), timeout))


def replaced(config: Config, **spot: Any) -> Config:
    return dataclasses.replace(config, spotcheck=dataclasses.replace(config.spotcheck, **spot))
