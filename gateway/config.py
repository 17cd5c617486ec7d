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
from gateway.shifts.config import CalendarConfig
from ocr.config import UrgencyConfig

ENV_PREFIX = "DUTYGW_"
CONFIG_FILE_VARIABLE = "DUTYGW_CONFIG"
"""Names the file itself (``gateway.cli``), not a key in it."""


@dataclass(frozen=True)
class DutyConfig:
    """The duty line itself and the ring rule it must meet."""

    numbers: list[str]
    extensions: list[str]
    fax_numbers: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    """More duty phones: by device (``PJSIP/8003``, ``SIP/desk1=8001``) or by number (a
    mobile in the ring group, reached over the trunk)."""
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
    starttls: bool = False
    """Upgrade the relay connection with STARTTLS (the certificate is checked)."""
    username: str = ""
    """AUTH user at the relay (needs ``starttls``); empty: no AUTH."""
    password: str = ""
    """AUTH password; better given as DUTYGW_MAIL_PASSWORD than in the file."""
    ca_file: Path | None = None
    """CA bundle that signs the relay's certificate; empty: the system's CAs."""


@dataclass(frozen=True)
class ReportConfig:
    night_report: bool = True
    day_report: bool = False
    classified_hidden_fields: list[str] = field(default_factory=lambda: ["title"])
    """Receipt fields a report never shows for a classified fax: title, issuer, doc_number."""
    catch_up_hours: float = 36.0
    """After downtime, shifts that ended this recently still get their report."""


@dataclass(frozen=True)
class WebConfig:
    """The duty officers' console (值班台): address, who may reach it, callbacks."""

    enabled: bool = True
    """Serve the console from ``dutygw run``; ``dutygw web`` serves it on its own either way."""
    host: str = "127.0.0.1"
    port: int = 8080
    allowed_networks: list[str] = field(default_factory=list)
    """CIDRs whose browsers may reach the console; empty allows any."""
    session_hours: float = 12.0
    secure_cookies: bool = False
    """Mark cookies Secure (set it when a TLS proxy sits in front)."""
    classified_roles: list[str] = field(default_factory=lambda: ["leader", "secretariat"])
    """Roles that may see a classified receipt's title, text and images."""
    callback_channel: str = "PJSIP/{extension}"
    """The officer's phone, rung first by a callback; ``{extension}`` is the user's extension."""
    callback_context: str = "from-internal"
    """Where the answered officer's leg then dials the caller: the phones' own outbound context."""
    poll_seconds: float = 0.25
    """How often the console looks for new events in the database (live updates)."""
    sound_alert: bool = True


@dataclass(frozen=True)
class SpotCheckConfig:
    """Spot checks of the subordinate units' duty lines (值班抽查) and their 情况通报."""

    enabled: bool = True
    channel: str = "PJSIP/{number}@trunk"
    context: str = "dutygw-spotcheck"
    exten: str = "s"
    caller_id: str = "值班室 <02787654321>"
    ring_limit_seconds: float = 30.0
    """No answer after this long is 无人接听 (the Originate's Timeout)."""
    max_concurrent: int = 1
    """Checks on the trunk at once, at most (drawing and placing both keep to it)."""
    slot_seconds: float = 120.0
    """How long one check holds the trunk, for drawing: ring limit, prompt, name, a margin."""
    busy_tries: int = 3
    """Calls per check when the number is busy (a unit on a real call is not absent)."""
    retry_gap_seconds: float = 300.0
    postpone_seconds: float = 300.0
    """A check that falls while an urgent page is open is moved by this much (never dropped)."""
    result_margin_seconds: float = 30.0
    max_call_seconds: float = 180.0
    """An answered check still open after this long is ended as it stands."""
    checks_per_unit: int = 1
    key: str = "1"
    record_name: bool = False
    """Ask the answerer to say their name after the key, and keep the recording."""
    record_seconds: int = 6
    prompt: str = "这里是{room}，现在进行值班抽查。请按{key}确认。"
    prompt_with_name: str = "这里是{room}，现在进行值班抽查。请按{key}确认，然后在提示音后说出您的姓名。"
    office: str = "办公室"
    """Who issues the 情况通报 (the 落款)."""
    addressees: str = "各有关单位"
    """The 主送 line of the 情况通报, e.g. 各市州司法局，厅直属各单位。"""
    report_recipients: list[str] = field(default_factory=list)
    auto_report: bool = True
    """Write and mail the 情况通报 on the plan's last day, after its last check."""


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
    web: WebConfig = field(default_factory=WebConfig)
    spotcheck: SpotCheckConfig = field(default_factory=SpotCheckConfig)
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
        raw = _anchor_paths(_read_toml(Path(path)), Path(path), where)
    raw = _apply_env(raw, env)
    if path is None and "duty" not in raw:
        raise ConfigError("no configuration: no file was named and no DUTYGW_DUTY_* variables are set",
                          remedy=f"pass --config FILE (or set {CONFIG_FILE_VARIABLE}=FILE); "
                                 "examples/dutygw.toml is an annotated example to copy")
    config = _build(Config, raw, where, "")
    config = dataclasses.replace(config, source=Path(path).resolve() if path is not None else None)
    config = _absolute_paths(config)
    _check(config, where, _origins(raw))
    return config


PATH_KEYS: dict[str, tuple[str, ...]] = {"paths": ("data_dir", "phonebook", "roster"), "paging": ("sounds_dir",)}
"""Keys naming files or folders. In the file they are taken from the file's own folder (so
``dutygw -c /etc/dutygw/dutygw.toml`` finds the same data wherever it is started); from the
environment, from the current folder, like any command-line path."""


def _anchor_paths(raw: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    base = path.resolve().parent
    anchored = {name: dict(value) if isinstance(value, dict) else value for name, value in raw.items()}
    for section, keys in PATH_KEYS.items():
        table = anchored.get(section)
        if not isinstance(table, dict):
            continue
        for key in keys:
            value = table.get(key)
            if isinstance(value, str) and value:
                table[key] = str(base / Path(value).expanduser())
    return anchored


def _absolute_paths(config: Config) -> Config:
    """Every path absolute, so the start-up log and error messages say exactly where."""
    def absolute(value: Path) -> Path:
        return Path(os.path.abspath(value.expanduser()))

    def optional(value: Path | None) -> Path | None:
        return None if value is None else absolute(value)

    paths = dataclasses.replace(config.paths, data_dir=absolute(config.paths.data_dir),
                                phonebook=optional(config.paths.phonebook), roster=optional(config.paths.roster))
    paging = dataclasses.replace(config.paging, sounds_dir=optional(config.paging.sounds_dir))
    return dataclasses.replace(config, paths=paths, paging=paging)


def _origins(raw: Mapping[str, Any]) -> dict[str, str]:
    """``section.key`` → the environment variable that set it (the file set the rest)."""
    return {f"{section}.{key}": value.variable
            for section, table in raw.items() if isinstance(table, dict)
            for key, value in table.items() if isinstance(value, _EnvValue)}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist",
                          remedy="give the path of a TOML file; examples/dutygw.toml is an annotated example") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a configuration file",
                          remedy="give the TOML file itself, e.g. --config /etc/dutygw/dutygw.toml") from None
    except PermissionError:
        raise ConfigError(f"configuration file {path} cannot be read (permission denied)",
                          remedy="run as the gateway's user, or let that user read the file") from None
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", remedy="save the configuration as UTF-8") from None
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
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise TypeError(f"expected a whole number, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise TypeError(f"expected a string (quote it), got {value!r}")
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if kind is Path:
        return Path(str(value))
    if kind is time:
        try:
            return value if isinstance(value, time) else time.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"expected a time of day like \"08:00\", got {value!r}") from None
    raise TypeError(f"unsupported setting type {kind!r}")


def _check(config: Config, where: str, origins: Mapping[str, str] | None = None) -> None:
    """Cross-key checks that types alone cannot express; a key set by a variable blames it."""
    try:
        _check_values(config, where)
    except ConfigError as exc:
        message = exc.args[0]
        for key, variable in (origins or {}).items():
            if message.startswith(f"{where}: key {key} ") or message.startswith(f"{where}: key {key}:"):
                raise ConfigError(variable + message[len(where):]) from None
        raise


def _check_values(config: Config, where: str) -> None:
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
    if not 0 <= config.web.port < 65536:
        raise ConfigError(f"{where}: key web.port must be a TCP port, got {config.web.port}")
    for engine_key, engine in (("ocr.engine", config.ocr.engine),):
        if engine not in ("rapidocr", "tesseract"):
            raise ConfigError(f"{where}: key {engine_key}: expected rapidocr or tesseract, got {engine!r}")
    if config.ocr.header_second_reader not in ("rapidocr", "tesseract", "none"):
        raise ConfigError(f"{where}: key ocr.header_second_reader: expected rapidocr, tesseract or none")
    from gateway.shifts.calendar import check_calendar

    try:
        check_calendar(config.calendar)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.args[0]}") from None
    _check_spotcheck(config.spotcheck, where)


def _check_spotcheck(spot: SpotCheckConfig, where: str) -> None:
    if spot.max_concurrent < 1:
        raise ConfigError(f"{where}: key spotcheck.max_concurrent must be at least 1")
    if spot.busy_tries < 1:
        raise ConfigError(f"{where}: key spotcheck.busy_tries must be at least 1")
    if spot.ring_limit_seconds <= 0 or spot.slot_seconds < spot.ring_limit_seconds:
        raise ConfigError(f"{where}: key spotcheck.slot_seconds must be at least ring_limit_seconds (> 0)")
    if len(spot.key) != 1 or spot.key not in "0123456789*#":
        raise ConfigError(f"{where}: key spotcheck.key must be one telephone key, got {spot.key!r}")
