"""Configuration: one TOML file, every key overridable by ``DUTYGW_<SECTION>_<KEY>``.

The file is validated in full at start-up. A missing, unknown or mistyped key is a
``ConfigError`` naming the key and the file (or the environment variable), so the
operator never has to guess which line is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.errors import ConfigError

ENV_PREFIX = "DUTYGW_"
CONFIG_FILE_VARIABLE = "DUTYGW_CONFIG"
"""Names the file itself (``gateway.cli``), not a key in it."""


@dataclass(frozen=True)
class DutyConfig:
    """The duty line itself and the ring rule it must meet."""

    numbers: list[str]
    extensions: list[str]
    fax_numbers: list[str] = field(default_factory=list)
    ring_cadence_seconds: float = 5.0
    answer_within_rings: int = 3
    timezone: str = "Asia/Shanghai"
    callback_window_hours: float = 24.0
    room_phone: str = ""
    """The duty room's number as people dial it; said in classified-fax notices."""
    room_name: str = "政务值班室"


@dataclass(frozen=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    user: str = "dutygw"
    secret: str = ""
    ping_interval_seconds: float = 20.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""
    """Empty means SQLite at ``<data_dir>/dutygw.sqlite``."""


@dataclass(frozen=True)
class PathsConfig:
    data_dir: Path = Path("var")
    phonebook: Path | None = None
    roster: Path | None = None


@dataclass(frozen=True)
class SmtpConfig:
    """The fax-to-email intake the fax server mails to."""

    host: str = "127.0.0.1"
    port: int = 2525
    recipients: list[str] = field(default_factory=lambda: ["fax@duty.local"])
    allowed_networks: list[str] = field(default_factory=list)
    """CIDRs allowed to send; empty allows any peer."""
    max_message_bytes: int = 30 * 1024 * 1024


@dataclass(frozen=True)
class OcrConfig:
    engine: str = "rapidocr"
    """Main reader of the text: ``rapidocr`` or ``tesseract``."""
    header_second_reader: str = "tesseract"
    """Second reader of page 1's header zone (recall first); ``none`` to switch off."""
    max_pages: int = 60
    max_pixels: int = 40_000_000
    """Per page, after decoding; larger is refused as a decompression bomb."""
    workers: int = 2
    """OCR worker processes (models stay loaded); with two or more, the first reads only
    page 1's header pass of each fax, so an urgent fax never waits behind other pages."""
    page_timeout_seconds: float = 20.0
    """A page (decoding or rendering included) taking longer is abandoned: the worker is
    killed and the fax filed for a person to read."""


@dataclass(frozen=True)
class UrgencyConfig:
    """The words the urgency and classification rules look for (lists live here, not in code)."""

    urgent_marks: list[str] = field(default_factory=lambda: ["特提", "特急", "加急", "急件"])
    not_urgent_marks: list[str] = field(default_factory=lambda: ["平急"])
    not_urgent_options: list[str] = field(default_factory=lambda: ["一般", "较急", "平急"])
    """Printed options of a 紧急程度 box row that do not make a fax urgent when ticked."""
    urgent_flags: list[str] = field(default_factory=lambda: ["紧急信息", "紧急"])
    """Words that make a report or cover sheet urgent when they stand in the header zone."""
    classifications: list[str] = field(default_factory=lambda: ["绝密", "机密", "秘密"])
    low_confidence: float = 0.6
    """Below this OCR confidence a near-miss of an urgency word makes the fax possibly urgent."""


@dataclass(frozen=True)
class ShiftConfig:
    name: str
    label: str
    start: time
    end: time
    night: bool | None = None
    """Whether urgent faxes in this shift page the leadership; unset: a shift crossing midnight does."""


@dataclass(frozen=True)
class CalendarConfig:
    """Shifts and the days they fall on (chinesecalendar, plus what the unit adds)."""

    shifts: list[ShiftConfig] = field(
        default_factory=lambda: [
            ShiftConfig("day", "白班", time(8), time(19)),
            ShiftConfig("night", "夜班", time(19), time(8)),
        ]
    )
    holiday_shifts: list[ShiftConfig] = field(default_factory=list)
    """Shifts on rest days (weekends, holidays), if they differ; empty means the same as workdays."""
    extra_holidays: list[str] = field(default_factory=list)
    """ISO dates treated as rest days (a unit's own, or the years chinesecalendar lacks);
    a name may follow the date: ``"2027-01-01 元旦"``."""
    extra_workdays: list[str] = field(default_factory=list)
    """ISO dates treated as working days (调休 the package does not know yet)."""
    special_days: list[str] = field(default_factory=list)
    """ISO dates of 特殊敏感时间: treated like a rest day for paging."""


@dataclass(frozen=True)
class ChainStep:
    """One person in the escalation chain; ``number = "roster"`` takes the leader on duty,
    ``number = "room"`` the duty room's own extension (passed to ``resolve_chain``)."""

    role: str
    name: str = ""
    number: str = ""


@dataclass(frozen=True)
class PagingConfig:
    enabled: bool = True
    channel: str = "PJSIP/{number}@trunk"
    context: str = "paging"
    exten: str = "ack"
    caller_id: str = "值班室 <02787654321>"
    attempts_per_person: int = 2
    attempt_interval_seconds: float = 60.0
    ring_timeout_seconds: float = 30.0
    chain_rounds: int = 2
    deadline_minutes: float = 10.0
    coalesce_seconds: float = 180.0
    page_in_day_shift: bool = False
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    sounds_dir: Path | None = None
    """Where rendered prompts go; must be readable by Asterisk (see README)."""
    pbx_sounds_dir: str = ""
    """``sounds_dir`` as the Asterisk host sees it (NFS mount point); empty: the same path."""
    agi_url: str = ""
    """What the dialplan runs on answer: empty means ``agi://<agi_host>:<agi_port>/page``;
    ``local`` leaves it to the dialplan's own ``dutygw_page.py`` script on the PBX."""
    result_margin_seconds: float = 30.0
    """A call with no OriginateResponse this long after its ring timeout counts as no answer."""
    max_call_seconds: float = 180.0
    """An answered page call still open after this long counts as ended without a 1."""
    chain: list[ChainStep] = field(
        default_factory=lambda: [
            ChainStep("带班领导", number="roster"),
            ChainStep("办公室分管主任"),
            ChainStep("办公室主任"),
            ChainStep("值班室", number="room"),
        ]
    )


@dataclass(frozen=True)
class MailConfig:
    """Outbound mail through the unit's relay (notices, digests, reports)."""

    relay_host: str = "127.0.0.1"
    relay_port: int = 25
    sender: str = "dutygw@duty.local"
    secretariat: list[str] = field(default_factory=list)
    report_recipients: list[str] = field(default_factory=list)
    retry_minutes: float = 10.0


@dataclass(frozen=True)
class ReportConfig:
    night_report: bool = True
    day_report: bool = False
    classified_hidden_fields: list[str] = field(default_factory=lambda: ["title"])
    """Receipt fields a report never shows for a classified fax: title, issuer, doc_number."""
    catch_up_hours: float = 36.0
    """After downtime, shifts that ended this recently still get their report."""


@dataclass(frozen=True)
class Config:
    duty: DutyConfig
    ami: AmiConfig = field(default_factory=AmiConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    ocr: OcrConfig = field(default_factory=OcrConfig)
    urgency: UrgencyConfig = field(default_factory=UrgencyConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    paging: PagingConfig = field(default_factory=PagingConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    source: Path | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.duty.timezone)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.paths.data_dir / 'dutygw.sqlite'}"


def load_config(path: Path | str | None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (may be None: environment only), apply overrides, validate."""
    env = os.environ if env is None else env
    where = str(path) if path is not None else "(no file)"
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(Path(path))
    raw = _apply_env(raw, env)
    config = _build(Config, raw, where, "")
    config = dataclasses.replace(config, source=Path(path) if path is not None else None)
    _check(config, where)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``DUTYGW_SECTION_KEY`` values; they stay strings until ``_build`` coerces them."""
    merged = {name: dict(value) if isinstance(value, dict) else value for name, value in raw.items()}
    sections = {f.name: f for f in dataclasses.fields(Config) if f.name != "source"}
    for variable, value in env.items():
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_FILE_VARIABLE:
            continue
        rest = variable[len(ENV_PREFIX):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"environment variable {variable}: no section of that name")
        key = rest[len(section) + 1:]
        merged.setdefault(section, {})[key] = _EnvValue(variable, value)
    return merged


@dataclass(frozen=True)
class _EnvValue:
    variable: str
    text: str


def _build(cls: type, raw: Any, where: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    for key in raw:
        if key not in names:
            origin = raw[key].variable if isinstance(raw[key], _EnvValue) else where
            raise ConfigError(f"{origin}: unknown key {prefix}{key}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "source":
            continue
        if f.name not in raw:
            no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if no_default:
                raise ConfigError(f"{where}: missing key {prefix}{f.name}")
            continue
        values[f.name] = _coerce(hints[f.name], raw[f.name], where, prefix + f.name)
    return cls(**values)


def _coerce(kind: Any, value: Any, where: str, key: str) -> Any:
    origin_name = where
    if isinstance(value, _EnvValue):
        origin_name, value = value.variable, _parse_env(kind, value.text)
    try:
        return _convert(kind, value, origin_name, key)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin_name}: key {key}: {exc}") from None


def _parse_env(kind: Any, text: str) -> Any:
    """Environment values are text; lists are comma-separated."""
    if typing.get_origin(kind) is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _convert(kind: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(options[0], value, where, key)
    if origin is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {value!r}")
        if isinstance(item, type) and dataclasses.is_dataclass(item):
            return [_build(item, v, where, f"{key}.") for v in value]
        return [_convert(item, v, where, key) for v in value]
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _build(kind, value, where, f"{key}.")
    return _scalar(kind, value)


def _scalar(kind: Any, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise TypeError(f"expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(f"expected a whole number, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise TypeError(f"expected a string (quote it), got {value!r}")
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if kind is Path:
        return Path(str(value))
    if kind is time:
        return value if isinstance(value, time) else time.fromisoformat(str(value))
    raise TypeError(f"unsupported setting type {kind!r}")


def _check(config: Config, where: str) -> None:
    """Cross-key checks that types alone cannot express."""
    if not config.duty.numbers:
        raise ConfigError(f"{where}: key duty.numbers must name at least one duty number")
    if config.duty.ring_cadence_seconds <= 0:
        raise ConfigError(f"{where}: key duty.ring_cadence_seconds must be positive")
    if config.duty.answer_within_rings < 1:
        raise ConfigError(f"{where}: key duty.answer_within_rings must be at least 1")
    try:
        ZoneInfo(config.duty.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: key duty.timezone: unknown time zone {config.duty.timezone!r}") from None
    if not 0 < config.ami.port < 65536:
        raise ConfigError(f"{where}: key ami.port must be a TCP port, got {config.ami.port}")
    if not 0 <= config.smtp.port < 65536:
        raise ConfigError(f"{where}: key smtp.port must be a TCP port, got {config.smtp.port}")
    for engine_key, engine in (("ocr.engine", config.ocr.engine),):
        if engine not in ("rapidocr", "tesseract"):
            raise ConfigError(f"{where}: key {engine_key}: expected rapidocr or tesseract, got {engine!r}")
    if config.ocr.header_second_reader not in ("rapidocr", "tesseract", "none"):
        raise ConfigError(f"{where}: key ocr.header_second_reader: expected rapidocr, tesseract or none")
    from gateway.paging.calendar import check_calendar

    try:
        check_calendar(config.calendar)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.args[0]}") from None
