"""The daemon wires the spot-check runner: a check written by ``dutygw spotcheck now`` is placed
by the running daemon over its one AMI connection and its result stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.ami.peer import ANSWER_ACK, AmiPeer
from gateway.clock import SystemClock
from gateway.config import AmiConfig, Config, DutyConfig, PagingConfig, PathsConfig, SmtpConfig
from gateway.daemon import Daemon
from gateway.spotcheck.commands import check_now
from gateway.spotcheck.units import store_units
from storage.db import open_database
from storage.spotcheck import SpotCheck
from tests.conftest import AMI_FIXTURES
from tests.spotcheck_rig import UNITS
from tests.test_listener_e2e import free_port


def test_the_running_daemon_places_a_check_made_from_the_command_line(tmp_path: Path) -> None:
    async def scenario() -> tuple[str | None, int | None, list[str], str]:
        peer = AmiPeer.from_fixtures(AMI_FIXTURES, behaviours={UNITS[0].number: ANSWER_ACK})
        port = await peer.start()
        config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"]),
                        ami=AmiConfig(port=port, secret="x", reconnect_min_seconds=0.05),
                        paths=PathsConfig(data_dir=tmp_path), smtp=SmtpConfig(port=free_port()),
                        paging=PagingConfig(agi_port=free_port(), sounds_dir=tmp_path / "sounds"))
        db = open_database(config.database_url)
        with db.session() as session:
            store_units(session, UNITS, "units.csv", SystemClock().now())
        daemon = Daemon(config, db=db)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.ready.wait(), 30)
            (check_id,) = await asyncio.to_thread(check_now, db, config, [UNITS[0].name], [], SystemClock().now())
            for _ in range(300):
                with db.session() as session:
                    check = session.get_one(SpotCheck, check_id)
                    if check.state == "done":
                        return (check.outcome, check.rings, [o.number for o in peer.originates],
                                peer.originates[0].variables["SPOT_PROMPT"])
                await asyncio.sleep(0.1)
            raise AssertionError("the daemon did not place the check")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await peer.stop()
            db.dispose()

    outcome, rings, dialled, prompt = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert (outcome, rings, dialled) == ("answered", 2, [UNITS[0].number])
    assert prompt.startswith(str(tmp_path / "sounds")), "the prompt is rendered by the paging speech path"
    assert Path(prompt + ".wav").stat().st_size > 8000
