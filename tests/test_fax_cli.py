"""``dutygw faxes`` / ``dutygw fax show|sign|ingest`` through ``gateway.cli.main``.

``ingest`` runs the configured (real) OCR, tesseract here to keep it cheap; one small
1-page fax and one Asterisk mail are filed once for the module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.cli import main
from storage.db import open_database
from storage.faxes import Receipt
from tests.conftest import FAX_FIXTURES
from tests.fax_mails import asterisk_mail

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module", autouse=True)
def only_the_config_file() -> Iterator[None]:
    """Every DUTYGW_* variable overrides the configuration; the test harness's own
    (TEST_DUTYGW_POSTGRES_URL, set in CI) must not reach it."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("DUTYGW_")]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "dutygw.toml"
    path.write_text(
        f'[duty]\nnumbers = ["02787654321"]\nextensions = ["8001"]\n'
        f'[paths]\ndata_dir = "{folder / "var"}"\n'
        f'[ocr]\nengine = "tesseract"\nheader_second_reader = "none"\n'
    )
    mail = folder / "fax.eml"
    mail.write_bytes(asterisk_mail((FAX_FIXTURES / "fax_020.tif").read_bytes(), station="0710-3456789",
                                   pages=1, received=datetime(2026, 11, 22, 23, 5, 9, tzinfo=ZONE),
                                   caller="07103456789"))
    assert main(["--config", str(path), "fax", "ingest", str(mail)]) == 0
    assert main(["--config", str(path), "fax", "ingest", str(FAX_FIXTURES / "fax_022.tif")]) == 0
    yield path


def run(config_file: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--config", str(config_file), *argv])
    return code, capsys.readouterr().out


def test_faxes_json_lists_the_register(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(config_file, capsys, "faxes", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2
    assert all(set(row) == {"receipt_no", "received_at", "station", "pages", "doc_number", "issuer", "title",
                            "urgency", "classification", "is_urgent", "urgency_reasons", "status"} for row in rows)
    mailed = next(row for row in rows if row["station"] == "0710-3456789")
    assert mailed["received_at"] == "2026-11-22T23:05:09+08:00" and mailed["pages"] == 1
    assert mailed["receipt_no"] == "传真〔2026〕0001号"
    assert mailed["status"] in ("filed", "needs_review")


def test_faxes_table(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(config_file, capsys, "faxes")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("登记号") and len(lines) == 3
    assert "传真〔2026〕0001号" in out and "2026-11-22 23:05" in out


def test_show_by_number_and_by_id(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, by_number = run(config_file, capsys, "fax", "show", "传真〔2026〕0001号")
    assert code == 0 and "登记号: 传真〔2026〕0001号" in by_number and "--- 第 1 页 ---" in by_number
    code, as_json = run(config_file, capsys, "fax", "show", "1", "--format", "json")
    details = json.loads(as_json)
    assert details["receipt_no"] == "传真〔2026〕0001号" and len(details["page_texts"]) == 1
    assert details["page_texts"][0]["text"].strip(), "OCR produced no text for a printed page"
    assert run(config_file, capsys, "fax", "show", "999")[0] == 4


def test_sign_once(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(config_file, capsys, "fax", "sign", "2026-1", "--by", "张三")
    assert code == 0 and "张三" in out
    assert run(config_file, capsys, "fax", "sign", "1", "--by", "李四")[0] == 4
    code, out = run(config_file, capsys, "fax", "show", "1", "--format", "json")
    details = json.loads(out)
    assert (details["status"], details["signed_by"]) == ("signed", "张三") and details["signed_at"]


def test_classified_title_is_shown_in_the_register(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.config import load_config

    db = open_database(load_config(config_file).database_url)
    with db.session() as session:
        receipt = session.get(Receipt, 2)
        assert receipt is not None
        receipt.classification, receipt.title = "机密", "关于某事项的通知"
    db.dispose()
    code, out = run(config_file, capsys, "faxes")
    assert code == 0 and "【机密】关于某事项的通知" in out


def test_ingest_of_a_missing_file_is_an_input_error(config_file: Path, tmp_path: Path) -> None:
    assert main(["--config", str(config_file), "fax", "ingest", str(tmp_path / "none.tif")]) == 4


def test_set_aside_mail_is_listed_with_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fax_mails import blank_tiff

    path = tmp_path / "dutygw.toml"
    path.write_text(f'[duty]\nnumbers = ["02787654321"]\nextensions = ["8001"]\n'
                    f'[paths]\ndata_dir = "{tmp_path / "var"}"\n'
                    f'[ocr]\nengine = "tesseract"\nheader_second_reader = "none"\n')
    document = tmp_path / "fax.tif"
    document.write_bytes(blank_tiff(1, height=120))
    lunch = tmp_path / "lunch.eml"
    lunch.write_bytes(b"From: a@b\r\nSubject: lunch\r\n\r\nno fax here\r\n")
    assert main(["--config", str(path), "fax", "ingest", str(document)]) == 0
    assert main(["--config", str(path), "fax", "ingest", str(document)]) == 1  # the same fax again
    assert main(["--config", str(path), "fax", "ingest", str(lunch)]) == 1
    code, out = run(path, capsys, "fax", "setaside", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and sorted(r["kind"] for r in rows) == ["重复", "隔离"]
    by_kind = {r["kind"]: r for r in rows}
    assert "传真〔" in by_kind["重复"]["reason"] and "邮件中没有传真文件" in by_kind["隔离"]["reason"]
    assert all(Path(r["spool"]).is_file() for r in rows)
    code, out = run(path, capsys, "fax", "setaside")
    assert code == 0 and "未登记的来信" in out and "原因：" in out
    code, out = run(path, capsys, "faxes")
    assert code == 0 and "另有 2 封来信" in out
