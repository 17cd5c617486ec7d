"""Who is connected to whom: the channels and bridges of the calls in flight.

Asterisk hands one logical call through several channels. A FreePBX ring group or a
queue with Local members dials ``Local/8002@…;1``, whose ``;2`` half dials the phone;
after the answer Local optimisation swaps the halves out (``BridgeEnter`` with
``SwapUniqueid``) and they hang up while the call goes on. Transfers move the caller
between bridges, a pickup brings in a channel from another phone. Following the
caller's bridge, and through Local pairs to the far end, says who the caller is
talking to at any moment, whatever path the PBX took; that is all this module does.

``Phones`` names the far end: a duty phone by extension, by device (``PJSIP/8001``,
``SIP/desk1=8001``) or by number (a mobile reached over the trunk as a group member).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.calls.numbers import normalise_number
from gateway.config import DutyConfig

_MAX_DEPTH = 8
"""Local channels chained deeper than this are a loop, not a call."""
_DIGITS = re.compile(r"\d+")
_MOBILE_MIN_DIGITS = 7
"""A ``[duty] phones`` entry this long is a number reached over a trunk, not an extension."""


@dataclass
class Channel:
    """One PBX channel of a call in flight; mutable, private to the tracker."""

    uniqueid: str
    name: str
    call: str
    bridge: str | None = None
    local_peer: str | None = None
    answered_dest: str | None = None
    """The channel that answered this channel's own ``Dial`` (a Local ``;2`` → the phone)."""
    dial_string: str | None = None
    caller_num: str | None = None
    """Its caller ID when it was made (a phone's own number; a dialed leg's callee)."""
    cid_num: str | None = None
    """Its caller ID now (a phone's channel says its extension once the dialplan set it)."""
    on_hold: bool = False
    hung_up: bool = False

    @property
    def is_local(self) -> bool:
        return self.name.startswith("Local/")


class Phones:
    """Names the party behind a channel, duty phones by their configured names."""

    def __init__(self, duty: DutyConfig) -> None:
        entries = [*duty.extensions, *getattr(duty, "phones", [])]
        self.devices: dict[str, str] = {}
        self.extensions: set[str] = set()
        self.numbers: set[str] = set()
        for entry in (e.strip() for e in entries if e.strip()):
            if "/" in entry:
                device, _, label = entry.partition("=")
                self.devices[device.strip()] = label.strip() or _resource(device.strip())
            elif len(entry) >= _MOBILE_MIN_DIGITS and entry.lstrip("+").isdigit():
                self.numbers.add(normalise_number(entry))
            else:
                self.extensions.add(entry)

    def duty_extension(self, channel: str | None, number: str | None) -> str | None:
        """The duty phone a channel is (``PJSIP/8001-0000001`` → ``8001``), else None."""
        device = _device(channel or "")
        if device in self.devices:
            return self.devices[device]
        resource = _resource(device)
        if resource in self.extensions:
            return resource
        return number if number in self.extensions else None

    def party(self, channel: Channel) -> str:
        """The far end's name: duty label, extension, or the number a trunk leg dialed."""
        known = self.duty_extension(channel.name, channel.cid_num)
        if known is not None:
            return known
        dialed = _longest_digits(channel.dial_string)
        if dialed and normalise_number(dialed) in self.numbers:
            return normalise_number(dialed)
        resource = _resource(_device(channel.name))
        if resource.isdigit():
            return resource
        if channel.caller_num and channel.caller_num.isdigit():
            return channel.caller_num
        if dialed:
            return normalise_number(dialed)
        return resource or channel.name

    @staticmethod
    def local_guess(channel: Channel) -> str | None:
        """What a Local channel's name says it dials (``Local/8002@ctx-…;1`` → ``8002``)."""
        if not channel.is_local:
            return None
        return _longest_digits(channel.name.partition("/")[2].partition("@")[0])


class Topology:
    """Channels and bridges of the calls in flight, keyed by Uniqueid and bridge id."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self._bridges: dict[str, set[str]] = {}

    def ensure(self, uniqueid: str, name: str | None, call: str) -> Channel:
        channel = self.channels.get(uniqueid)
        if channel is None:
            channel = Channel(uniqueid, name or "", call)
            self.channels[uniqueid] = channel
            self._pair_by_name(channel)
        elif name and not channel.name:
            channel.name = name
        return channel

    def _pair_by_name(self, channel: Channel) -> None:
        """``…;1`` and ``…;2`` of one Local channel are a pair even when ``LocalBridge``
        was not seen (attached mid-call)."""
        base, _, half = channel.name.rpartition(";")
        if not channel.is_local or half not in ("1", "2"):
            return
        other_name = f"{base};{'2' if half == '1' else '1'}"
        other = next((c for c in self.channels.values() if c.name == other_name and not c.hung_up), None)
        if other is not None and other.local_peer is None:
            self.pair(channel.uniqueid, other.uniqueid)

    def enter(self, uniqueid: str, bridge: str, swap: str | None = None) -> None:
        channel = self.channels.get(uniqueid)
        if channel is None:
            return
        if channel.bridge and channel.bridge != bridge:
            self.leave(uniqueid, channel.bridge)
        channel.bridge = bridge
        self._bridges.setdefault(bridge, set()).add(uniqueid)
        if swap:
            self.leave(swap, bridge)

    def leave(self, uniqueid: str, bridge: str | None) -> None:
        channel = self.channels.get(uniqueid)
        if channel is not None and (bridge is None or channel.bridge == bridge):
            members = self._bridges.get(channel.bridge or "", set())
            members.discard(uniqueid)
            if not members:
                self._bridges.pop(channel.bridge or "", None)
            channel.bridge = None

    def pair(self, one: str, two: str) -> None:
        if one in self.channels and two in self.channels:
            self.channels[one].local_peer = two
            self.channels[two].local_peer = one

    def members(self, bridge: str | None) -> list[Channel]:
        return [self.channels[u] for u in sorted(self._bridges.get(bridge or "", ())) if u in self.channels]

    def of_call(self, call: str) -> Iterator[Channel]:
        return (c for c in list(self.channels.values()) if c.call == call)

    def move_call(self, source: str, target: str) -> None:
        for channel in self.of_call(source):
            channel.call = target

    def drop_call(self, call: str) -> None:
        for channel in list(self.of_call(call)):
            self.leave(channel.uniqueid, None)
            del self.channels[channel.uniqueid]

    def forget(self, uniqueid: str) -> None:
        if uniqueid in self.channels:
            self.leave(uniqueid, None)
            del self.channels[uniqueid]

    def hang_up(self, uniqueid: str) -> None:
        channel = self.channels.get(uniqueid)
        if channel is not None:
            self.leave(uniqueid, None)
            channel.hung_up = True

    def connected_party(self, origin: Channel, phones: Phones, fallback: str | None) -> str | None:
        """Who ``origin`` talks to now: its bridge peers (not on hold), through Local pairs;
        outside a bridge, the channel its last Dial was answered by (``fallback``)."""
        if origin.hung_up:
            return None
        if origin.bridge:
            return self._first_party(self.members(origin.bridge), origin, phones, 0)
        far = self.channels.get(fallback or "")
        return None if far is None else self.far_end(far, phones)

    def far_end(self, channel: Channel, phones: Phones, depth: int = 0) -> str | None:
        """The party behind ``channel``, following a Local pair to whoever it reached."""
        if depth > _MAX_DEPTH or channel.hung_up and not channel.is_local:
            return None
        if not channel.is_local:
            return phones.party(channel)
        peer = self.channels.get(channel.local_peer or "")
        if peer is None:
            return None
        answered = self.channels.get(peer.answered_dest or "")
        if answered is not None and not answered.hung_up:
            return self.far_end(answered, phones, depth + 1)
        return self._first_party(self.members(peer.bridge), peer, phones, depth + 1)

    def _first_party(self, members: list[Channel], me: Channel, phones: Phones, depth: int) -> str | None:
        for member in members:
            if member.uniqueid != me.uniqueid and not member.on_hold:
                party = self.far_end(member, phones, depth + 1)
                if party is not None:
                    return party
        return None


def _device(name: str) -> str:
    """``PJSIP/8001-00000004`` → ``PJSIP/8001``; ``Local/8001@ctx-0002;1`` → ``Local/8001@ctx``."""
    head = name.split(";")[0]
    return head.rpartition("-")[0] if "-" in head.partition("/")[2] else head


def _resource(device: str) -> str:
    return device.partition("/")[2]


def _longest_digits(text: str | None) -> str | None:
    runs = _DIGITS.findall(text or "")
    return max(runs, key=len) if runs else None
