"""Text files people make in spreadsheets: Excel on a Chinese desktop saves CSV as GB18030
(GBK), newer versions as UTF-8 with a BOM, and "Unicode text" as UTF-16 with a BOM. All
three are read; anything else is a clear error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.errors import InputError

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_spreadsheet_text(data: bytes, source: object, *, what: str = "the sheet") -> str:
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{source}: neither UTF-8 nor GB18030 text (nor UTF-16 with its BOM)", remedy=f"save {what} as CSV (UTF-8)")


def header_columns(header: Sequence[str], names: Mapping[str, Sequence[str]], required: Sequence[str],
                   source: str, *, remedy: str) -> dict[str, int]:
    """Which column holds each field, by its heading (any of ``names``, case-insensitive; the
    first such column wins); an ``InputError`` naming the missing ``required`` fields."""
    found: dict[str, int] = {}
    for index, heading in enumerate(header):
        key = next((k for k, aliases in names.items() if heading.strip().lower() in aliases), None)
        if key is not None:
            found.setdefault(key, index)
    missing = [k for k in required if k not in found]
    if missing:
        raise InputError(f"{source}, line 1: missing column(s) {', '.join(missing)}", remedy=remedy)
    return found
