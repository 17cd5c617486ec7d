"""The gateway's own asyncio AMI client: one connection, kept alive, rebuilt when lost.

Why not pyst2's ``Manager``: its reader dies on the first ``ChanVariable`` header
(``dict.has_key``), it decodes with ``errors='ignore'`` (GBK caller names vanish), it
matches responses first-in first-out, one raising callback stops all dispatch, and it
never reconnects (``tests/test_pyst2_defect.py`` shows it on a real stream).

Lifecycle of one connection: greeting, ``Login`` (``Events: on``), ``CoreShowChannels``
(handed to ``on_connected`` so in-flight calls are rebuilt), then every event goes to
``on_message``. Events that arrive before ``on_connected`` are held and delivered right
after it, in order. A ``Ping`` every ``ping_interval_seconds`` proves the peer alive. On
EOF, a socket error, a missing Pong or a ``Shutdown`` event ``on_disconnected`` gets a
``ListenerGap`` and the client reconnects with exponential backoff.

An action on a dying connection fails in one of two ways, and callers that must not act
twice (the pager's Originate) need to tell them apart: ``AmiNotSent`` when its bytes never
left (no connection, the PBX's close already read, the socket refused the write), so
nothing can have happened on the PBX; ``AmiConnectionLost`` when they were handed to the
socket and the reply never came, so the PBX may well be carrying the action out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.ami.framing import Framer, format_action
from gateway.ami.message import AmiMessage
from gateway.clock import Clock, local_iso
from gateway.config import AmiConfig
from gateway.errors import GatewayError

log = logging.getLogger("dutygw.ami")

_READ_SIZE = 65536


class AmiError(GatewayError):
    """The AMI connection or an action on it failed."""

    remedy = "check that Asterisk is running and [ami] host/port in the configuration"


class AmiLoginError(AmiError):
    remedy = "check [ami] user/secret in the configuration against manager.conf on the PBX"


class AmiConnectionLost(AmiError):
    """The connection ended (EOF, socket error, Shutdown event or a missing Pong); an action
    written before that may have been carried out."""


class AmiNotSent(AmiError):
    """The action never reached the socket: the PBX cannot have carried it out."""


@dataclass(frozen=True)
class ListenerGap:
    """A stretch of time in which the gateway was not listening to the PBX."""

    lost_at: datetime
    reason: str
    last_event_at: datetime | None


@dataclass
class _Collector:
    """A list action in flight: its events are gathered until ``complete_event``."""

    complete_event: str
    done: asyncio.Future[list[AmiMessage]]
    items: list[AmiMessage] = field(default_factory=list)


class AmiClient:
    def __init__(
        self,
        config: AmiConfig,
        *,
        clock: Clock,
        on_message: Callable[[AmiMessage], None],
        on_connected: Callable[[list[AmiMessage]], None] | None = None,
        on_disconnected: Callable[[ListenerGap], None] | None = None,
        response_timeout: float = 10.0,
        pong_timeout: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.on_message = on_message
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.response_timeout = response_timeout
        self.pong_timeout = pong_timeout if pong_timeout is not None else min(config.ping_interval_seconds, 10.0)
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._pending: dict[str, asyncio.Future[AmiMessage]] = {}
        self._collectors: dict[str, _Collector] = {}
        self._greeting: asyncio.Future[AmiMessage] | None = None
        self._held: list[AmiMessage] | None = None
        self._last_event_at: datetime | None = None
        self._gap: ListenerGap | None = None
        self.connected = asyncio.Event()

    # -- public API ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop`` is set: connect, log in, listen, reconnect."""
        delay = self.config.reconnect_min_seconds
        while not stop.is_set():
            try:
                await self._session(stop)
                delay = self.config.reconnect_min_seconds
            except AmiLoginError as exc:
                log.error("%s", exc)
            except (TimeoutError, OSError, AmiError) as exc:
                log.warning("AMI %s:%s unavailable: %s", self.config.host, self.config.port,
                            exc if isinstance(exc, AmiError) else _describe(exc))
            except Exception:
                log.exception("AMI session failed unexpectedly; reconnecting")
            if stop.is_set():
                break
            await _sleep_unless(stop, delay * random.uniform(1.0, 1.2))
            delay = min(delay * 2, self.config.reconnect_max_seconds)

    async def send_action(self, action: str, *, action_id: str | None = None,
                          timeout: float | None = None, **fields: str | list[str]) -> AmiMessage:
        """Send an action and return its response, matched by ActionID."""
        action_id = action_id or self._next_id()
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            await self._write(action, action_id, fields)
            return await asyncio.wait_for(future, timeout or self.response_timeout)
        except TimeoutError:
            raise AmiError(f"no response to AMI {action} (ActionID {action_id})") from None
        finally:
            self._pending.pop(action_id, None)

    async def collect(self, action: str, complete_event: str, *, timeout: float | None = None,
                      **fields: str | list[str]) -> list[AmiMessage]:
        """Send a list action (``CoreShowChannels``…) and return the events it produced."""
        action_id = self._next_id()
        done: asyncio.Future[list[AmiMessage]] = asyncio.get_running_loop().create_future()
        self._collectors[action_id] = _Collector(complete_event, done)
        try:
            await self._write(action, action_id, fields)
            return await asyncio.wait_for(done, timeout or self.response_timeout)
        except TimeoutError:
            raise AmiError(f"AMI {action} did not complete (ActionID {action_id})") from None
        finally:
            self._collectors.pop(action_id, None)

    # -- one connection -----------------------------------------------------------------

    async def _session(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.config.host, self.config.port),
            self.config.connect_timeout_seconds,
        )
        self._writer, self._reader = writer, reader
        self._held = []
        self._greeting = asyncio.get_running_loop().create_future()
        reading = asyncio.create_task(self._read_loop(reader))
        reading.add_done_callback(lambda _: self._fail_waiters(AmiConnectionLost("AMI connection closed")))
        try:
            await self._log_in(reading)
        except BaseException:
            await self._close(reading, writer)
            raise
        try:
            await self._rebuild()
            reason = await self._listen(reading, stop)
        except (TimeoutError, OSError, AmiError) as exc:
            reason = _describe(exc)
        finally:
            await self._close(reading, writer)
        if not stop.is_set():
            self._report_lost(reason)

    async def _log_in(self, reading: asyncio.Task[str]) -> None:
        assert self._greeting is not None
        waiting = self._greeting
        either: set[asyncio.Future[Any]] = {waiting, reading}
        await asyncio.wait(either, timeout=self.config.connect_timeout_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        if not waiting.done():
            waiting.cancel()
            raise AmiConnectionLost("no AMI greeting from the peer")
        response = await self.send_action("Login", Username=self.config.user,
                                          Secret=self.config.secret, Events="on")
        if (response.response or "").lower() != "success":
            raise AmiLoginError(
                f"AMI login as [ami] user {self.config.user!r} refused by "
                f"{self.config.host}:{self.config.port}: {response.get('Message', 'no reason given')}"
            )

    async def _rebuild(self) -> None:
        """Snapshot the channels up now, hand them over, then release the events held meanwhile."""
        channels = await self.collect("CoreShowChannels", "CoreShowChannelsComplete")
        self.connected.set()
        self._report_reconnected(len(channels))
        self._deliver_connected(channels)

    async def _listen(self, reading: asyncio.Task[str], stop: asyncio.Event) -> str:
        """Until the connection ends: returns why it ended (or raises what broke it)."""
        pinging = asyncio.create_task(self._keep_alive())
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({reading, pinging, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pinging.cancel()
            stopping.cancel()
        if stopping in done:
            await self._log_off()
            return "stopped"
        finished = reading if reading in done else pinging
        return finished.result()

    async def _keep_alive(self) -> str:
        while True:
            await asyncio.sleep(self.config.ping_interval_seconds)
            try:
                await self.send_action("Ping", timeout=self.pong_timeout)
            except AmiError:
                raise AmiConnectionLost(f"no Pong within {self.pong_timeout:g} s") from None

    async def _log_off(self) -> None:
        """Say goodbye on a clean stop, so the PBX does not log a dropped manager session."""
        try:
            await self.send_action("Logoff", timeout=1.0)
        except AmiError:
            pass

    async def _close(self, reading: asyncio.Task[str], writer: asyncio.StreamWriter) -> None:
        self.connected.clear()
        self._writer = self._reader = None
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        self._fail_waiters(AmiConnectionLost("AMI connection closed"))
        self._flush_held()

    # -- reading and dispatch -----------------------------------------------------------

    async def _read_loop(self, reader: asyncio.StreamReader) -> str:
        framer = Framer()
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                return "connection closed by the PBX"
            for message in framer.feed(data, self.clock.now()):
                if self._route(message):
                    return f"Shutdown event (Restart: {message.get('Restart', '?')})"

    def _route(self, message: AmiMessage) -> bool:
        """Hand one message to whoever waits for it; True when the PBX is shutting down."""
        action_id = message.action_id
        if message.get("Greeting") is not None:
            if self._greeting is not None and not self._greeting.done():
                self._greeting.set_result(message)
        elif message.event is None:
            self._take_response(action_id, message)
        elif action_id in self._collectors:
            self._take_list_item(self._collectors[action_id], message)
        else:
            self._dispatch(message)
            return message.event == "Shutdown"
        return False

    def _take_response(self, action_id: str | None, message: AmiMessage) -> None:
        future = self._pending.get(action_id or "")
        collector = self._collectors.get(action_id or "")
        if future is not None and not future.done():
            future.set_result(message)
        elif collector is not None and (message.response or "").lower() == "error":
            if not collector.done.done():
                collector.done.set_exception(AmiError(f"AMI list action refused: {message.get('Message')}"))
        elif collector is None:
            log.debug("AMI response nobody waits for: %s", _summary(message))

    def _take_list_item(self, collector: _Collector, message: AmiMessage) -> None:
        if message.event == collector.complete_event:
            if not collector.done.done():
                collector.done.set_result(list(collector.items))
        else:
            collector.items.append(message)

    def _dispatch(self, message: AmiMessage) -> None:
        self._last_event_at = message.time
        if self._held is not None:
            self._held.append(message)
            return
        self._deliver(message)

    def _deliver(self, message: AmiMessage) -> None:
        try:
            self.on_message(message)
        except Exception:
            log.exception("AMI event handler failed on %s; dispatch goes on", _summary(message))

    def _deliver_connected(self, channels: list[AmiMessage]) -> None:
        if self.on_connected is not None:
            try:
                self.on_connected(channels)
            except Exception:
                log.exception("AMI on_connected handler failed (%d channels); dispatch goes on", len(channels))
        self._flush_held()

    def _flush_held(self) -> None:
        held, self._held = self._held or [], None
        for message in held:
            self._deliver(message)

    # -- helpers --------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"dutygw-{next(self._ids)}"

    async def _write(self, action: str, action_id: str, fields: dict[str, str | list[str]]) -> None:
        """Hand the action to the socket: ``AmiNotSent`` if it cannot have left, ``AmiConnectionLost``
        if the connection failed once (part of) it was handed over."""
        writer, reader = self._writer, self._reader
        if writer is None or writer.is_closing():
            raise AmiNotSent(f"not connected to AMI; {action} not sent")
        if reader is not None and (reader.at_eof() or reader.exception() is not None):
            raise AmiNotSent(f"the PBX closed the AMI connection; {action} not sent")
        data = format_action(action, action_id, **fields)  # type: ignore[arg-type]
        try:
            writer.write(data)
        except (OSError, RuntimeError) as exc:
            raise AmiNotSent(f"AMI socket refused {action}: {_describe(exc)}") from exc
        if writer.is_closing():  # the immediate send failed (reset, broken pipe): nothing was taken
            raise AmiNotSent(f"the AMI connection broke before {action} was sent")
        try:
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            raise AmiConnectionLost(f"AMI connection lost while sending {action}: {_describe(exc)}") from exc

    def _fail_waiters(self, error: AmiError) -> None:
        waiters: list[asyncio.Future[Any]] = [*self._pending.values(), *(c.done for c in self._collectors.values())]
        for future in waiters:
            if not future.done():
                future.set_exception(error)

    def _report_lost(self, reason: str) -> None:
        gap = ListenerGap(self.clock.now(), reason, self._last_event_at)
        self._gap = gap
        log.warning("AMI connection lost at %s: %s", local_iso(gap.lost_at), reason)
        if self.on_disconnected is not None:
            try:
                self.on_disconnected(gap)
            except Exception:
                log.exception("AMI on_disconnected handler failed")

    def _report_reconnected(self, channels: int) -> None:
        if self._gap is None:
            log.info("AMI connected to %s:%s as %s", self.config.host, self.config.port, self.config.user)
            return
        log.warning(
            "AMI connection lost at %s (%s; last event %s); reconnected at %s; calls that started "
            "and ended in between are not recorded; in-flight calls rebuilt from "
            "CoreShowChannels (%d channels)",
            local_iso(self._gap.lost_at), self._gap.reason, local_iso(self._gap.last_event_at),
            local_iso(self.clock.now()), channels,
        )
        self._gap = None


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, GatewayError) and exc.args:
        return str(exc.args[0])  # the reason alone; the remedy is for the operator's log line
    return str(exc) or type(exc).__name__


def _summary(message: AmiMessage) -> str:
    """A message for a log line: its headers, never anything secret (events carry none)."""
    return "; ".join(f"{k}: {v}" for k, v in message.headers if k.lower() != "secret")
