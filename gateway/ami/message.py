"""One AMI message (event, response or greeting) as an immutable value.

Headers keep their order and may repeat (``ChanVariable`` does); ``get`` returns the
first value of a header, case-insensitively, which is what the AMI protocol means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.clock import utc_from_epoch


@dataclass(frozen=True, slots=True)
class AmiMessage:
    headers: tuple[tuple[str, str], ...]
    received_at: datetime | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def event_time(self) -> datetime | None:
        """The PBX's own ``Timestamp`` (timestampevents = yes), if the message has one."""
        stamp = self.get("Timestamp")
        if not stamp:
            return None
        try:
            return utc_from_epoch(float(stamp))
        except ValueError:
            return None

    @property
    def time(self) -> datetime | None:
        """Best known time of the message: the PBX's Timestamp, else when it was received."""
        return self.event_time or self.received_at

    @property
    def time_source(self) -> str:
        """``"pbx"`` when the time came from the Timestamp header, else ``"received"``."""
        return "pbx" if self.event_time is not None else "received"

    @classmethod
    def of(cls, received_at: datetime | None = None, **headers: str) -> AmiMessage:
        """Build a message from keyword headers; for tests and actions."""
        return cls(tuple(headers.items()), received_at)
