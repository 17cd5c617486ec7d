"""Written Chinese to what is said aloud: numbers, dates, times, 文号 and phone numbers.

espeak-ng reads a digit string as one big number (``2026`` → 二千零二十六, a phone number
as 亿 and 万), a hyphen as nothing, a colon as a pause. A duty-room page is full of digit
strings that are not quantities: years are said digit by digit (二〇二六年), a 文号
``鄂政发〔2026〕12号`` is 鄂政发二〇二六年十二号, a time ``23:05`` is 二十三时零五分, a phone
number is said digit by digit in groups with 1 as 幺 (so it is not misheard as 七), an
incident named ``“6·26”`` is 六二六. Only what is left after those rules is a quantity.

The rules are ours because they depend on context (``cn2an.transform`` reads a phone
number as 一百三十八亿… and a hyphen as 负); the number words themselves (零 and the 万/亿
units, decimals) come from cn2an, a maintained library that handles them exhaustively.
Everything here is pure, and ``speakable`` is idempotent: spoken text passes unchanged.

``as_pinyin`` is the last step before the synthesiser. espeak-ng 1.51 gives every character
one reading (its phrase list ``cmn_listx`` is not used, espeak-ng issue #1370): 重复 and 重听
come out zhòng (重听 is "hard of hearing"), 处理 chù, 局长 cháng. pypinyin, a maintained
library with a phrase dictionary, picks the reading in context, and the Mandarin voice reads
pinyin with tone numbers as Mandarin syllables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from cn2an import an2cn

SAY_AGAIN = "重复一遍。"
"""Between the two tellings of a page: the first often meets a listener still waking."""
DIGITS = "〇一二三四五六七八九"
PHONE_DIGITS = "〇幺二三四五六七八九"
"""On the phone 1 is said 幺, as operators do, so it is not misheard as 7."""
MEASURE_WORDS = "份个人名天次辆条件处家所起座位只架艘户间栋层批项种"
"""Before these 2 is said 两 (两份, 两人), as a count is."""
UNITS = "余多万亿元人名户吨亩米里克升度倍秒分时级个份次辆条件处家所起座位只架艘间栋层批项种"
"""A long digit run followed by one of these is a quantity, not a code to spell out."""
SYMBOLS = {"℃": "摄氏度", "㎜": "毫米", "＃": "号", "#": "号"}
BRACKETS = "〔［\\[【（(﹝"
CLOSERS = "〕］\\]】）)﹞"

_DOC_NUMBER = re.compile(rf"[{BRACKETS}]\s*(\d{{4}})\s*[{CLOSERS}]\s*(第?)\s*0*(\d+)\s*号")
_BRACKET_YEAR = re.compile(rf"[{BRACKETS}]\s*(\d{{4}})\s*[{CLOSERS}]")
_DATE_TIME = re.compile(
    r"(?<!\d)((?:19|20)\d\d)[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2})[:：](\d\d))?(?![\d.])")
_TIME = re.compile(r"(?<![\d.])([01]?\d|2[0-3])[:：]([0-5]\d)(?:[:：][0-5]\d)?(?![\d.])")
_INCIDENT = re.compile(r"(?<!\d)(1[0-2]|0?[1-9])\s*[·・•]\s*(3[01]|[12]\d|0?[1-9])(?!\d)")
_PHONE = re.compile(r"""
    (?:\+|(?<!\d)00)86[-\s]*\d[\d\s-]{6,}\d              # +86 27 8765 4321, 0086-27-…
  | [（(]0\d{2,3}[)）]\s*\d{7,8}(?![\d.])                # (027)87654321
  | (?<![\d.])(?:0\d{2,3}[-－—\s]?)?\d{7,8}(?![\d.])     # 027-87654321, 87654321
  | (?<![\d.])1[3-9]\d{9}(?![\d.])                      # a mobile
""", re.VERBOSE)
_DIALLED = re.compile(r"(拨打|电话|热线|手机|号码|传真号|分机)([:：]?\s*)(\d{3,6})(?![\d.])")
_CODE = re.compile(rf"(?<![\d.])\d{{5,}}(?![\d.])(?![{UNITS}年])")
_YEAR = re.compile(r"(?<![\d.])((?:19|20)\d\d)\s*(?=年)")
_RANGE = re.compile(r"(\d)\s*[-~－—～]+\s*(?=\d)")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
_TWO = re.compile(rf"(?<![\d.第])2(?![\d.])(?=[{MEASURE_WORDS}])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_FULLWIDTH = str.maketrans("０１２３４５６７８９．－％", "0123456789.-%")
_BELOW_ZERO = re.compile(r"[-－—](?=\d+(?:\.\d+)?\s*(?:℃|摄氏度))")


def number(n: int | str) -> str:
    """A quantity or ordinal as words: 12 → 十二, 1005 → 一千零五, 3.5 → 三点五."""
    text = str(n)
    try:
        said = str(an2cn(text, "low"))
    except (ValueError, TypeError, KeyError, IndexError):  # cn2an's limits (e.g. > 16 digits)
        return digits(text.replace(".", "点"))
    return re.sub(r"^二(?=[千万亿])", "两", said)  # 两千, 两万, as said; 二百 stays


def count(n: int) -> str:
    """A count before a measure word: 两份, 十二份."""
    return "两" if n == 2 else number(n)


def digits(text: str, phone: bool = False) -> str:
    """Every digit said on its own (二〇二六); with ``phone``, 1 is 幺."""
    names = PHONE_DIGITS if phone else DIGITS
    return "".join(names[int(c)] if c.isascii() and c.isdigit() else c for c in text)


def year(value: int | str) -> str:
    return digits(str(value))


def receipt_no(year_value: int, seq: int) -> str:
    """传真〔2026〕0012号 as said: 传真二〇二六年第十二号."""
    return f"传真{year(year_value)}年第{number(seq)}号"


def phone(number_text: str) -> str:
    """027-87654321 → 〇二七，八七六五，四三二幺: digit by digit, in groups with pauses."""
    plain = number_text.strip()
    international = re.match(r"^(?:\+|00)86[-\s]*", plain)
    if international:  # dialled inside China: a landline's area code takes its 0 back
        plain = plain[international.end():]
        plain = plain if plain.startswith(("0", "1")) else "0" + plain
    groups = [g for g in re.split(r"[-－—\s()（）]+", plain) if g]
    if len(groups) == 1 and groups[0].isdigit():
        groups = _group(groups[0])
    return "，".join(digits(part, phone=True) for g in groups for part in _split_long(g))


def _group(run: str) -> list[str]:
    """Groups a listener can hold: a mobile 3-4-4, an area code off a long landline."""
    if len(run) == 11 and run.startswith("1"):
        return [run[:3], run[3:7], run[7:]]
    if run.startswith("0") and len(run) >= 10:
        cut = 3 if run[1] in "12" else 4
        return [run[:cut], run[cut:]]
    return [run]


def _split_long(group: str) -> list[str]:
    """An 8-digit local number is said as two fours."""
    return [group[:4], group[4:]] if len(group) == 8 and group.isdigit() else [group]


def time_of_day(hours: int, minutes: int) -> str:
    """23:05 → 二十三时零五分; 20:00 → 二十时整."""
    if minutes == 0:
        return f"{number(hours)}时整"
    return f"{number(hours)}时{'零' if minutes < 10 else ''}{number(minutes)}分"


def twice(message: str) -> str:
    """A page's message as the phone says it: twice, before the keys are asked for."""
    return f"{message}{SAY_AGAIN}{message}"


SINGLE_READINGS = {"长": "cháng"}
"""Readings for a character pypinyin finds in no phrase. Its default for 长 is zhǎng (as in
局长, which it knows as a phrase); alone, 长 is far more often cháng, as in the place names
of issuers and 文号 (长溪县, 长政办)."""


def as_pinyin(text: str) -> str:
    """Han characters as tone-numbered pinyin syllables (重听 → chong2 ting1); the rest kept."""
    syllables = _pinyin_reader().lazy_pinyin(text, style=_tone3())
    return re.sub(r"\s*([，。、；：！？,.;:!?“”《》（）\s])\s*", r"\1", " ".join(syllables)).strip()


@cache
def _pinyin_reader() -> Any:
    """pypinyin with our single readings; loaded on first use (its dictionaries take 0.7 s)."""
    from pypinyin.converter import UltimateConverter
    from pypinyin.core import Pinyin

    class Reader(UltimateConverter):  # type: ignore[misc]
        def _single_pinyin(self, han: str, style: Any, heteronym: bool, errors: Any, strict: bool) -> Any:
            if han in SINGLE_READINGS:  # called only for a character outside any known phrase
                return [[SINGLE_READINGS[han]]]
            return super()._single_pinyin(han, style, heteronym, errors, strict)

    return Pinyin(Reader(neutral_tone_with_five=True, tone_sandhi=True))


def _tone3() -> Any:
    from pypinyin import Style

    return Style.TONE3


def speakable(text: str) -> str:
    """``text`` with every written number replaced by what is said; other text unchanged."""
    for rule in _RULES:
        text = rule(text)
    return text


def _fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


def _doc_numbers(text: str) -> str:
    text = _DOC_NUMBER.sub(lambda m: f"{year(m[1])}年{m[2]}{number(int(m[3]))}号", text)
    return _BRACKET_YEAR.sub(lambda m: f"{year(m[1])}年", text)  # a 文号 whose 号 OCR lost


def _dates(text: str) -> str:
    def said(m: re.Match[str]) -> str:
        day = f"{year(m[1])}年{number(int(m[2]))}月{number(int(m[3]))}日"
        return day + (time_of_day(int(m[4]), int(m[5])) if m[4] else "")
    return _DATE_TIME.sub(said, text)


def _times(text: str) -> str:
    return _TIME.sub(lambda m: time_of_day(int(m[1]), int(m[2])), text)


def _incidents(text: str) -> str:
    return _INCIDENT.sub(lambda m: number(int(m[1])) + digits(m[2].lstrip("0")), text)


def _phones(text: str) -> str:
    text = _PHONE.sub(lambda m: phone(m[0]), text)
    text = _DIALLED.sub(lambda m: m[1] + m[2] + digits(m[3], phone=True), text)
    return _CODE.sub(lambda m: digits(m[0], phone=True), text)


def _years(text: str) -> str:
    return _YEAR.sub(lambda m: year(m[1]), text)


def _ranges(text: str) -> str:
    return _RANGE.sub(lambda m: m[1] + "至", text)


def _percents(text: str) -> str:
    return _PERCENT.sub(lambda m: "百分之" + number(m[1]), text)


def _quantities(text: str) -> str:
    text = _TWO.sub("两", text)
    return _NUMBER.sub(lambda m: number(m[0]), text)


def _symbols(text: str) -> str:
    text = _BELOW_ZERO.sub("零下", text)
    for sign, said in SYMBOLS.items():
        text = text.replace(sign, said)
    return text


_RULES: tuple[Callable[[str], str], ...] = (
    _fullwidth, _symbols, _doc_numbers, _dates, _times, _incidents, _phones, _years, _ranges, _percents,
    _quantities,
)
"""In this order: the most specific shapes first, plain quantities last."""
