"""The register fields (来文登记) of a fax, from what OCR read (pure).

A first page per GB/T 9704-2012 reads, top to bottom: 份号, 密级★期限, 紧急程度 (the header
zone, ``ocr.urgency``), the red 发文机关标志 ("…文件", "…明传电报", or a letterhead), the
发文字号, the title (centred, one to three rows), the 主送机关 (ending in "："), the text,
and 署名 + 成文日期 at the end. Ruled forms (telegram, cover sheet, report form) carry their
fields as "label  value" rows instead. A cover sheet carries a document on its later pages:
the document number is the carried document's. Urgency, classification and secrecy period
are not found here: they are the header pass's ``UrgencyDecision`` (``ocr.urgency``, made
once per fax, with the image's ticks and the second reader), which ``fields_of`` is given.

The rules are small functions over rows, tried in order; each field found says how
(a ``Reason``), and fields that disagree (two different document numbers) are listed in
``FaxFields.conflicts`` so the receipt is reviewed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from rapidfuzz.distance import Levenshtein

from ocr.config import UrgencyConfig
from ocr.model import Box, FaxFields, OcrLine, PageText, Reason, Rule, UrgencyDecision
from ocr.urgency import decide, fax_decision, formal_level, header_rows
from ocr.zones import Layout, Row, flatten, has_cjk, label_values, layout

_OPEN = "〔［\\[【「『（(〈<{｛ⅠI|!丨\\-—_.·"
_CLOSE = "〕］\\]】」』）)〉>}｝ⅠI|!丨\\-—_.·"
DOC_NUMBER = re.compile(
    r"((?:[\u4e00-\u9fff][\]\[|】【]?){1,14}?)"          # 机关代字 (stray bracket noise inside)
    rf"[:：\s{_OPEN}]{{0,3}}((?:19|20)\d{{2}})[\s{_CLOSE}]{{0,3}}"  # 〔年份〕, any brackets
    r"(\d{1,4})号")
"""发文字号: 机关代字〔年份〕序号号, tolerant of OCR reading 〔〕 as [] () 【】 「」 or nothing."""
DATE = re.compile(r"((?:19|20)\d{2})年(\d{1,2})月(\d{1,2})(?:[日曰口]|月$)")
_UNIT_SUFFIX = re.compile(
    r"(办公室|办事处|人民政府|政府|局|委员会|指挥部|中心|室|处|厅|委|院|所|队|站|部|会|公司|街道|镇|乡)$")
_TITLE_END = re.compile(r"(通知|通报|报告|续报|请示|批复|意见|决定|函|纪要|方案|办法|公告|通告|命令)"
                        r"(\(第.{1,3}[报期]\)?)?$")
"""The last row of a title ends in its document type (perhaps "（第2报）" after a 续报)."""
_ISSUE_NO = re.compile(r"^第.{1,5}期$")
_SECTION = re.compile(r"^[一二三四五六七八九十]+、")
_KINDS = (
    ("telegram", ("明传电报", "明电编号", "发电单位")),
    ("cover", ("传真封面", "发件单位", "收件单位", "传真件")),
    ("report_form", ("报告单", "记录单", "报告单位", "事件名称", "事发地点", "电话记录", "来电单位",
                     "来电内容", "来电记录")),
    ("report", ("情况报告", "值班信息", "快报", "报告人:")),
)
TITLE_MAX_ROWS = 3
SEAL_CONFIDENCE = 0.9
"""A 署名 read with less confidence than this is taken as smudged by the seal over it."""


@dataclass(frozen=True)
class _Found:
    value: str | None
    reason: Reason | None = None


def extract_fields(pages: Sequence[PageText], rules: UrgencyConfig) -> FaxFields:
    """Register fields of a fax from its text alone (pages in order): decided as the header
    pass would decide it without the image (no tick reading, no second reader)."""
    layouts = [layout(p) for p in pages]
    if not layouts:
        return FaxFields()
    header = layouts[:header_pages(layouts[0], len(layouts))]
    decisions = [decide(page, rules, page_no=n) for n, page in enumerate(header, 1)]
    return fields_of(layouts, fax_decision(decisions, rules), rules)


def fields_of(layouts: Sequence[Layout], decision: UrgencyDecision,
              rules: UrgencyConfig) -> FaxFields:
    """The register fields; urgency, classification and secrecy period are the header
    pass's ``decision`` (decided once, with the ticks and the second reader), not decided
    again here."""
    kind = guess_kind(layouts[0])
    if kind == "cover":
        found = _cover(layouts)
    elif kind == "report_form":
        found = _report_form(layouts[0])
    else:
        found = _document(layouts, kind)
    return replace(found, urgency=formal_level(decision.level, rules),
                   classification=decision.classification,
                   secrecy_period=decision.secrecy_period,
                   reasons=found.reasons + decision.reasons)


def header_pages(first: Layout, count: int) -> int:
    """How many of a fax's ``count`` pages its urgency is decided from: page 1, and the
    first page of the document a cover sheet carries."""
    return 2 if count > 1 and guess_kind(first) == "cover" else 1


def guess_kind(page: Layout) -> str:
    """gongwen, telegram, report, report_form, cover or letter, by the printed words."""
    text = "".join(row.flat for row in page.rows)
    scores = {kind: sum(word in text for word in words) for kind, words in _KINDS}
    best = max(scores, key=lambda k: scores[k])
    if scores[best]:
        return best
    return "gongwen" if any(r.flat.endswith("文件") for r in page.rows[:8]) else "letter"


# --- the kinds ---------------------------------------------------------------------------

def _document(layouts: Sequence[Layout], kind: str) -> FaxFields:
    first = layouts[0]
    start = _title_start(first)
    title_rows = _title_rows(first, start)
    after_title = title_rows[-1].index + 1 if title_rows else start
    issuer = _issuer(first, layouts, start)
    numbers = _doc_numbers(_number_rows(first))
    year = document_year(layouts)
    date = _doc_date(layouts, year)
    number = _year_checked(numbers[0], year) if numbers else _Found(None)
    reasons = [r for r in (issuer.reason, number.reason) if r]
    conflicts = ("doc_number",) if len({n.value for n in numbers}) > 1 else ()
    return FaxFields(
        copy_no=_copy_no(first), issuer=issuer.value, doc_number=number.value,
        title=cjk_punctuation("".join(r.plain for r in title_rows)) or None,
        recipients=_recipients(first, after_title), doc_date=date,
        sender=_sender(first), kind=kind, conflicts=conflicts, reasons=tuple(reasons))


def _cover(layouts: Sequence[Layout]) -> FaxFields:
    cover = layouts[0]
    carried = _document(layouts[1:], guess_kind(layouts[1])) if len(layouts) > 1 \
        else FaxFields()
    subject = _label(cover, "主题")
    text = "".join(row.flat for page in layouts for row in page.rows)
    carried_unit = [_Found(carried.issuer, Reason(Rule.ISSUER, carried.issuer, "所附文件的发文机关"))
                    ] if carried.issuer else []
    unit = _vote([*_sender_units(cover), *carried_unit], text).value
    pages = re.search(r"共(\d+)页", _label(cover, "页数") or "")
    return replace(
        carried, kind="cover", issuer=unit, title=carried.title or subject,
        sender=_label(cover, "发件人"), pages_declared=int(pages.group(1)) if pages else None)


def _sender_units(cover: Layout) -> Iterator[_Found]:
    """A cover's sending unit: the 发件单位 field, and the name printed above the title."""
    found = _label_row(cover, "发件单位")
    if found:
        yield _Found(found[0], _reason(Rule.ISSUER, found[0], found[1], "表格栏目发件单位"))
    zone = len(header_rows(cover))  # a stamp (急件) may stand above the name
    top = next((row for row in cover.rows[:zone + 2] if _unit_of(row)), None)
    if top:
        yield _Found(top.flat, _reason(Rule.ISSUER, top.flat, top, "封面标题上方的单位名"))


FORM_ISSUER_LABELS = ("报告单位", "来电单位")
"""Who a form comes from: the reporting unit, or on a phone record (电话记录) the calling unit
(not the duty room whose form it is, printed under the heading)."""
FORM_TITLE_LABELS = ("事件名称", "来电事由", "事由", "主要事项", "内容摘要")
"""What a form is about: the event, or a phone record's matter (not the form's heading)."""
FORM_SENDER_LABELS = ("报告人", "来电人")


def _report_form(page: Layout) -> FaxFields:
    issuer = _first_label(page, FORM_ISSUER_LABELS)
    title = _first_label(page, FORM_TITLE_LABELS).value
    return FaxFields(issuer=issuer.value, title=cjk_punctuation(title or "") or None,
                     sender=_first_label(page, FORM_SENDER_LABELS).value, kind="report_form",
                     reasons=tuple(r for r in (issuer.reason,) if r))


def _first_label(page: Layout, labels: Sequence[str]) -> _Found:
    """The value of the first of ``labels`` the form has, with how it was found."""
    for label in labels:
        found = _label_row(page, label)
        if found:
            return _Found(found[0], _reason(Rule.ISSUER, found[0], found[1], f"表格栏目{label}"))
    return _Found(None)


_CJK_PUNCT = str.maketrans({"(": "（", ")": "）", ",": "，", ":": "：", ";": "；", "!": "！",
                           "?": "？"})


_DASH_FOR_ONE = re.compile(r"(?<=[\u4e00-\u9fff])[-—一_~](?=[\u4e00-\u9fff])")


def cjk_punctuation(text: str) -> str:
    """A Chinese title's punctuation is full-width; OCR (or NFKC) often gives ASCII, and reads
    一 between two characters as a dash (发生-起)."""
    return _DASH_FOR_ONE.sub("一", text.translate(_CJK_PUNCT))


# --- rows -----------------------------------------------------------------------------------

def _label(page: Layout, label: str) -> str | None:
    found = _label_row(page, label)
    return found[0] if found else None


def _label_row(page: Layout, label: str) -> tuple[str, Row] | None:
    """A form field's value (trimmed of OCR's stray marks) and its row."""
    for row in page.rows:
        value = (label_values(row).get(label) or "").strip(":：;；,，。.·、'\"-_|")
        if value:
            return value, row
    return None


def _number_rows(page: Layout) -> list[Row]:
    """Where a document's own 文号 stands: above the title's end, or in a form field (a 文号
    quoted in the text is another document's)."""
    start = _title_start(page)
    title_rows = _title_rows(page, start)
    end = title_rows[-1].index + 1 if title_rows else start
    return [*page.rows[:end], *(row for row in page.rows[end:] if label_values(row))]


def doc_number_spot(layouts: Sequence[Layout], kind: str | None) -> tuple[int, Box, float] | None:
    """Page index, image box and confidence of the 文号's text (a cover's is on the carried
    page), so it can be read again; None when no 文号 was found."""
    index = 1 if kind == "cover" else 0
    if index >= len(layouts):
        return None
    for row in _number_rows(layouts[index]):
        if parse_doc_number(label_values(row).get("明电编号") or row.flat):
            cells = _number_cells(row.cells)
            box = (min(c.box[0] for c in cells), min(c.box[1] for c in cells),
                   max(c.box[2] for c in cells), max(c.box[3] for c in cells))
            return index, box, min(c.confidence for c in cells)
    return None


def _number_cells(cells: Sequence[OcrLine]) -> Sequence[OcrLine]:
    """The boxes of the number itself: after a "编号" label, up to the box ending in 号."""
    start = next((i + 1 for i, c in enumerate(cells) if "编号" in c.text), 0)
    tail = cells[start:] or cells
    end = next((i + 1 for i, c in enumerate(tail) if re.search(r"\d\s*号", c.text)), len(tail))
    return tail[:end]


def parse_doc_number(text: str) -> str | None:
    """``机关代字〔年份〕序号号`` from OCR text, brackets normalised; None if there is none."""
    match = DOC_NUMBER.search(flatten(text))
    if not match:
        return None
    prefix = _daizi_fixed(re.sub(r"[^\u4e00-\u9fff]", "", match.group(1)))
    return f"{prefix}〔{match.group(2)}〕{match.group(3)}号"


DAIZI_MISREADS = {"两": "函", "涵": "函", "凾": "函", "小": "办"}
"""Characters OCR gives for the last character of a 机关代字 (函, 办) in a fax's small print;
a 代字 does not end in them."""


def _daizi_fixed(prefix: str) -> str:
    """The 机关代字 with a misread last character (before 明电/发 too) put right."""
    for tail in ("明电", "发", ""):
        stem = prefix[: len(prefix) - len(tail)]
        if prefix.endswith(tail) and len(stem) >= 2 and stem[-1] in DAIZI_MISREADS:
            return stem[:-1] + DAIZI_MISREADS[stem[-1]] + tail
    return prefix


def vote_doc_number(readings: Sequence[str], year: str | None,
                    issuer: str | None = None) -> str | None:
    """The 文号 most readings agree on (the first reading wins a tie). When an issuer is
    known, readings whose 机关代字 is made of the issuer's own characters go first: a 代字
    abbreviates its issuer (临森防指办 ← 临江县森林防灭火指挥部办公室)."""
    parsed = [n for n in (parse_doc_number(r) for r in readings) if n]
    checked = [_year_checked(_Found(n), year).value for n in parsed]
    if not checked:
        return None
    return max(dict.fromkeys(checked),
               key=lambda n: (_issuer_fit(n, issuer), checked.count(n)))


_STANDARD_SUFFIX = set("发明电函字办")


def _issuer_fit(number: str | None, issuer: str | None) -> int:
    if not number or not issuer:
        return 0
    prefix = number.split("〔", 1)[0]
    return sum(ch in issuer or ch in _STANDARD_SUFFIX for ch in prefix) - len(prefix)


def _is_header_row(row: Row) -> bool:
    """Rows between the header zone and the title: 发文机关标志, 文号, masthead, form rows."""
    flat = row.flat
    return (not has_cjk(flat) or flat.endswith(("文件", "明传电报")) or bool(label_values(row))
            or bool(DOC_NUMBER.search(flat)) or bool(_ISSUE_NO.match(flat))
            or "签发人" in flat or (bool(DATE.search(flat)) and len(row.cells) > 1)
            or bool(_UNIT_SUFFIX.search(flat)) and not flat.startswith("关于")
            or len(flat) <= 6)


def _title_start(page: Layout) -> int:
    """The first row after the header that is not a header row; a left-aligned row just
    above centred ones is not it (a form row OCR garbled, "秒：送  县委办公室…" for 抄送)."""
    zone = len(header_rows(page))
    geometry = _geometry_known(page)
    for row in page.rows[zone:]:
        if _is_header_row(row):
            continue
        below = page.rows[row.index + 1:row.index + 3]
        if geometry and not page.is_centered(row) and any(page.is_centered(r) for r in below) \
                and not row.flat.startswith("关于"):
            continue
        return row.index
    return len(page.rows)


def _title_rows(page: Layout, start: int) -> list[Row]:
    rows: list[Row] = []
    for row in page.rows[start:start + TITLE_MAX_ROWS]:
        flat = row.flat
        if flat.endswith(":") or _SECTION.match(flat) or (rows and not page.is_centered(row)
                                                           and _geometry_known(page)):
            break
        rows.append(row)
        if _TITLE_END.search(flat):
            break
    return rows


def _geometry_known(page: Layout) -> bool:
    """Synthetic pages (tests on strings) put every row at the left edge."""
    return any(page.is_centered(r) for r in page.rows)


def _issuer(first: Layout, layouts: Sequence[Layout], title_start: int) -> _Found:
    """The issuer as the header, a form field, a letterhead or the 署名 gives it; where
    several readings of it disagree, see ``_vote``."""
    text = "".join(row.flat for page in layouts for row in page.rows)
    return _vote(list(_issuer_candidates(first, layouts, title_start)), text)


def _issuer_candidates(first: Layout, layouts: Sequence[Layout],
                       title_start: int) -> Iterator[_Found]:
    for row in first.rows[:title_start]:
        flat = row.flat
        for suffix in ("明传电报", "文件"):
            if flat.endswith(suffix) and len(flat) > len(suffix) + 1:
                yield _Found(flat[: -len(suffix)], _reason(Rule.ISSUER, flat, row, "发文机关标志"))
    for label in ("发电单位", "发件单位", "报告单位"):
        found = _label_row(first, label)
        if found:
            yield _Found(found[0], _reason(Rule.ISSUER, found[0], found[1], f"表格栏目{label}"))
    for row in first.rows[:title_start]:
        unit = _unit_of(row)
        if unit:
            yield _Found(unit, _reason(Rule.ISSUER, unit, row, "信头"))
    signature = _signature(layouts)
    if signature:
        read = re.sub(r"[^\u4e00-\u9fff]", "", signature.flat)  # a speck read as K or .
        name = (_repaired_place(read, layouts)
                if signature.confidence < SEAL_CONFIDENCE or _short_place(read)
                or _misread_ending(read) or read != signature.flat else read)
        yield _Found(name, _reason(Rule.ISSUER, signature.flat, signature,
                                   "署名" if name == signature.flat else
                                   f"署名（地名按正文写法：{name}）"))


def _vote(candidates: Sequence[_Found], text: str = "") -> _Found:
    """The spelling most readings of a name (a few characters apart) agree on; between
    equally supported ones, the one whose character pairs the rest of the document also
    prints (a misread 大民 is nowhere else, 人民 is), then the most confident reading."""
    if not candidates:
        return _Found(None)
    first = candidates[0].value or ""
    similar = [c for c in candidates
               if Levenshtein.distance(c.value or "", first) <= max(3, len(first) // 3)]

    def support(c: _Found) -> tuple[int, int, int, float]:
        value = c.value or ""
        agreeing = sum(o.value == value for o in similar)
        printed = text.count(value) if value else 0  # printed clean elsewhere (text, 署名)
        rest = text.replace(value, "")
        pairs = sum(value[i:i + 2] in rest for i in range(len(value) - 1))
        return agreeing, printed, pairs, (c.reason.confidence if c.reason else None) or 0.0

    return max(similar, key=support)


def _unit_of(row: Row) -> str | None:
    """A letterhead or a masthead's "unit  date" row: the unit's name."""
    name = row.cells[0].text.replace(" ", "") if len(row.cells) > 1 else row.flat
    if DATE.search(name) or DOC_NUMBER.search(name) or len(name) < 4:
        return None
    return name if _UNIT_SUFFIX.search(name) and has_cjk(name) else None


def _signature(layouts: Sequence[Layout]) -> Row | None:
    """署名: the row just above the last standalone date (成文日期)."""
    for page in reversed(layouts):
        for row in reversed(page.rows):
            if _DATE_ROW.match(row.flat) and row.index > 0:
                above = page.rows[row.index - 1]
                name = above.flat
                if len(name) > SIGNATURE_MAX_CHARS or re.search(r"[,，。;；?？!！]", name):
                    return None  # the 署名 was not read: the row above is the text's last
                return above if _PLACE.search(name) or _UNIT_SUFFIX.search(name) else None
    return None


SIGNATURE_MAX_CHARS = 24
"""A 署名 is a unit's name (or two), not a sentence."""
_DATE_ROW = re.compile(r"^(?:19|20)\d{2}年\d{1,2}月\d{1,2}.{0,2}$")
"""A row that is a date, its last character perhaps misread (6[1 for 6日)."""
_PLACE = re.compile(r"^([\u4e00-\u9fff]{0,4}?)(镇|乡|街道|县|区|市)(.*)$")


def _short_place(name: str) -> bool:
    """A place of one character ("集镇" for 杨集镇): a character lost under the seal."""
    match = _PLACE.match(name)
    return match is not None and len(match.group(1)) < 2


_UNIT_ENDINGS = ("人民政府", "办事处", "政府")


def _misread_ending(name: str) -> bool:
    """A place's unit whose ending is one character off 人民政府/办事处 (人民政付)."""
    match = _PLACE.match(name)
    tail = match.group(3) if match else ""
    return len(tail) >= 3 and tail not in _UNIT_ENDINGS and any(
        Levenshtein.distance(tail, u) == 1 for u in _UNIT_ENDINGS)


def _repaired_place(name: str, layouts: Sequence[Layout]) -> str:
    """A 署名 under a red seal is often misread ("各镇人民政府", "平乡人民政化"), but the same
    place name is printed clean in the title and text: the place named there most often
    (at least twice) that is at most two characters off the one read is used."""
    match = _PLACE.match(name)
    if not match:
        return name
    head, admin, tail = match.groups()
    text = "".join(row.flat for page in layouts for row in page.rows)
    tail = next((u for u in _UNIT_ENDINGS if tail and (
        u.startswith(tail) or Levenshtein.distance(u, tail) <= (2 if len(tail) >= 3 else 1))),
        tail)
    text = text.replace(name, "")
    places = [text[i - n:i + len(admin)] for i in _positions(text, admin) for n in (2, 3)
              if i - n >= 0 and re.fullmatch(r"[\u4e00-\u9fff]+", text[i - n:i])]
    read = head + admin
    near = [p for p in places if Levenshtein.distance(p, read) <= 2 and places.count(p) >= 2]
    if not near:  # else the place the title names ("关于花园镇…"), the one nearest
        near = _title_place(places, read, layouts)
    if not near:
        return read + tail
    best = max(dict.fromkeys(near),
               key=lambda p: (places.count(p), -Levenshtein.distance(p, read)))
    return best + tail


def _title_place(places: Sequence[str], read: str, layouts: Sequence[Layout]) -> list[str]:
    """The place in the title (a row starting with 关于) nearest to a 署名's place as read
    (characters lost under the seal count: 镇 → 石牌镇); [] when two are as near."""
    titles = "".join(row.flat for page in layouts for row in page.rows
                     if row.flat.startswith("关于"))
    near = sorted({(Levenshtein.distance(p, read), p) for p in places
                   if p in titles and len(p) >= len(read)})
    near = [(d, p) for d, p in near if d <= 2]
    if not near or (len(near) > 1 and near[1][0] == near[0][0]):
        return []
    return [near[0][1]]


def _positions(text: str, word: str) -> Iterator[int]:
    start = text.find(word)
    while start >= 0:
        yield start
        start = text.find(word, start + 1)


def _reason(rule: Rule, word: str, row: Row, what: str) -> Reason:
    return Reason(rule, word, f"{what}，第{row.index + 1}行", row.confidence)


def _doc_numbers(rows: Sequence[Row]) -> list[_Found]:
    found = []
    for row in rows:
        value = parse_doc_number(label_values(row).get("明电编号") or row.flat)
        if value:
            found.append(_Found(value, _reason(Rule.DOC_NUMBER, row.text, row, "文号")))
    unique: dict[str | None, _Found] = {}
    for item in found:
        unique.setdefault(item.value, item)
    return list(unique.values())


def _year_checked(number: _Found, year: str | None) -> _Found:
    """A 文号's year is its document's year: when OCR read one digit of it differently (2020
    for 2026) and the document's dates agree on the year, their year wins (and says so)."""
    match = re.search(r"〔(\d{4})〕", number.value or "")
    if not match or not _one_digit_off(match.group(1), year):
        return number
    value = (number.value or "").replace(match.group(), f"〔{year}〕")
    return _Found(value, Reason(Rule.DOC_YEAR_FROM_DATES, value,
                                f"文号年份识别为{match.group(1)}，文中日期均为{year}年"))


def _one_digit_off(read: str, year: str | None) -> bool:
    return bool(year) and sum(a != b for a, b in zip(read, year or "")) == 1


def document_year(layouts: Sequence[Layout]) -> str | None:
    """The year most of the document's dates agree on (成文日期, 印发日期); without any, the
    year of the fax machines' TTI lines (often set wrong, so only as a last resort)."""
    years = [y for page in layouts for row in page.rows
             for y in re.findall(r"((?:19|20)\d{2})年\d{1,2}月", row.flat)]
    if not years:
        years = [y for page in layouts
                 for y in re.findall(r"(?<!\d)((?:19|20)\d{2})(?!\d)", page.tti or "")]
    if not years:
        return None
    return max(dict.fromkeys(reversed(years)), key=years.count)


def _doc_date(layouts: Sequence[Layout], year: str | None) -> str | None:
    """成文日期: the last date standing on its own row (not a 印发 date), else any date."""
    dates = [(row, m) for page in layouts for row in page.rows
             for m in [DATE.search(row.flat)] if m and "印发" not in row.flat]
    alone = [m for row, m in dates if len(row.flat) <= len(m.group()) + 1]
    pick = alone[-1] if alone else (dates[0][1] if dates else None)
    if pick is None:
        return None
    read = pick.group(1)
    month, day = int(pick.group(2)), int(pick.group(3))
    return f"{year if _one_digit_off(read, year) else read}年{month}月{day}日"


def _copy_no(page: Layout) -> str | None:
    for row in header_rows(page):
        match = re.fullmatch(r"(?:份号)?:?(\d{6})", row.flat)
        if match:
            return match.group(1)
    return None


def _recipients(page: Layout, start: int) -> str | None:
    for row in page.rows[start:start + 3]:
        if row.flat.endswith(":"):
            return row.plain[:-1] + "："
    return None


def _sender(page: Layout) -> str | None:
    for label in ("发件人", "报告人"):
        value = _label(page, label)
        if value:
            return value
    return None
