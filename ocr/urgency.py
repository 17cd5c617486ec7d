"""Is this fax urgent? A decision with reasons, made from page 1 as read (pure).

Where a word stands decides what it means:

* the **header zone** (the short rows above the red header / masthead / title, top left per
  GB/T 9704, top right on older faxes): 特提/特急/加急/急件 and 紧急/紧急信息 make the fax
  urgent, 平急 does not; 绝密/机密/秘密★期限 is the classification;
* **form fields**: 等级 (telegram), 密级, 紧急程度 with one value, a cover sheet's 备注
  remark ("紧急！…");
* **option boxes** (□一般 □较急 □紧急, □紧急 □请审阅 …): only the ticked one counts, read from
  the image (``ocr.ticks``) or, without an image, from the box glyph OCR gave (■/□);
* the **title** (the centred rows under the header): 紧急 qualifying the document itself
  (关于…遇险情况的紧急报告, …的紧急通知, 紧急信息) makes the fax urgent, unless a formal 平急
  grade says otherwise; 紧急 as part of a term (紧急避险转移演练) does not;
* a negated word (非紧急件, 不紧急, 无需加急) is noted and ignored wherever it stands;
* anywhere else (running text: "重要紧急情况", "紧急通知如下") a word is noted and ignored.

The rules are data (``RULE_BOOK``: what each rule means, in Chinese, as duty staff read it;
the word lists in ``UrgencyConfig`` and below) and the functions here are the small engine
that applies them zone by zone; every finding becomes a ``Reason`` (rule, word, where — in
Chinese), and ``explain`` turns one into a sentence for a receipt.

Recall first: a near-miss of a mark in the header zone (特忽, 加怠, a lone 急), a badly
read header row, an unreadable page, or an urgent option whose box could not be read makes
the fax *possibly urgent*, which pages like urgent. A second reader's header zone (Tesseract)
adds evidence: an exact mark it reads counts even if RapidOCR missed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from rapidfuzz.distance import Levenshtein

from ocr.config import UrgencyConfig
from ocr.model import Box, Reason, Rule, UrgencyDecision
from ocr.ticks import Tick, option_words
from ocr.zones import Layout, Row, flatten, has_cjk, label_values

_EDGE_PUNCT = "!！。.，,、:：;；·•-—_~'\"“”‘’()（）[]【】「」 "
_STAR = "★☆*＊✱✩"
_PERIOD = re.compile(r"(\d+年|\d+个月|长期)")
_TICKED_GLYPHS = "■☑√✓✔☒▇█●"
_EMPTY_GLYPHS = "□口☐"
_HAND_TICKS = "VvWwYyJLl/"
"""What OCR reads a hand-drawn √ over a box as."""
HEADER_MAX_CHARS = 8
"""Rows of the header zone are short: 份号, 密级★期限, 紧急程度, 紧急信息."""
MAX_IGNORED_REASONS = 5
OPTION_LABELS = ("紧急程度", "备注", "缓急程度", "缓急", "急缓")
"""Labels of rows of printed option boxes."""
LEVEL_LABELS = ("等级", "紧急程度", "缓急程度", "缓急", "急缓", "密级")
"""Labels of form fields holding one urgency or classification word."""
NEGATIONS = ("非", "不", "无需", "无须", "不必", "勿")
"""A word right after one of these is negated ("非紧急件", "此件不紧急")."""
TITLE_DOC_TYPES = ("报告", "通知", "通报", "请示", "快报", "信息", "简报", "情况", "电报", "函")
"""Document types 紧急 can qualify in a title (…的紧急报告, 紧急通知, 紧急信息)."""
TITLE_SCAN_ROWS = 12
"""The title stands within this many rows of the top."""

RULE_BOOK: Mapping[Rule, str] = {
    Rule.HEADER_MARK: "版头区标有紧急程度（特提、特急、加急、急件），按紧急处理",
    Rule.NOT_URGENT_MARK: "正式标明平急，不按紧急处理",
    Rule.HEADER_FLAG: "版头区标有“紧急”或“紧急信息”，按紧急处理",
    Rule.TITLE_FLAG: "标题写明为紧急文件（如“紧急报告”“紧急通知”），按紧急处理",
    Rule.TITLE_OVERRULED: "标题虽有“紧急”，但正式等级为平急，按平急处理",
    Rule.REMARK_FLAG: "封面备注写明紧急或急件，按紧急处理",
    Rule.TICKED_BOX: "勾选了紧急选项，按紧急处理",
    Rule.UNTICKED_BOX: "紧急选项未勾选，不作为紧急依据",
    Rule.UNREADABLE_TICK: "紧急选项是否勾选无法判读，按可能紧急处理",
    Rule.NEAR_MISS: "版头区疑似紧急或密级标识但识别不清，按可能紧急处理",
    Rule.UNREADABLE_HEADER: "版头区无法识别，按可能紧急处理",
    Rule.SECOND_READER: "第二识别引擎在版头区读到紧急程度或密级标识",
    Rule.CLASSIFICATION: "版头区或表格标有密级",
    Rule.NEGATED: "“非紧急”“不紧急”等否定说法，不作为紧急依据",
    Rule.IGNORED_BODY: "正文中出现的“紧急”等字样，不作为紧急依据",
}
"""What each rule means, for the people who read a receipt."""


def explain(reason: Reason) -> str:
    """One reason as a sentence in Chinese: the rule's meaning, the word and where it stood."""
    meaning = RULE_BOOK.get(reason.rule, reason.rule)
    return f"{meaning}：「{reason.word}」，{reason.where}" if reason.word else \
        f"{meaning}：{reason.where}"


@dataclass(frozen=True)
class _Finding:
    """What one rule concluded about one word."""

    effect: str
    """``urgent``, ``not_urgent``, ``possible``, ``classification`` or ``ignored``."""
    reason: Reason
    level: str | None = None
    classification: str | None = None
    period: str | None = None


# --- zones --------------------------------------------------------------------------------

def header_rows(page: Layout) -> tuple[Row, ...]:
    """The leading short rows above the first header, title or form row."""
    zone = []
    for row in page.rows:
        if _is_anchor(page, row):
            break
        zone.append(row)
    return tuple(zone)


def _is_anchor(page: Layout, row: Row) -> bool:
    flat = row.flat
    if len(flat) > HEADER_MAX_CHARS + 4 * (len(row.cells) - 1) or label_values(row):
        return True
    return len(flat) >= 2 and page.is_centered(row) and not _is_mark_like(flat)


def _is_mark_like(flat: str) -> bool:
    return len(flat) <= 3 and has_cjk(flat)


def header_zone_box(page: Layout) -> Box | None:
    """The image area of the header zone, for a second reader; None when there is none."""
    rows = page.rows
    if not rows:
        return None
    anchor = next((r for r in rows if _is_anchor(page, r)), None)
    top = int(0.035 * page.height) if page.tti else 0
    bottom = anchor.box[1] if anchor else int(0.35 * page.height)
    if bottom - top < 0.012 * page.height:  # less than a line of text
        return None
    return (0, top, page.width, bottom)


def option_rows(page: Layout) -> tuple[Row, ...]:
    """Rows of printed option boxes (紧急程度 □一般 □较急 □紧急, 备注 □紧急 □请审阅 …)."""
    return tuple(row for row in page.rows if _is_option_row(row))


def _is_option_row(row: Row) -> bool:
    """A labelled row of two or more short option words (a remark sentence is not one)."""
    words = option_words(row)
    return (bool(set(OPTION_LABELS) & set(label_values(row)))
            and len(words) >= 2 and all(len(w) <= 4 for w in words))


# --- the decision ---------------------------------------------------------------------------

def decide(page: Layout, rules: UrgencyConfig, *, page_no: int = 1,
           ticks: Mapping[int, Sequence[Tick]] | None = None,
           second: Sequence[Row] = (), second_engine: str | None = None) -> UrgencyDecision:
    """The urgency and classification of one page (page 1, or a cover's carried page).

    ``ticks`` maps an option row's index to what ``ocr.ticks`` read in the image;
    ``second`` are the header zone rows read by a second engine.
    """
    if page.page.error or not page.rows:
        why = page.page.error or "no text was read"
        reason = Reason(Rule.UNREADABLE_HEADER, "", f"第{page_no}页：{why}", None, page.page.engine)
        return UrgencyDecision(False, True, None, None, None, (reason,))
    findings = [*_header_findings(page, rules, page_no),
                *_field_findings(page, rules, page_no, ticks or {}),
                *_title_findings(page, rules, page_no),
                *_second_findings(second, rules, page_no, second_engine),
                *_ignored_findings(page, rules, page_no)]
    return _conclude(findings, rules)


def fax_decision(pages: Sequence[UrgencyDecision], rules: UrgencyConfig) -> UrgencyDecision:
    """The one decision of a fax: page 1's, or a cover sheet's combined with its carried
    page's (``pages`` as the header pass decided them, in order)."""
    return pages[0] if len(pages) == 1 else combine(pages[0], pages[1], rules)


def combine(first: UrgencyDecision, carried: UrgencyDecision,
            rules: UrgencyConfig) -> UrgencyDecision:
    """A cover sheet and the document it carries: urgent if either is; the formal marks
    (level, classification) are the carried document's when it has them, else the cover's
    (a carried 紧急 flag does not hide the cover's 加急)."""
    urgent = first.is_urgent or carried.is_urgent
    level = (formal_level(carried.level, rules) or formal_level(first.level, rules)
             or carried.level or first.level)
    return UrgencyDecision(
        urgent, not urgent and (first.possibly_urgent or carried.possibly_urgent), level,
        higher_classification(carried.classification, first.classification),
        carried.secrecy_period or first.secrecy_period,
        first.reasons + carried.reasons)


def _conclude(findings: Iterable[_Finding], rules: UrgencyConfig) -> UrgencyDecision:
    findings = _overrule_title(list(findings))
    effects = {f.effect for f in findings}
    urgent = "urgent" in effects
    levels = [f.level for f in findings if f.level and f.effect in ("urgent", "not_urgent")]
    formal = [lv for lv in levels if formal_level(lv, rules)]
    classification, period = None, None
    for f in findings:
        stricter = higher_classification(f.classification, classification)
        if f.classification and stricter != classification:
            classification, period = f.classification, f.period or period
        elif f.classification == classification and f.period and not period:
            period = f.period
    return UrgencyDecision(
        is_urgent=urgent,
        possibly_urgent=not urgent and "possible" in effects,
        level=next(iter(formal or levels), None),
        classification=classification,
        secrecy_period=period,
        reasons=tuple(f.reason for f in findings))


def _overrule_title(findings: list[_Finding]) -> list[_Finding]:
    """A formal 平急 grade is the sender's decision: a title's 紧急 alone does not beat it."""
    urgent = [f for f in findings if f.effect == "urgent"]
    calm = any(f.effect == "not_urgent" for f in findings)
    if not calm or not urgent or any(f.reason.rule != Rule.TITLE_FLAG for f in urgent):
        return findings
    return [replace(f, effect="ignored", level=None,
                    reason=replace(f.reason, rule=Rule.TITLE_OVERRULED))
            if f.reason.rule == Rule.TITLE_FLAG else f for f in findings]


def formal_level(level: str | None, rules: UrgencyConfig) -> str | None:
    """Only the formal 紧急程度 marks are a register's 'urgency'; 紧急/紧急信息 are flags."""
    return level if level in (*rules.urgent_marks, *rules.not_urgent_marks) else None


_RANK = {"绝密": 3, "机密": 2, "秘密": 1}


def higher_classification(a: str | None, b: str | None) -> str | None:
    """The stricter of two classifications (recall first)."""
    return a if _RANK.get(a or "", 0) >= _RANK.get(b or "", 0) and a else b


# --- rules ----------------------------------------------------------------------------------

def _header_findings(page: Layout, rules: UrgencyConfig, page_no: int) -> Iterable[_Finding]:
    for row in header_rows(page):
        for cell_no, cell in enumerate(row.cells):
            where = f"第{page_no}页版头区第{row.index + 1}行第{cell_no + 1}框"
            token = _token(cell.text)
            found = list(_word_findings(token, rules, where, cell.confidence, page.page.engine))
            if found:
                yield from found
            elif _is_garbled_mark(token, cell.confidence, rules):
                yield _Finding("possible", Reason(Rule.UNREADABLE_HEADER, token, where,
                                                  cell.confidence, page.page.engine))


def _is_garbled_mark(token: str, confidence: float, rules: UrgencyConfig) -> bool:
    """Two or three characters the engine could not read well, where marks stand (a lone
    low-confidence character is more often a speck read as 一 or 丶)."""
    return _is_mark_like(token) and len(token) >= 2 and confidence < rules.low_confidence


def _word_findings(token: str, rules: UrgencyConfig, where: str, confidence: float | None,
                   engine: str | None, *, near_misses: bool = True) -> Iterable[_Finding]:
    """What a standalone word in a marking position means."""
    if not token:
        return

    def reason(rule: Rule, word: str) -> Reason:
        return Reason(rule, word, where, confidence, engine)

    negation = _negation(token, rules)
    if negation:
        yield _Finding("ignored", reason(Rule.NEGATED, negation))
        return
    cls = _classification(token, rules, near_misses)
    if cls:
        name, period, exact = cls
        rule = Rule.CLASSIFICATION if exact else Rule.NEAR_MISS
        yield _Finding("classification", reason(rule, token), classification=name, period=period)
        return
    for mark in rules.urgent_marks:
        if _is_word(token, mark):
            yield _Finding("urgent", reason(Rule.HEADER_MARK, mark), level=mark)
            return
    for mark in rules.not_urgent_marks:
        if _is_word(token, mark):
            yield _Finding("not_urgent", reason(Rule.NOT_URGENT_MARK, mark), level=mark)
            return
    for flag in sorted(rules.urgent_flags, key=len, reverse=True):
        if _is_word(token, flag):
            yield _Finding("urgent", reason(Rule.HEADER_FLAG, flag), level=flag)
            return
    if near_misses and _near_urgent(token, rules, confidence):
        yield _Finding("possible", reason(Rule.NEAR_MISS, token))


def _filled_near_miss(text: str, rules: UrgencyConfig) -> str | None:
    """The urgent word a filled box (■ ☑) stands before, read one character off (■急仆)."""
    for at, glyph in enumerate(text):
        if glyph in _TICKED_GLYPHS:
            after = text[at + 1:at + 3]
            near = [w for w in (*rules.urgent_marks, *rules.urgent_flags)
                    if len(w) == 2 and Levenshtein.distance(after, w) == 1 and after[0] == w[0]]
            if near:
                return near[0]
    return None


def _negation(text: str, rules: UrgencyConfig) -> str | None:
    """The negated urgent word in ``text`` ("非紧急件" → "非紧急"), if every urgent word in it
    is negated; None otherwise."""
    words = sorted({*rules.urgent_marks, *rules.urgent_flags}, key=len, reverse=True)
    spans = [(m.start(), m.end()) for w in words for m in re.finditer(re.escape(w), text)]
    negated = [(at, end) for at, end in spans if text[:at].endswith(NEGATIONS)]
    if not spans or not negated:
        return None
    covered = all(any(a < e and s < b for a, b in negated) for s, e in spans)
    at, end = min(negated)
    start = max(at - len(n) for n in NEGATIONS if text[:at].endswith(n))
    return text[start:end] if covered else None


def _is_word(token: str, word: str) -> bool:
    """``token`` is ``word``, perhaps with a little non-CJK noise after it ("特急 ." "紧急！")."""
    return token == word or (token.startswith(word) and not has_cjk(token[len(word):]))


def _near_urgent(token: str, rules: UrgencyConfig, confidence: float | None) -> bool:
    """One character off an urgent word (特忽, 加怠, 持急, a lone 急). A word as near to a
    calm mark (乎急 ~ 平急) counts only when the engine was unsure of it."""
    if not has_cjk(token) or len(token) > 3:
        return False
    urgent_words = [*rules.urgent_marks, *rules.urgent_flags]
    near = [w for w in urgent_words if Levenshtein.distance(token, w) <= max(1, len(w) // 3)
            and set(token) & set(w)]
    if not near:
        return False
    if len(token) == 1:
        return True  # one character of a mark: which mark cannot be told
    calm = any(Levenshtein.distance(token, w) <= 1 for w in rules.not_urgent_marks)
    return not calm or (confidence is not None and confidence < rules.low_confidence)


def _classification(token: str, rules: UrgencyConfig,
                    near_misses: bool) -> tuple[str, str | None, bool] | None:
    """``(绝密|机密|秘密, 期限, exact)`` when the token is a classification mark."""
    head = re.split(f"[{re.escape(_STAR)}]", token, maxsplit=1)
    word, rest = head[0], head[1] if len(head) > 1 else ""
    period = _PERIOD.search(rest) or (None if len(head) > 1 else _PERIOD.search(word[2:]))
    if len(head) == 1 and len(word) > 2 and not period:
        return None
    stem = word[:2]
    if stem in rules.classifications:
        return stem, period.group() if period else None, True
    if near_misses and (len(head) > 1 or period):
        near = [c for c in rules.classifications if Levenshtein.distance(stem, c) <= 1]
        best = max(near, key=lambda c: _RANK.get(c, 0), default=None)
        return (best, period.group() if period else None, False) if best else None
    return None


def _token(text: str) -> str:
    return flatten(text).strip(_EDGE_PUNCT)


def _field_findings(page: Layout, rules: UrgencyConfig, page_no: int,
                    ticks: Mapping[int, Sequence[Tick]]) -> Iterable[_Finding]:
    engine = page.page.engine
    options = {row.index for row in option_rows(page)}
    for row in page.rows:
        values = label_values(row)
        where = f"第{page_no}页表格第{row.index + 1}行"
        if row.index in options:
            yield from _option_findings(row, rules, where, ticks.get(row.index), engine)
            continue
        for label in LEVEL_LABELS:
            if label in values:
                yield from _word_findings(_token(values[label]), rules, f"{where}（{label}）",
                                          row.confidence, engine)
        if "备注" in values:
            yield from _remark_findings(values["备注"], rules, f"{where}（备注）",
                                        row.confidence, engine)


def _remark_findings(remark: str, rules: UrgencyConfig, where: str, confidence: float,
                     engine: str | None) -> Iterable[_Finding]:
    """A cover sheet's remark that says 紧急 or carries a mark (急件, 加急); not when negated."""
    words = sorted({*rules.urgent_flags, *rules.urgent_marks}, key=len, reverse=True)
    flag = next((w for w in words if w in remark), None)
    if flag is None:
        filled = _filled_near_miss(remark, rules)
        if filled:  # ■急仆: a filled box before a misread 急件
            yield _Finding("urgent", Reason(Rule.TICKED_BOX, filled, where, confidence, engine),
                           level=filled)
        return
    negation = _negation(remark, rules)
    if negation:
        yield _Finding("ignored", Reason(Rule.NEGATED, negation, where, confidence, engine))
    else:
        yield _Finding("urgent", Reason(Rule.REMARK_FLAG, flag, where, confidence, engine),
                       level=flag)


def _option_findings(row: Row, rules: UrgencyConfig, where: str, ticks: Sequence[Tick] | None,
                     engine: str | None) -> Iterable[_Finding]:
    states = {t.word: t for t in ticks} if ticks else {}
    # one of the options of a 紧急程度 row is chosen: if the image shows none ticked, it was
    # misread; the glyph OCR made of a hand-drawn tick (√, V, W, L …) decides, or nothing does
    blind = bool(ticks) and not any(t.ticked for t in ticks or ()) and bool(
        {"紧急程度", "缓急程度"} & set(label_values(row)))
    for read in option_words(row):
        word = _urgent_option(read, rules)
        if word is None:
            continue
        tick = None if blind else states.get(read)
        state = tick.ticked if tick else _glyph_state(row.text, read, hand=blind)
        if blind and not state:  # unticked only if OCR saw the tick on another option
            others = [w for w in option_words(row) if w != read]
            state = False if any(_glyph_state(row.text, w, hand=True) for w in others) else None
        ink = f"，框内墨迹{tick.ink:.2f}" if tick else ""
        if state is True:
            yield _Finding("urgent", Reason(Rule.TICKED_BOX, word, where + ink, row.confidence,
                                            engine), level=word)
        elif state is False:
            yield _Finding("ignored", Reason(Rule.UNTICKED_BOX, word, where + ink, row.confidence,
                                             engine))
        else:
            yield _Finding("possible", Reason(Rule.UNREADABLE_TICK, word, where, row.confidence,
                                              engine))


def _urgent_option(read: str, rules: UrgencyConfig) -> str | None:
    """The urgent option word this printed option is, allowing for OCR: its box read as one
    more character (亡紧急), a tick over it garbling a character (的紧态). A word nearer to a
    calm option (较急, 一般) is that option; a tie counts as urgent (recall first)."""
    urgent = [*rules.urgent_marks, *rules.urgent_flags]
    calm = rules.not_urgent_options
    forms = {read, read[1:]} if len(read) >= 3 else {read}
    if forms & set(calm):
        return None
    for word in urgent:
        if word in forms:
            return word

    def nearest(words: Sequence[str]) -> tuple[int, str]:
        return min((Levenshtein.distance(f, w), w) for f in forms for w in words)

    near, word = nearest(urgent)
    return word if near <= 1 and near <= nearest(calm)[0] else None


def _glyph_state(text: str, word: str, *, hand: bool = False) -> bool | None:
    """Ticked/empty from the glyph OCR put before the word; None when there is none. With
    ``hand``, the letters OCR reads a hand-drawn tick as count as ticks too."""
    flat = text.replace(" ", "")
    label = next((lb for lb in OPTION_LABELS if flat.startswith(lb)), "")
    at = flat.find(word, len(label))
    before = flat[at - 1] if at > len(label) else ""
    if before and (before in _TICKED_GLYPHS or hand and before in _HAND_TICKS):
        return True
    if before and before in _EMPTY_GLYPHS:
        return False
    return None


def _second_findings(rows: Sequence[Row], rules: UrgencyConfig, page_no: int,
                     engine: str | None) -> Iterable[_Finding]:
    """Exact marks a second reader found in the header zone (its near-misses are noise)."""
    for row in rows:
        for cell in row.cells:
            where = f"第{page_no}页版头区（第二识别引擎）第{row.index + 1}行"
            for finding in _word_findings(_token(cell.text), rules, where, cell.confidence,
                                          engine, near_misses=False):
                if finding.effect in ("urgent", "classification"):
                    yield replace(finding, reason=replace(finding.reason, rule=Rule.SECOND_READER))


def _ignored_findings(page: Layout, rules: UrgencyConfig, page_no: int) -> Iterable[_Finding]:
    """Urgent words in running text: recorded, so a reviewer sees they were seen and ignored."""
    words = [*rules.urgent_marks, *rules.urgent_flags]
    zone = {row.index for row in (*header_rows(page), *_title_flag_rows(page, rules))}
    count = 0
    for row in page.rows:
        if row.index in zone or label_values(row):
            continue
        word = next((w for w in words if w in row.flat), None)
        if word and count < MAX_IGNORED_REASONS:
            count += 1
            yield _Finding("ignored", Reason(Rule.IGNORED_BODY, word,
                                             f"第{page_no}页正文第{row.index + 1}行",
                                             row.confidence, page.page.engine))


# --- the title ------------------------------------------------------------------------------

def _title_pattern(rules: UrgencyConfig) -> re.Pattern[str]:
    """紧急 qualifying the document: "…的紧急报告", "紧急通知", "紧急信息", a "（第2报）" after."""
    flags = "|".join(sorted(map(re.escape, rules.urgent_flags), key=len, reverse=True))
    types = "|".join(TITLE_DOC_TYPES)
    return re.compile(rf"(?:{flags})(?:情况)?(?:{types})?(?:[(（]第.{{1,3}}[报期][)）]?)?$")


def _title_flag_rows(page: Layout, rules: UrgencyConfig) -> list[Row]:
    """Title rows (centred, above the first row of text) whose end says the document is urgent."""
    if not rules.urgent_flags:
        return []
    pattern = _title_pattern(rules)
    found = []
    geometry = any(page.is_centered(r) for r in page.rows)
    for row in page.rows[:TITLE_SCAN_ROWS]:
        flat = row.flat.strip(_EDGE_PUNCT)
        if row.flat.endswith(":") and not label_values(row):
            break  # 主送机关: the text begins
        if label_values(row) or (geometry and not page.is_centered(row)):
            continue
        match = pattern.search(flat)
        if match and not _negation(flat[:match.end()], rules) and (
                match.start() == 0 or flat.startswith("关于") or geometry):
            found.append(row)
    return found


def _title_findings(page: Layout, rules: UrgencyConfig, page_no: int) -> Iterable[_Finding]:
    zone = {row.index for row in header_rows(page)}
    for row in _title_flag_rows(page, rules):
        if row.index in zone:
            continue  # a lone 紧急 in the header zone is the header's own finding
        word = _title_pattern(rules).search(row.flat.strip(_EDGE_PUNCT))
        yield _Finding("urgent", Reason(Rule.TITLE_FLAG, word.group() if word else row.flat,
                                        f"第{page_no}页标题第{row.index + 1}行",
                                        row.confidence, page.page.engine), level="紧急")
