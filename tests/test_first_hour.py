"""The first hour as a user: the mistakes a new operator makes get plain words, never a
traceback, and a configuration means the same wherever the command is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import terms
from gateway.config import load_config
from gateway.errors import ConfigError

SAMPLE_TIFF = Path(__file__).resolve().parents[1] / "gateway" / "samples" / "fax" / "fax_002.tif"
MINIMAL = '[duty]\nnumbers = ["02787654321"]\nextensions = ["8001", "8002"]\n'


def dutygw(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUTYGW_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "dutygw.toml"
    path.parent.mkdir()
    path.write_text(MINIMAL + '[paths]\ndata_dir = "var"\nphonebook = "book.csv"\n', encoding="utf-8")
    return path


def test_relative_paths_are_taken_from_the_configuration_files_folder(
        config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config(Path("..") / "conf" / "dutygw.toml", env={})
    assert loaded.paths.data_dir == config.parent / "var"
    assert loaded.paths.phonebook == config.parent / "book.csv"
    assert loaded.database_url == f"sqlite:///{config.parent / 'var' / 'dutygw.sqlite'}"
    # from the environment a relative path is the current folder's, like any command-line path
    overridden = load_config(config, env={"DUTYGW_PATHS_DATA_DIR": "here"})
    assert overridden.paths.data_dir == elsewhere / "here"


def test_calls_from_another_folder_reads_the_configured_database(config: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = dutygw("-c", str(config), "calls", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (config.parent / "var" / "dutygw.sqlite").is_file()
    assert not (elsewhere / "var").exists()


def _no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr


def test_config_naming_a_folder_is_a_plain_error(tmp_path: Path) -> None:
    done = dutygw("-c", str(tmp_path), "calls", cwd=tmp_path)
    _no_traceback(done)
    assert done.returncode == 2 and "is a folder, not a configuration file" in done.stderr


def test_no_configuration_at_all_says_how_to_give_one(tmp_path: Path) -> None:
    done = dutygw("calls", cwd=tmp_path)
    _no_traceback(done)
    assert done.returncode == 2
    assert "--config" in done.stderr and "examples/dutygw.toml" in done.stderr, done.stderr


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("DUTYGW_AMI_PORT", "abc", "DUTYGW_AMI_PORT: key ami.port: expected a whole number, got 'abc'"),
    ("DUTYGW_SMTP_PORT", "99999", "DUTYGW_SMTP_PORT: key smtp.port must be a TCP port, got 99999"),
    ("DUTYGW_PAGING_ATTEMPT_INTERVAL_SECONDS", "soon", "expected a number, got 'soon'"),
])
def test_a_bad_variable_is_blamed_in_plain_words(config: Path, variable: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={variable: value})
    message = str(caught.value)
    assert words in message and variable in message
    assert "invalid literal" not in message and "could not convert" not in message
    assert str(config) not in message  # the file is not to blame


def test_a_bad_time_of_day_is_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "dutygw.toml"
    path.write_text(MINIMAL + '[calendar]\nshifts = [{ name = "d", label = "白班", start = "8am", end = "19:00" }]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r'expected a time of day like "08:00", got \'8am\''):
        load_config(path, env={})


def test_ingest_of_a_binary_file_named_eml_is_set_aside_without_a_traceback(config: Path, tmp_path: Path) -> None:
    binary = tmp_path / "scan.eml"
    binary.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(3000)))  # no mail, no image: noise
    done = dutygw("-c", str(config), "fax", "ingest", str(binary), cwd=tmp_path)
    _no_traceback(done)
    assert terms.MAIL_STATE["quarantined"] in done.stderr, done.stdout + done.stderr  # set aside, kept, said so


@pytest.mark.ocr
def test_output_cut_short_by_head_is_no_traceback(config: Path, tmp_path: Path) -> None:
    assert dutygw("-c", str(config), "fax", "ingest", str(SAMPLE_TIFF), cwd=tmp_path).returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUTYGW_")}
    process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "-c", str(config), "fax", "show", "1"],
                               cwd=tmp_path, env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has read enough before the first line
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=300) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
