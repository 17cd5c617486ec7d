"""The gateway's own errors: each says what went wrong and what the operator should do.

One place (``gateway.cli.main``) turns them into a log line and an exit code; the SMTP
handler turns them into a reply. Nothing else catches them to print.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the operator may see; ``remedy`` says what to do about it."""

    exit_code = 1
    remedy = ""

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        if remedy is not None:
            self.remedy = remedy

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.remedy})" if self.remedy else text


class ConfigError(GatewayError):
    """The configuration file or an environment override is wrong."""

    exit_code = 2
    remedy = "fix the named key and start again"


class StorageError(GatewayError):
    """The database could not be opened or migrated."""

    exit_code = 3
    remedy = "check [database] url and that the data folder is writable"


class InputError(GatewayError):
    """A file or message handed to the gateway cannot be used as it is."""

    exit_code = 4
