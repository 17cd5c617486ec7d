"""The urgency decision on text: the traps of a naive rule, near-misses, recall first.

Pages are synthetic (``text_page``), written for these tests; what matters is where a word
stands: header zone, form field, option box, or running text.
"""

from __future__ import annotations

import pytest

from ocr.config import UrgencyConfig
from ocr.model import PageText
from ocr.ticks import Tick, option_words
from ocr.urgency import RULE_BOOK, combine, decide, explain, header_rows, option_rows
from ocr.zones import Row, group_rows, layout
from tests.test_fields import text_page

RULES = UrgencyConfig()
TTI = "2026-01-09 03:12  FROM: 0551-2345678  P.1/1"
DOC = """\
{tti}
{marks}
南城县人民政府办公室文件
南政办〔2026〕5号
关于做好春节期间安全防范工作的通知
各乡镇人民政府：
遇有重要紧急情况，要在第一时间报告。请各地{body}。
"""


def gongwen(marks: str, body: str = "认真落实", *, low: dict[int, float] | None = None) -> PageText:
    return text_page(DOC.format(tti=TTI, marks=marks, body=body),
                     centered=range(marks.count("\n") + 2, marks.count("\n") + 5), low=low)


@pytest.mark.parametrize("marks, urgent, possible, level, classification, period", [
    ("特急", True, False, "特急", None, None),
    ("加急", True, False, "加急", None, None),
    ("000120\n机密★1年\n特急", True, False, "特急", "机密", "1年"),
    ("绝密★长期\n加急", True, False, "加急", "绝密", "长期"),
    ("秘密", False, False, None, "秘密", None),
    ("急件", True, False, "急件", None, None),          # older faxes
    ("000120  特急", True, False, "特急", None, None),  # top right, beside the 份号
    ("特急 .", True, False, "特急", None, None),        # speck read after the mark
    ("机蜜★1年", False, False, None, "机密", "1年"),   # near-miss of a classification
    ("特忽", False, True, None, None, None),            # near-misses: page, never downgrade
    ("加怠", False, True, None, None, None),
    ("急", False, True, None, None, None),
    ("平急", False, False, "平急", None, None),
    ("平怠", False, False, None, None, None),           # only near the calm mark
])
def test_header_zone_marks(marks: str, urgent: bool, possible: bool, level: str | None,
                           classification: str | None, period: str | None) -> None:
    decision = decide(layout(gongwen(marks)), RULES)
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, possible)
    assert (decision.level, decision.classification, decision.secrecy_period) == (
        level, classification, period)


def test_unmarked_document_with_urgent_words_in_its_text_is_not_urgent() -> None:
    page = gongwen("", body="立即启动应急响应，特急情况随时报告，加急处置")
    decision = decide(layout(page), RULES)
    assert not decision.should_page
    ignored = [r for r in decision.reasons if r.rule == "ignored_body"]
    assert ignored and all("正文" in r.where for r in ignored)


REPORT = """\
{tti}
{marks}
{title}
县人民政府总值班室：
{body}
"""


@pytest.mark.parametrize("title, marks, urgent", [
    # 紧急 qualifying the document in its title is a strong signal, with or without a mark
    ("关于青石镇马家湾村群众遇险情况的紧急报告", "", True),
    ("关于青石镇马家湾村群众遇险|情况的紧急报告", "", True),        # a title of two rows
    ("关于做好寒潮防范的紧急通知", "", True),
    ("关于官桥镇山洪灾情的紧急报告（第2报）", "", True),
    ("紧急信息", "", True),
    # 紧急 as part of a term, a negation, or beaten by a formal 平急
    ("关于青石镇开展紧急避险转移演练情况的报告", "", False),
    ("关于官桥镇山洪灾情的续报（第3报）", "", False),
    ("关于做好寒潮防范的紧急通知", "平急", False),
    ("关于做好寒潮防范的紧急通知", "特急", True),
])
def test_urgent_in_the_title_line(title: str, marks: str, urgent: bool) -> None:
    rows = title.split("|")
    text = REPORT.format(tti=TTI, marks=marks, title="\n".join(rows),
                         body="遇有紧急情况立即报告，群众已于当日紧急转移安置。现将有关事项紧急通知如下：")
    first = 2 if marks else 1
    page = text_page(text.replace("\n\n", "\n"), centered=range(first, first + len(rows)))
    decision = decide(layout(page), RULES)
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, False)
    rules = {r.rule for r in decision.reasons}
    assert bool(rules & {"title_flag", "header_flag"}) == urgent  # a lone 紧急信息 heads the page
    if marks == "平急":
        assert "title_overruled" in rules


def test_urgent_words_in_the_text_below_the_title_do_not_count() -> None:
    page = text_page(REPORT.format(tti=TTI, marks="", title="关于官桥镇防汛工作的报告",
                                   body="遇有紧急情况立即报告，群众已于当日紧急转移安置。现将有关事项紧急通知如下："
                                   ).replace("\n\n", "\n"),
                     centered=(1,))
    decision = decide(layout(page), RULES)
    assert not decision.should_page
    assert {r.rule for r in decision.reasons} == {"ignored_body"}


@pytest.mark.parametrize("marks, urgent, possible", [
    ("急件", True, False),            # a cover sheet's stamp
    ("加急", True, False),
    ("非急件", False, False),          # negated: not a near-miss of 急件
    ("此件不紧急", False, False),
])
def test_stamps_and_negations_in_the_header_zone(marks: str, urgent: bool,
                                                 possible: bool) -> None:
    text = f"{TTI}\n{marks}\n望川县消防救援大队\n传真封面\n发件单位  望川县消防救援大队\n"
    decision = decide(layout(text_page(text, centered=(2, 3))), RULES)
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, possible)


def test_near_miss_of_the_calm_mark_pages_only_when_unsure() -> None:
    assert not decide(layout(gongwen("乎急")), RULES).should_page
    unsure = decide(layout(gongwen("乎急", low={1: 0.4})), RULES)
    assert unsure.possibly_urgent and unsure.reasons[0].rule == "near_miss"


def test_badly_read_short_header_row_is_possibly_urgent() -> None:
    decision = decide(layout(gongwen("蚌蛤", low={1: 0.3})), RULES)
    assert decision.possibly_urgent
    assert decision.reasons[0].rule == "unreadable_header"
    assert decision.reasons[0].confidence == pytest.approx(0.3)


@pytest.mark.parametrize("error, lines", [("engine crashed", ()), (None, ())])
def test_unreadable_page_is_possibly_urgent(error: str | None, lines: tuple) -> None:
    page = PageText(1, lines, "rapidocr", 2480, 3508, error)
    decision = decide(layout(page), RULES)
    assert decision.possibly_urgent and not decision.is_urgent
    assert decision.reasons[0].rule == "unreadable_header"


TELEGRAM = """\
{tti}
北江市人民政府办公室明传电报
发电单位  北江市人民政府办公室  签批盖章  张三
等　　级  {level}  明电编号  北政办明电〔2026〕2号
关于立即开展危化品安全检查的{kind}
"""


@pytest.mark.parametrize("level, kind, urgent, possible", [
    ("特提", "通知", True, False), ("特急", "通知", True, False), ("加急", "通知", True, False),
    ("平急", "通知", False, False), ("", "通知", False, False), ("特忽", "通知", False, True),
    ("", "紧急通知", True, False),      # no grade: the title says it is urgent
    ("平急", "紧急通知", False, False),  # the formal grade wins over the title
])
def test_telegram_grade(level: str, kind: str, urgent: bool, possible: bool) -> None:
    page = text_page(TELEGRAM.format(tti=TTI, level=level, kind=kind), centered=(1, 4))
    decision = decide(layout(page), RULES)
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, possible)


COVER = """\
{tti}
西林县交通运输局
传真封面
发件单位  西林县交通运输局
主　题  关于道路塌方的情况报告
{remark}
南山市人民政府总值班室：现将报告传真给你们，请查收。
"""


@pytest.mark.parametrize("remark, urgent, possible", [
    ("备注：  □紧急  ■请审阅  □请回复", False, False),   # trap: an unticked □紧急
    ("备注：  ■紧急  □请审阅  □请回复", True, False),
    ("备注：  √紧急  □请审阅  □请回复", True, False),
    ("备注：紧急！请即呈送带班领导阅示。", True, False),   # a remark that says 紧急
    ("备注：请转有关领导阅。", False, False),
    ("备注：急件，请即呈送带班领导。", True, False),     # a mark written in the remark
    ("备注：非紧急件，请于工作日转办。", False, False),   # negated
    ("备注：此件不紧急，请按正常程序呈阅。", False, False),
    ("备注：  ■急件  □请阅办  □仅供参考", True, False),
    ("备注：  □急件  ■请阅办  □仅供参考", False, False),
    ("备注：■急仆请阅办  请回复：仅供参考", True, False),  # 急件 misread after a filled box
    ("缓急  ■急件  □普通", True, False),                # a 缓急 row of boxes
    ("缓急  □急件  ■普通", False, False),
    ("备注：  紧急  请审阅  请回复", False, True),         # box glyphs lost, no image reading
])
def test_cover_sheet_remarks_and_boxes(remark: str, urgent: bool, possible: bool) -> None:
    page = text_page(COVER.format(tti=TTI, remark=remark), centered=(1, 2))
    decision = decide(layout(page), RULES)
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, possible)


FORM = """\
{tti}
突发事件信息报告单
报告单位  青石镇人民政府  报告时间  1月9日3时
事件名称  青石镇民房坍塌
基本情况  镇里紧急疏散群众20人，特急情况已报告。
紧急程度  {options}
"""


@pytest.mark.parametrize("options, ticked, urgent", [
    ("□一般  □较急  □紧急", "紧急", True),
    ("□一般  □较急  □紧急", "较急", False),
    ("□一般  □较急  □紧急", "一般", False),
    ("□一般  □较急  的紧态", "的紧态", True),   # the tick garbled the label as OCR read it
    ("一般  较急  亡紧急", "亡紧急", True),     # the box read as a character
    ("一般  较忽  紧急", "较忽", False),        # a near-miss of 较急 is 较急
])
def test_report_form_tick_decides(options: str, ticked: str, urgent: bool) -> None:
    page = layout(text_page(FORM.format(tti=TTI, options=options), centered=(1,)))
    (row,) = option_rows(page)
    ticks = [Tick(word, word == ticked, 0.2 if word == ticked else 0.0, (0, 0, 1, 1))
             for word in option_words(row)]
    decision = decide(page, RULES, ticks={row.index: ticks})
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, False)
    assert ("ticked_box" in {r.rule for r in decision.reasons}) is urgent


@pytest.mark.parametrize("options, urgent, possible", [
    ("般  L较急·。W紧急", True, False),    # the hand's √ read as W before 紧急
    ("□一般  □较急  □紧急", False, True),  # nothing ticked to be seen: cannot rule it out
    ("√一般  □较急  □紧急", False, False),  # the tick OCR saw is on 一般
])
def test_report_form_whose_tick_the_image_missed(options: str, urgent: bool,
                                                 possible: bool) -> None:
    page = layout(text_page(FORM.format(tti=TTI, options=options), centered=(1,)))
    (row,) = option_rows(page)
    ticks = [Tick(word, False, 0.0, (0, 0, 1, 1)) for word in option_words(row)]
    decision = decide(page, RULES, ticks={row.index: ticks})
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, possible)


def test_report_form_without_image_reading_is_possibly_urgent_only_for_the_urgent_box() -> None:
    page = layout(text_page(FORM.format(tti=TTI, options="一般  较急  紧急"), centered=(1,)))
    decision = decide(page, RULES)
    assert decision.possibly_urgent
    assert [r.word for r in decision.reasons if r.rule == "unreadable_tick"] == ["紧急"]


@pytest.mark.parametrize("mark, urgent", [("紧急信息", True), ("紧急", True), ("特急", True),
                                          ("", False)])
def test_incident_report_marks(mark: str, urgent: bool) -> None:
    text = (f"{TTI}\n{mark}\n关于青石镇民房坍塌的情况报告\n县人民政府总值班室：\n"
            "重要紧急情况及时续报。")
    decision = decide(layout(text_page(text, centered=(2,))), RULES)
    assert (decision.is_urgent, decision.possibly_urgent) == (urgent, False)


def test_second_reader_adds_exact_marks_only() -> None:
    page = layout(gongwen(""))
    zone = header_rows(page)
    assert zone == ()
    second = _rows("特急")
    decision = decide(page, RULES, second=second, second_engine="tesseract")
    assert decision.is_urgent and decision.reasons[0].rule == "second_reader"
    assert decision.reasons[0].engine == "tesseract"
    noisy = decide(page, RULES, second=_rows("特忽"), second_engine="tesseract")
    assert not noisy.should_page


def _rows(text: str) -> tuple[Row, ...]:
    page = text_page(f"{TTI}\n{text}")
    return tuple(Row(tuple(cells), i) for i, cells in enumerate(group_rows(page.lines[1:])))


def test_cover_and_carried_document_combine() -> None:
    cover = decide(layout(text_page(COVER.format(tti=TTI, remark="备注：请转有关领导阅。"),
                                    centered=(1, 2))), RULES)
    carried = decide(layout(gongwen("秘密★1年\n加急")), RULES, page_no=2)
    both = combine(cover, carried, RULES)
    assert both.is_urgent and (both.level, both.classification) == ("加急", "秘密")
    assert any(r.where.startswith("第2页") for r in both.reasons)


def test_a_covers_formal_mark_is_not_hidden_by_a_carried_flag() -> None:
    """Issue 10: the cover/carried rule stood twice, and disagreed. The decision took the
    carried page's level whatever it was (紧急, a flag); the fields took the carried page's
    formal mark, else the cover's (加急). One rule now, the fields' (what the register
    showed): the formal mark first, the carried document's before the cover's."""
    cover = decide(layout(text_page(COVER.format(tti=TTI, remark="备注：急件，请即呈送带班领导。"),
                                    centered=(1, 2))), RULES)
    flagged = decide(layout(gongwen("紧急")), RULES, page_no=2)
    assert (cover.level, flagged.level) == ("急件", "紧急")
    assert combine(cover, flagged, RULES).level == "急件"
    graded = decide(layout(gongwen("特急")), RULES, page_no=2)
    assert combine(cover, graded, RULES).level == "特急"
    plain = decide(layout(gongwen("")), RULES, page_no=2)
    assert combine(decide(layout(gongwen("紧急")), RULES), plain, RULES).level == "紧急"


def test_keyword_lists_come_from_the_configuration() -> None:
    rules = UrgencyConfig(urgent_marks=["火急"], urgent_flags=[])
    assert decide(layout(gongwen("火急")), rules).is_urgent
    assert not decide(layout(gongwen("特急")), rules).is_urgent


def test_every_reason_has_a_meaning_in_chinese() -> None:
    pages = [gongwen("机密★1年\n特急"), gongwen("特忽"), gongwen("平急"),
             text_page(COVER.format(tti=TTI, remark="备注：非紧急件，请于工作日转办。"),
                       centered=(1, 2)),
             text_page(REPORT.format(tti=TTI, marks="", title="关于青石镇群众遇险情况的紧急报告",
                                     body="遇有紧急情况立即报告。").replace("\n\n", "\n"),
                       centered=(1,)),
             PageText(1, (), "rapidocr", 100, 100, "timeout")]
    reasons = [r for page in pages for r in decide(layout(page), RULES).reasons]
    assert {"header_mark", "classification", "near_miss", "negated", "not_urgent_mark",
            "title_flag", "ignored_body", "unreadable_header"} <= {r.rule for r in reasons}
    for reason in reasons:
        assert reason.rule in RULE_BOOK
        assert reason.where.startswith("第") and explain(reason).startswith(RULE_BOOK[reason.rule])
