"""What a log line is about (the call's Linkedid, the fax's receipt, the escalation), via contextvars.

Code that handles one call, receipt or escalation wraps the work in ``log_context(...)``;
every line logged inside it, however deep (and in ``db.run``'s worker threads, which run in
a copy of the caller's context), carries those fields. ``ContextFilter`` on the handler puts
them in ``record.context`` (`` [linkedid=1700000000.12]``, empty outside any context) for the
``FORMAT`` that ``gateway.cli`` configures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

FORMAT = "%(asctime)s %(levelname)s %(name)s:%(context)s %(message)s"
_FIELDS: ContextVar[Mapping[str, str]] = ContextVar("dutygw_log_fields", default={})


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (None values left out) to every line logged inside the block."""
    added = {name: str(value) for name, value in fields.items() if value is not None}
    token = _FIELDS.set({**_FIELDS.get(), **added})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def current() -> Mapping[str, str]:
    """The fields in force here (for a line built by hand, or a test)."""
    return dict(_FIELDS.get())


class ContextFilter(logging.Filter):
    """Sets ``record.context`` from the fields in force where the line was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _FIELDS.get()
        record.context = f" [{' '.join(f'{k}={v}' for k, v in fields.items())}]" if fields else ""
        return True


def install(handlers: list[logging.Handler] | None = None) -> None:
    """Put the filter on the given handlers (default: the root logger's), once each."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
