"""Written numbers, dates, times, 文号 and phone numbers as a duty-room operator says them."""

from __future__ import annotations

import json
import re

import pytest

from gateway.paging.spoken import (
    as_pinyin,
    count,
    number,
    phone,
    receipt_no,
    speakable,
    time_of_day,
)
from tests.conftest import FAX_FIXTURES


@pytest.mark.parametrize(("written", "said"), [
    # receipt and document numbers: the year digit by digit, the number as a number
    ("传真〔2026〕0012号", "传真二〇二六年十二号"),
    ("鄂政发〔2026〕12号", "鄂政发二〇二六年十二号"),
    ("清森防指办〔2025〕30号", "清森防指办二〇二五年三十号"),
    ("临森防指办〔2024〕140号", "临森防指办二〇二四年一百四十号"),
    ("临森防指办[2024]140号", "临森防指办二〇二四年一百四十号"),  # OCR's brackets
    ("长政办明电（2025）11号", "长政办明电二〇二五年十一号"),
    ("国办函〔2026〕第3号", "国办函二〇二六年第三号"),
    ("鄂政发〔2026〕12", "鄂政发二〇二六年十二"),  # the 号 lost to OCR
    ("传真〔9999〕0001号", "传真九九九九年一号"),  # an implausible year is still said as one
    # dates and times
    ("2026年11月21日23时17分", "二〇二六年十一月二十一日二十三时十七分"),
    ("2026-11-21 23:05", "二〇二六年十一月二十一日二十三时零五分"),
    ("请于20:00前报送", "请于二十时整前报送"),
    ("00:05", "零时零五分"),
    ("１２月３日", "十二月三日"),
    ("关于做好2025年春节期间值班工作的通知", "关于做好二〇二五年春节期间值班工作的通知"),
    ("近10年", "近十年"),
    # incidents named by their date
    ("关于新桥镇“12·1”道路交通事故的通报", "关于新桥镇“十二一”道路交通事故的通报"),
    ("关于河口乡“6·26”道路交通事故的通报", "关于河口乡“六二六”道路交通事故的通报"),
    # phone numbers: digit by digit, 1 as 幺, in groups
    ("请回电027-87654321", "请回电〇二七，八七六五，四三二幺"),
    ("（027）87654321", "〇二七，八七六五，四三二幺"),
    ("+86 27 8765 4321", "〇二七，八七六五，四三二幺"),
    ("手机13800138000", "手机幺三八，〇〇幺三，八〇〇〇"),
    ("拨打110", "拨打幺幺〇"),
    ("电话：12345", "电话：幺二三四五"),
    # quantities
    ("降雨量150毫米，3.5级地震，10%", "降雨量一百五十毫米，三点五级地震，百分之十"),
    ("3-5级阵风", "三至五级阵风"),
    ("气温-3.5℃", "气温零下三点五摄氏度"),
    ("2人遇险", "两人遇险"),
    ("第2份", "第二份"),
    ("10000余人", "一万余人"),
    ("1005", "一千零五"),
    ("按1确认收到，按2重听。", "按一确认收到，按二重听。"),
    # nothing to do
    ("这里是政务值班室。", "这里是政务值班室。"),
])
def test_written_forms_are_said_as_an_operator_would(written: str, said: str) -> None:
    assert speakable(written) == said


def test_spoken_text_passes_unchanged() -> None:
    for written in ("传真〔2026〕0137号，请回电027-87654321，2026年11月21日23:05", "3.5级，10%，2人"):
        said = speakable(written)
        assert speakable(said) == said
        assert not re.search(r"[0-9]", said)


@pytest.mark.parametrize(("n", "said"), [(0, "零"), (1, "一"), (10, "十"), (12, "十二"), (20, "二十"), (35, "三十五"),
                                          (101, "一百零一"), (137, "一百三十七"), (1005, "一千零五"), (2000, "两千"), (20000, "两万"),
                                          (200, "二百")])
def test_numbers(n: int, said: str) -> None:
    assert number(n) == said


def test_counts_say_two_as_liang() -> None:
    assert (count(2), count(3), count(12)) == ("两", "三", "十二")


@pytest.mark.parametrize(("year", "seq", "said"), [
    (2026, 12, "传真二〇二六年第十二号"), (2026, 137, "传真二〇二六年第一百三十七号"), (2027, 1, "传真二〇二七年第一号"),
])
def test_receipt_numbers(year: int, seq: int, said: str) -> None:
    assert receipt_no(year, seq) == said


@pytest.mark.parametrize(("written", "said"), [
    ("027-87654321", "〇二七，八七六五，四三二幺"), ("02787654321", "〇二七，八七六五，四三二幺"),
    ("0710-1234567", "〇七幺〇，幺二三四五六七"), ("13800138000", "幺三八，〇〇幺三，八〇〇〇"),
    ("+86 138 0013 8000", "幺三八，〇〇幺三，八〇〇〇"), ("8001", "八〇〇幺"),
])
def test_phone_numbers(written: str, said: str) -> None:
    assert phone(written) == said


@pytest.mark.parametrize(("hours", "minutes", "said"), [(23, 5, "二十三时零五分"), (8, 30, "八时三十分"), (20, 0, "二十时整")])
def test_times(hours: int, minutes: int, said: str) -> None:
    assert time_of_day(hours, minutes) == said


@pytest.mark.parametrize(("text", "syllables"), [
    ("重复一遍", "chong2 fu4"),  # not zhong4: espeak-ng alone reads every 重 as zhong4
    ("按二重听", "chong2 ting1"),  # zhong4 ting1 would be "hard of hearing"
    ("王局长您好", "ju2 zhang3"),
    ("请尽快处理", "chu2 li3"),  # chu3 (3-3 sandhi makes it 2), not espeak-ng's chu4
    ("银行", "yin2 hang2"),
    ("长溪县人民政府办公室", "chang2 xi1"),  # a place name: 长 alone is cháng
    ("长政办明电", "chang2 zheng4"),
    ("县长", "xian4 zhang3"),
])
def test_readings_come_from_the_phrase_not_the_character(text: str, syllables: str) -> None:
    assert syllables in as_pinyin(text)


def test_every_fixture_field_is_said_without_a_digit_or_a_bracket() -> None:
    for truth_file in sorted(FAX_FIXTURES.glob("*.json")):
        fields = json.loads(truth_file.read_text(encoding="utf-8"))["fields"]
        for name in ("issuer", "title", "doc_number"):
            if fields.get(name):
                said = speakable(fields[name])
                assert not re.search(r"[0-9〔〕\[\]]", said), (truth_file.name, name, said)
