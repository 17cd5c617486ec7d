"""Configuration: the example loads, environment wins, and every mistake names its key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load_config
from gateway.errors import ConfigError
from tests.conftest import EXAMPLE_CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dutygw.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = '[duty]\nnumbers = ["02787654321"]\nextensions = ["8001", "8002"]\n'


def test_example_configuration_describes_the_fixture_pbx() -> None:
    config = load_config(EXAMPLE_CONFIG, env={})
    assert config.duty.numbers == ["02787654321"]
    assert config.duty.extensions == ["8001", "8002"]
    assert config.duty.fax_numbers == ["02787654329"]
    assert config.duty.ring_cadence_seconds == 5
    assert config.duty.answer_within_rings == 3
    assert config.smtp.recipients == ["fax@duty.local"]
    assert config.database_url.startswith("sqlite:///")


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[ami]\nport = 5038\n")
    env = {
        "DUTYGW_AMI_PORT": "5039",
        "DUTYGW_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "DUTYGW_DUTY_EXTENSIONS": "8001, 8003",
        "DUTYGW_PAGING_ENABLED": "false",
        "DUTYGW_SMTP_PORT": "2626",
    }
    config = load_config(path, env=env)
    assert config.ami.port == 5039
    assert config.database_url == "postgresql+psycopg://u@h/db"
    assert config.duty.extensions == ["8001", "8003"]
    assert config.paging.enabled is False
    assert config.smtp.port == 2626


def test_environment_alone_is_enough() -> None:
    config = load_config(None, env={"DUTYGW_DUTY_NUMBERS": "02787654321", "DUTYGW_DUTY_EXTENSIONS": "8001"})
    assert config.duty.numbers == ["02787654321"]


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        (MINIMAL + "[ami]\nprot = 1\n", {}, "unknown key ami.prot"),
        ('[duty]\nextensions = ["8001"]\n', {}, "missing key duty.numbers"),
        (MINIMAL + '[ami]\nport = "five"\n', {}, "key ami.port"),
        (MINIMAL + "[ami]\nport = 99999\n", {}, "key ami.port"),
        (MINIMAL, {"DUTYGW_AMI_PORT": "x"}, "DUTYGW_AMI_PORT: key ami.port"),
        (MINIMAL, {"DUTYGW_AMI_NOPE": "1"}, "DUTYGW_AMI_NOPE: unknown key ami.nope"),
        (MINIMAL, {"DUTYGW_NOSECTION_KEY": "1"}, "DUTYGW_NOSECTION_KEY"),
        (MINIMAL.replace("[duty]", '[duty]\ntimezone = "Mars/Base"'), {}, "duty.timezone"),
        (MINIMAL + "[smtp]\nrecipients = \"fax@duty.local\"\n", {}, "key smtp.recipients"),
        ("[duty\n", {}, "not valid TOML"),
    ],
)
def test_a_bad_key_names_the_key_and_its_source(
    tmp_path: Path, text: str, env: dict[str, str], expected: str | None
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    message = str(caught.value)
    if expected is not None:
        assert expected in message
    assert str(path) in message or any(name in message for name in env)


def test_the_variable_naming_the_file_is_not_a_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(path, env={"DUTYGW_CONFIG": str(path), "DUTYGW_AMI_PORT": "5040"})
    assert config.ami.port == 5040


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_cli_turns_a_config_error_into_exit_code_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, MINIMAL + "[ami]\nprot = 1\n")
    assert main(["--config", str(path), "run"]) == 2
    assert "unknown key ami.prot" in caplog.text
