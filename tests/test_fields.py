"""Register fields from text: tables of pages as OCR could read them (no OCR here).

The documents are written for these tests (not the fixtures' sentences); line boxes are
synthetic (``text_page``): each line a row, cells split at two spaces, chosen rows centred.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import pytest

from ocr.config import UrgencyConfig
from ocr.fields import (
    cjk_punctuation,
    extract_fields,
    fields_of,
    guess_kind,
    parse_doc_number,
    vote_doc_number,
)
from ocr.model import OcrLine, PageText, Rule
from ocr.ticks import Tick, option_words
from ocr.urgency import decide, option_rows
from ocr.zones import label_values, layout

RULES = UrgencyConfig()
WIDTH, HEIGHT, LEFT, RIGHT, PITCH, CHAR = 2480, 3508, 300, 2180, 100, 52


def text_page(text: str, *, page_no: int = 1, centered: Iterable[int] = (),
              confidence: float = 0.99, low: dict[int, float] | None = None) -> PageText:
    """A page as an engine would return it: one row per text line (the first in the top 5 %
    where the TTI line is printed), cells split at two spaces, ``centered`` lines centred;
    ``low`` gives single lines (by number) a lower confidence."""
    centred, low = set(centered), low or {}
    lines = []
    for n, line in enumerate(text.strip("\n").split("\n")):
        cells = [c for c in re.split(r"\s{2,}", line.strip()) if c]
        width = sum(CHAR * len(c) for c in cells) + 60 * (len(cells) - 1)
        x = (LEFT + RIGHT - width) // 2 if n in centred else LEFT
        for cell in cells:
            w = CHAR * len(cell)
            top = 40 if n == 0 else 200 + PITCH * n
            lines.append(OcrLine(cell, (x, top, x + w, top + 70), low.get(n, confidence)))
            x += w + 60
    return PageText(page_no, tuple(lines), "text", WIDTH, HEIGHT)


GONGWEN = """\
2026-03-02 02:10  FROM: 0551-2345678  P.1/2
000042
秘密★6个月
特急
北湖区应急管理局文件
北应急{bracket}号
关于做好汛期地质灾害
隐患巡查工作的通知
各街道办事处，区直有关单位：
近期我区降雨偏多，遇有重要紧急情况要立即报告。现就有关事项通知如下：
一、加强巡查
北湖区应急管理局
2026年3月1日
"""


@pytest.mark.parametrize("bracket, expected", [
    ("〔2026〕8号", "北应急〔2026〕8号"),
    ("[2026]8号", "北应急〔2026〕8号"),
    ("【2026】8号", "北应急〔2026〕8号"),
    ("（2026）8号", "北应急〔2026〕8号"),
    ("(2026)8号", "北应急〔2026〕8号"),
    ("「2026」8号", "北应急〔2026〕8号"),
    ("［2026】8号", "北应急〔2026〕8号"),
    ("：〔2026]8号", "北应急〔2026〕8号"),
    ("2026 8号", "北应急〔2026〕8号"),
    ("〔2020〕8号", "北应急〔2026〕8号"),  # one digit misread: the 成文日期's year wins
])
def test_gongwen_fields_with_brackets_as_ocr_reads_them(bracket: str, expected: str) -> None:
    page = text_page(GONGWEN.format(bracket=bracket), centered=(4, 5, 6, 7))
    fields = extract_fields([page], RULES)
    assert (fields.kind, fields.doc_number) == ("gongwen", expected)
    assert fields.issuer == "北湖区应急管理局"
    assert fields.title == "关于做好汛期地质灾害隐患巡查工作的通知"
    assert fields.recipients == "各街道办事处，区直有关单位："
    assert (fields.copy_no, fields.classification) == ("000042", "秘密")
    assert fields.secrecy_period == "6个月"
    assert fields.urgency == "特急"
    assert fields.doc_date == "2026年3月1日"


def test_tti_line_is_not_document_text() -> None:
    page = text_page("2026-03-02 02:10  EMERGENCY 0551-2345678  P.1/1\n加急\n南岭县水利局\n"
                     "关于开放泄洪闸的通知\n各乡镇：\n正文。", centered=(2, 3))
    assert layout(page).tti is not None
    fields = extract_fields([page], RULES)
    assert (fields.kind, fields.urgency, fields.issuer) == ("letter", "加急", "南岭县水利局")
    assert fields.title == "关于开放泄洪闸的通知"
    assert fields.doc_number is None


TELEGRAM = """\
西江市人民政府办公室明传电报
发电单位  西江市人民政府办公室  签批盖章  李四
等　　级  {level}  明电编号  西政办明电{number}
抄　　送  市委办公室
关于做好大风降温天气
防范工作的紧急通知
各县（区）人民政府，市政府各部门：
请立即部署。
"""


@pytest.mark.parametrize("level, number, expected_level, expected_number", [
    ("特提", "〔2025〕3号", "特提", "西政办明电〔2025〕3号"),
    ("平急", "【2025]3号", "平急", "西政办明电〔2025〕3号"),
    ("加急", "(2025）3号", "加急", "西政办明电〔2025〕3号"),
    ("", "〔2025〕3号", None, "西政办明电〔2025〕3号"),
])
def test_telegram_fields(level: str, number: str, expected_level: str | None,
                         expected_number: str) -> None:
    page = text_page(TELEGRAM.format(level=level, number=number), centered=(0, 4, 5))
    fields = extract_fields([page], RULES)
    assert (fields.kind, fields.issuer) == ("telegram", "西江市人民政府办公室")
    assert (fields.urgency, fields.doc_number) == (expected_level, expected_number)
    assert fields.title == "关于做好大风降温天气防范工作的紧急通知"


def test_telegram_label_split_by_ocr_noise() -> None:
    text = TELEGRAM.format(level="特急", number="〔2025〕3号").replace("等　　级", "等  ：级")
    fields = extract_fields([text_page(text, centered=(0, 4, 5))], RULES)
    assert (fields.urgency, fields.doc_number) == ("特急", "西政办明电〔2025〕3号")


@pytest.mark.parametrize("grade_label, cc_label", [
    ("等", "抄　　送"),     # 级 lost: what is left of the label is a box of its own
    ("等　　级", "秒：送"),  # 抄送 misread: the row above the centred title is not the title
    ("等", "送"),
])
def test_telegram_form_rows_garbled_by_ocr(grade_label: str, cc_label: str) -> None:
    text = TELEGRAM.format(level="特急", number="〔2025〕3号").replace(
        "等　　级", grade_label).replace("抄　　送", cc_label)
    page = text_page(text, centered=(0, 4, 5))
    fields = extract_fields([page], RULES)
    assert (fields.urgency, fields.doc_number) == ("特急", "西政办明电〔2025〕3号")
    assert fields.title == "关于做好大风降温天气防范工作的紧急通知"
    assert decide(layout(page), RULES).level == "特急"


COVER = """\
2025/07/01 23:50  DUTY 0731-1234567  1/2
红旗镇人民政府
传 真 件
收件单位  县人民政府总值班室  收件人  值班员
发件单位  红旗镇人民政府
发件人  王五  电　话  0731-7654321
日　期  2025年7月1日  页　数  共2页（含本页）
主　题  关于红旗镇防汛工作情况的报告
备注：  □紧急  ■请审阅  □请回复
"""

CARRIED = """\
2025/07/01 23:50  DUTY 0731-1234567  2/2
机密
加急
红旗镇人民政府文件
红政发〔2025〕21号
关于红旗镇防汛工作情况的报告
县人民政府：
现将有关情况报告如下。
红旗镇人民政府
2025年7月1日
"""


def test_cover_sheet_takes_number_and_marks_from_the_carried_document() -> None:
    pages = [text_page(COVER, centered=(1, 2)), text_page(CARRIED, page_no=2, centered=(3, 4, 5))]
    fields = extract_fields(pages, RULES)
    assert (fields.kind, fields.issuer, fields.sender) == ("cover", "红旗镇人民政府", "王五")
    assert (fields.doc_number, fields.urgency, fields.classification) == (
        "红政发〔2025〕21号", "加急", "机密")
    assert (fields.title, fields.pages_declared) == ("关于红旗镇防汛工作情况的报告", 2)


def test_report_form_fields() -> None:
    text = """\
突发事件信息报告单
临水县人民政府总值班室制
报告单位  柳林乡人民政府  报告时间  3月2日1时10分
报告人  赵六  联系电话  13800000000
事件名称  柳林乡民房火灾
紧急程度  □一般  □较急  □紧急
"""
    fields = extract_fields([text_page(text, centered=(0, 1))], RULES)
    assert (fields.kind, fields.issuer, fields.title, fields.sender) == (
        "report_form", "柳林乡人民政府", "柳林乡民房火灾", "赵六")
    assert fields.urgency is None and fields.doc_number is None


PHONE_RECORD = """\
2026-01-27 22:54  FROM: 0731-7745336  P.1/1
值班电话记录
秀峰县人民政府总值班室
来电单位  秀峰县应急管理局  来电时间  1月27日16时4分
来 电 人  汪金凤  来电号码  0731-6354728
{matter}  梨树乡上河村渔船险情(处置)
来电内容  梨树乡上河村一艘渔船失去动力，船上5名渔民。
紧急程度  □一般  □较急  □紧急
"""


def test_title_punctuation_is_chinese() -> None:
    assert cjk_punctuation("关于山洪灾情的续报(第2报)") == "关于山洪灾情的续报（第2报）"
    assert cjk_punctuation("马坊镇发生-起溺水事件") == "马坊镇发生一起溺水事件"
    assert cjk_punctuation("关于2025-2026年度工作的通知") == "关于2025-2026年度工作的通知"


@pytest.mark.parametrize("matter", ["事　由", "来电事由", "主要事项", "由"])  # 由: 事 lost
def test_phone_record_issuer_is_the_caller_and_title_the_matter(matter: str) -> None:
    page = text_page(PHONE_RECORD.format(matter=matter), centered=(1, 2))
    fields = extract_fields([page], RULES)
    assert (fields.kind, fields.issuer, fields.title, fields.sender) == (
        "report_form", "秀峰县应急管理局", "梨树乡上河村渔船险情（处置）", "汪金凤")


def test_a_row_wrapped_at_a_label_character_is_not_a_form_row() -> None:
    page = layout(text_page("TTI\n人受伤，现场已拉起警戒线。\n由于降雨，道路中断。"))
    assert all(not label_values(row) for row in page.rows)


def test_title_does_not_run_on_into_the_indented_first_line_of_the_text() -> None:
    text = """\
2026-05-06 00:06  FROM: 0731-7745336  P.1/1
值班信息
第12期
北山县应急管理局值班室  2026年5月6日
青石镇发生一起山洪
灾害致3人被困
险情发生后，镇主要负责同志立即带领应急分队赶赴现场开展搜救工作，
被困群众已全部获救。
"""
    page = text_page(text, centered=(1, 2, 4, 5))
    lines = list(page.lines)
    first = next(i for i, ln in enumerate(lines) if ln.text.startswith("险情"))
    box = lines[first].box  # the paragraph's first line: indented two characters, to the edge
    lines[first] = replace(lines[first], box=(LEFT + 2 * CHAR, box[1], RIGHT, box[3]))
    fields = extract_fields([replace(page, lines=tuple(lines))], RULES)
    assert fields.title == "青石镇发生一起山洪灾害致3人被困"


def test_report_with_masthead_and_without() -> None:
    masthead = """\
紧急信息
值班快报
第12期
东山区应急管理局值班室  2026年1月5日
东山区一化工厂发生爆燃
一、基本情况
"""
    fields = extract_fields([text_page(masthead, centered=(1, 2, 4))], RULES)
    assert (fields.kind, fields.issuer, fields.title) == (
        "report", "东山区应急管理局值班室", "东山区一化工厂发生爆燃")
    assert fields.urgency is None  # 紧急信息 makes it urgent, but is not a formal 紧急程度
    plain = """\
关于河西街道燃气泄漏的情况报告
区人民政府总值班室：
一、基本情况
正文。
河西街道办事处
2026年2月3日
"""
    fields = extract_fields([text_page(plain, centered=(0,))], RULES)
    assert (fields.kind, fields.issuer, fields.title, fields.doc_date) == (
        "report", "河西街道办事处", "关于河西街道燃气泄漏的情况报告", "2026年2月3日")


def test_two_different_numbers_in_the_header_are_a_conflict() -> None:
    text = GONGWEN.format(bracket="〔2026〕8号").replace(
        "关于做好汛期地质灾害", "北应急〔2026〕9号\n关于做好汛期地质灾害")
    fields = extract_fields([text_page(text, centered=(4, 5, 6, 7, 8))], RULES)
    assert "doc_number" in fields.conflicts


def test_number_quoted_in_the_text_is_not_the_documents() -> None:
    text = GONGWEN.format(bracket="〔2026〕8号").replace(
        "一、加强巡查", "根据《通知》（省政办发〔2025〕30号）要求，")
    fields = extract_fields([text_page(text, centered=(4, 5, 6, 7))], RULES)
    assert fields.doc_number == "北应急〔2026〕8号" and not fields.conflicts


@pytest.mark.parametrize("text, expected", [
    ("清森防指办〔2025】30号", "清森防指办〔2025〕30号"),
    ("长政办明电（2025）11号", "长政办明电〔2025〕11号"),
    ("江政小明]电[2025】47号", "江政办明电〔2025〕47号"),  # 办 in small print read as 小
    ("金公两〔2027〕5号", "金公函〔2027〕5号"),            # 函 read as 两
    ("湘电力〔2026〕3号", "湘电力〔2026〕3号"),
    ("东交：[2026]16号", "东交〔2026〕16号"),
    ("县政府三楼会议室", None),
    ("2026年3月1日", None),
])
def test_parse_doc_number(text: str, expected: str | None) -> None:
    assert parse_doc_number(text) == expected


def test_vote_prefers_readings_that_abbreviate_the_issuer() -> None:
    readings = ["江政少明电〔2025〕47号", "江政少明电〔2025〕47号", "江政办明电〔2025〕47号"]
    voted = vote_doc_number(readings, "2025", "江州市人民政府办公室")
    assert voted == "江政办明电〔2025〕47号"
    assert vote_doc_number(readings, "2025", None) == "江政少明电〔2025〕47号"
    assert vote_doc_number(["江政办明电〔2085〕47号"], "2025") == "江政办明电〔2025〕47号"
    assert vote_doc_number(["无文号"], None) is None


@pytest.mark.parametrize("first_line, kind", [
    ("某某县人民政府办公室明传电报", "telegram"),
    ("传真封面", "cover"),
    ("值班电话记录单", "report_form"),
    ("关于某某镇山洪的情况报告", "report"),
    ("某某县人民政府文件", "gongwen"),
    ("某某县人民政府办公室", "letter"),
])
def test_guess_kind(first_line: str, kind: str) -> None:
    assert guess_kind(layout(text_page(first_line + "\n正文。"))) == kind


def test_signature_smudged_by_the_seal_takes_the_place_name_from_the_text() -> None:
    text = """\
关于白沙乡山洪灾害的情况报告
县人民政府总值班室：
7月2日，白沙乡柳村突发山洪。白沙乡党委、政府立即组织转移群众。
日沙乡人民政化
2026年7月2日
"""
    page = text_page(text, centered=(0,), low={3: 0.8})
    assert extract_fields([page], RULES).issuer == "白沙乡人民政府"
    clean = text_page(text.replace("日沙乡人民政化", "白沙乡人民政府"), centered=(0,))
    assert extract_fields([clean], RULES).issuer == "白沙乡人民政府"


@pytest.mark.parametrize("read, confidence", [
    ("镇人民政府", 0.95),      # the place lost under the seal
    ("牌镇人民政府", 0.8),     # one character of it lost
    ("石牌镇人民政付", 0.95),  # the ending one character off, read confidently
    ("K牌镇人民政府", 0.95),   # a speck read as a letter
])
def test_signature_repaired_from_the_place_the_title_names(read: str, confidence: float) -> None:
    text = f"""\
关于石牌镇松林村渔船遇险情况的紧急报告
县人民政府总值班室：
渔船失去动力，船上5名渔民被困。险情发生后，我镇立即启动应急预案。
{read}
2026年7月2日
"""
    page = text_page(text, centered=(0,), low={3: confidence})
    assert extract_fields([page], RULES).issuer == "石牌镇人民政府"


def test_signature_lost_under_the_seal_is_no_issuer_from_the_text() -> None:
    text = """\
关于石牌镇松林村渔船遇险情况的紧急报告
县人民政府总值班室：
渔船失去动力，船上5名渔民被困。
石牌镇将继续全力做好救援工作，有关情况随时报告。
2026年7月2日
"""
    assert extract_fields([text_page(text, centered=(0,))], RULES).issuer is None


def test_form_row_whose_first_label_lost_a_character() -> None:
    text = TELEGRAM.format(level="加急", number="〔2025〕3号").replace("等　　级", "级")
    fields = extract_fields([text_page(text, centered=(0, 4, 5))], RULES)
    assert (fields.urgency, fields.doc_number) == ("加急", "西政办明电〔2025〕3号")


TICKED_FORM = """\
2026-01-09 03:12  FROM: 0551-2345678  P.1/1
突发事件信息报告单
报告单位  青石镇人民政府  报告时间  1月9日3时
事件名称  青石镇民房坍塌
紧急程度  □一般  ■急件
"""


def test_the_fields_take_urgency_from_the_header_pass_decision() -> None:
    """Issue 10: the fields decided urgency again, from the text alone, and the reader kept
    that level when its own decision had none: OCR's ■ before 急件 gave the register 急件
    while the image showed 一般 ticked and the fax was not urgent. Now the one decision
    (with the image's ticks) gives the register's urgency, and its reasons appear once."""
    page = layout(text_page(TICKED_FORM, centered=(1,)))
    (row,) = option_rows(page)
    ticks = [Tick(word, word == "一般", 0.2 if word == "一般" else 0.0, (0, 0, 1, 1))
             for word in option_words(row)]
    decision = decide(page, RULES, ticks={row.index: ticks})
    assert not decision.should_page and decision.level is None
    fields = fields_of([page], decision, RULES)
    assert (fields.urgency, fields.issuer, fields.kind) == (None, "青石镇人民政府", "report_form")
    assert [r.rule for r in fields.reasons] == [Rule.ISSUER, Rule.UNTICKED_BOX]
    assert extract_fields([text_page(TICKED_FORM, centered=(1,))], RULES).urgency == "急件"  # text only


def test_the_fields_carry_the_decisions_classification_and_period() -> None:
    page = layout(text_page(GONGWEN.format(bracket="〔2026〕8号"), centered=(4, 5, 6, 7)))
    decision = replace(decide(page, RULES), classification="机密", secrecy_period="1年")
    fields = fields_of([page], decision, RULES)
    assert (fields.classification, fields.secrecy_period, fields.urgency) == ("机密", "1年", "特急")
    assert fields.reasons[len(fields.reasons) - len(decision.reasons):] == decision.reasons
