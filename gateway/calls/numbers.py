"""Telephone numbers as the duty room writes them, made once where a number enters.

Carriers and phones present the same number in many spellings (``+86 138…``,
``0086138…``, a trunk's ``0`` before a mobile, ``027-8765 4321``). Everything that
compares numbers (the duty-number check, callback matching, the phonebook) compares
the normalised form, so each spelling is turned into one here and nowhere else.
"""

from __future__ import annotations

import re
from typing import NamedTuple

WITHHELD = "anonymous"
"""The one spelling of a withheld caller, whatever the carrier sent."""

_WITHHELD_WORDS = frozenset(
    {"", "anonymous", "<unknown>", "unknown", "restricted", "private", "withheld", "unavailable"}
)
_PLACEHOLDER_NAMES = _WITHHELD_WORDS | {"<none>", "none", "null"}
_SEPARATORS = re.compile(r"[\s\-().（）]")
_MOBILE = re.compile(r"1[3-9]\d{9}")


class Number(NamedTuple):
    number: str
    withheld: bool


def normalise(raw: str | None) -> Number:
    """The canonical form of a presented number, and whether it was withheld.

    A value with no digit at all (``anonymous``, ``Restricted``, ``<unknown>``, empty)
    is withheld and becomes ``WITHHELD``. Country prefixes become the domestic form:
    a mobile loses them entirely, a landline gets its trunk ``0`` back.
    """
    text = _SEPARATORS.sub("", (raw or "").strip())
    if text.lower() in _WITHHELD_WORDS or not any(ch.isdigit() for ch in text):
        return Number(WITHHELD, True)
    return Number(_domestic(text), False)


def normalise_number(raw: str | None) -> str:
    """Just the canonical number (``WITHHELD`` for a withheld one)."""
    return normalise(raw).number


def dialable(text: str) -> str:
    """A number a person wrote (roster, config, a form) in the same form as every number
    the PBX presents, so what the gateway dials and what it compares agree.

    Empty stays empty; anything but digits (after an optional ``+``) is refused with
    ``ValueError``, since a number to dial cannot be guessed.
    """
    compact = _SEPARATORS.sub("", text.strip())
    if not compact:
        return ""
    if not compact.removeprefix("+").isdigit():
        raise ValueError(f"phone number {text!r} has characters other than digits")
    return _domestic(compact)


def _domestic(text: str) -> str:
    if text.startswith("+86"):
        return _national(text[3:])
    if text.startswith("0086"):
        return _national(text[4:])
    if text.startswith("86") and _MOBILE.fullmatch(text[2:]):
        return text[2:]
    if text.startswith("0") and _MOBILE.fullmatch(text[1:]):
        return text[1:]  # a trunk's leading 0 before a mobile number
    return text


def _national(rest: str) -> str:
    """After the country code: a mobile as it is, a landline with its trunk 0."""
    rest = rest.lstrip("0")
    return rest if _MOBILE.fullmatch(rest) else "0" + rest


def clean_name(raw: str | None) -> str | None:
    """A presented caller name, or None when it says nothing (placeholder or mangled).

    Asterisk replaces caller-name bytes that are not UTF-8 with U+FFFD; such a name
    cannot be read back, so the phonebook's name is used instead.
    """
    name = (raw or "").strip()
    if name.lower() in _PLACEHOLDER_NAMES or "\ufffd" in name:
        return None
    return name


def is_withheld(raw: str | None) -> bool:
    return normalise(raw).withheld
