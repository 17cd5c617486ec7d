"""New kinds of duty-room documents, drawn with the shared generator's layout library.

``../shared/tools/make_fax_corpus.py`` lays out, renders and degrades faxes; its own text
templates (the dev set's) are not used here. These templates are written from other texts,
places and names, and add kinds the dev set lacks:

* ``cover_mark`` — 传真封面 marked only by a stamp 急件/加急 above the sending unit;
* ``cover_box`` — 传真封面 whose 备注 boxes are □急件 □请阅办 …, one filled;
* ``cover_calm`` — 传真封面 with a remark "非紧急件…" (a trap: 紧急 in a negated remark);
* ``phone_record`` — 电话记录 forms (来电单位, 来电时间, 事由, 来电内容 …): the issuer is the
  calling unit, the title is the matter, the form's printed heading and owner are neither;
* ``report_title`` — 关于…遇险情况的紧急报告 (urgent by its title alone);
* ``report_followup`` — 续报, marked 特急 or not (running text says 紧急);
* ``report_calm`` — 情况报告 with 紧急 only in running text (a trap);
* ``telegram`` — 明传电报 of each grade 特提/特急/加急/平急 (平急 is a trap).

``build(out, seed, count)`` writes ``NAME.tif`` + ``NAME.json`` in the fixtures' format.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SHARED = Path(os.environ.get("TEST_DUTYGW_SHARED", Path(__file__).resolve().parents[3] / "shared"))
GENERATOR = SHARED / "tools" / "make_fax_corpus.py"


def generator() -> ModuleType:
    """The shared generator, imported as a library (it is read-only; nothing is changed in it
    but the in-memory table of layouts, to which the new kinds are added)."""
    name = "make_fax_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"the shared fax generator is not at {GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module.LAYOUTS.update(phone_record=_layout_phone_record, cover_mark=_layout_cover_mark)
    return module


# --- random fill (other places and names than the dev templates') -------------------------

COUNTIES = [("鹤岭县", "鹤"), ("柏溪县", "柏"), ("望川县", "望"), ("金坪县", "金"),
            ("石湾县", "湾"), ("兰亭县", "兰"), ("秀峰县", "秀"), ("桑园县", "桑")]
CITIES = [("澄州市", "澄"), ("岚江市", "岚"), ("汉源市", "汉"), ("昭平市", "昭")]
TOWNS = ["青石镇", "黄土岭乡", "花园镇", "官桥镇", "双溪乡", "落凤镇", "石牌镇", "龙门镇",
         "水口镇", "梨树乡"]
VILLAGES = ["马家湾村", "柿子坪村", "上河村", "赵家沟村", "白果村", "岩口村", "松林村", "瓦窑村"]
SURNAMES = "邓曹彭曾萧田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦"
GIVEN = ["振华", "淑芬", "国庆", "爱民", "桂兰", "少华", "金凤", "建军", "秋菊", "长青",
         "凤英", "永红", "志刚", "美玲", "学军", "翠萍"]
UNITS = [("应急管理局", "应急"), ("水利局", "水"), ("自然资源局", "自然资源"),
         ("公安局", "公"), ("消防救援大队", "消"), ("气象局", "气"), ("林业局", "林"),
         ("交通运输局", "交运")]
ACCIDENTS = [
    ("山洪", "受强降雨影响突发山洪，{n}名村民被困"),
    ("渔船", "一艘渔船在返港途中因机械故障失去动力，船上{n}名渔民"),
    ("山区", "{n}名外地游客进入未开发山区后迷路失联"),
    ("矿井", "一煤矿井下发生透水，{n}名作业人员被困"),
    ("水库", "一小型水库坝体出现管涌险情，下游{n}户群众受到威胁"),
]


class Fill:
    """Facts one document is written from, drawn from ``rng``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.county, self.abbr = rng.choice(COUNTIES)
        self.city, self.city_abbr = rng.choice(CITIES)
        self.town, self.village = rng.choice(TOWNS), rng.choice(VILLAGES)
        self.year = rng.choice([2025, 2026, 2027])
        self.month, self.day = rng.randint(1, 12), rng.randint(1, 28)
        self.hour, self.minute = rng.randint(0, 23), rng.randint(0, 59)
        self.area = rng.choice(["0731", "0745", "0916", "0794", "0859"])

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)

    def phone(self) -> str:
        return f"{self.area}-{self.rng.randint(2000000, 8999999)}"

    def date(self) -> str:
        return f"{self.year}年{self.month}月{self.day}日"

    def md(self) -> str:
        return f"{self.month}月{self.day}日"

    def unit(self) -> tuple[str, str]:
        suffix, code = self.rng.choice(UNITS)
        return self.county + suffix, self.abbr + code

    def doc_number(self, abbr: str) -> str:
        return f"{abbr}〔{self.year}〕{self.rng.randint(1, 160)}号"


# --- layouts the shared library lacks -------------------------------------------------

def _layout_phone_record(spec: dict[str, Any], rng: random.Random, red: Any = None) -> Any:
    """电话记录: printed heading and owner, a ruled form of label/value rows written by hand,
    a 来电内容 block, and (optionally) 紧急程度 options with one ticked by hand."""
    g = generator()
    left, width = g.LEFT, g.WIDTH
    page = g.Page()
    page.text(left + width / 2, 34, spec["form_title"], font="hei", size=22, align="center")
    page.text(left + width / 2, 43, spec["form_owner"], size=13, align="center")
    y, rh = 49.0, 12.0
    hand = {"jitter": spec.get("jitter", 0.6)}
    x1, x2, x3 = left + 26, left + 84, left + 108
    for a, b, c, d in spec["pairs"]:
        page.line(left, y, left + width, y, width=0.6)
        by = y + rh * 0.68
        page.text(left + 13, by, a, font="hei", size=12.5, align="center")
        page.text(x1 + 2, by, b, font="kai", size=14, hand=hand)
        if c:
            page.text((x2 + x3) / 2, by, c, font="hei", size=12.5, align="center")
            page.text(x3 + 2, by, d, font="kai", size=14, hand=hand)
            page.line(x2, y, x2, y + rh, width=0.6)
            page.line(x3, y, x3, y + rh, width=0.6)
        page.line(x1, y, x1, y + rh, width=0.6)
        y += rh
    for label, text, minlines in spec["blocks"]:
        lines = g.wrap(text, "kai", 14, width - 30)
        h = max(minlines, len(lines)) * 9.0 + 4
        page.line(left, y, left + width, y, width=0.6)
        page.line(x1, y, x1, y + h, width=0.6)
        page.text(left + 13, y + h / 2 + 2, label, font="hei", size=12.5, align="center")
        for i, ln in enumerate(lines):
            page.text(x1 + 2, y + 8 + i * 9.0, ln, font="kai", size=14, hand=hand)
        y += h
    if spec.get("options"):
        page.line(left, y, left + width, y, width=0.6)
        page.line(x1, y, x1, y + rh, width=0.6)
        page.text(left + 13, y + rh * 0.68, "紧急程度", font="hei", size=12.5, align="center")
        x = x1 + 4
        for opt in spec["options"]:
            s = "□" + opt
            page.text(x, y + rh * 0.68, s, size=13)
            if opt == spec["checked"]:
                page.text(x + 0.6, y + rh * 0.68 - 0.3, "√", font="kai", size=15, gt=False,
                          hand={"jitter": 0.3})
            x += g.text_width(s, "song", 13) + 10
        y += rh
    page.rect(left, 49.0, width, y - 49.0, width=1.0)
    if spec.get("footer"):
        page.text(left, y + 8, spec["footer"], size=12)
    pages = [page]
    return pages, dict(doc_number=None, issuer=spec["issuer"], title=spec["title"], urgency=None,
                       classification=None, pages=1, is_urgent=spec["checked"] == "紧急")


def _layout_cover_mark(spec: dict[str, Any], rng: random.Random, red: Any = None) -> Any:
    """A cover sheet with a stamp (急件 / 加急) at the top, left or right, boxed or not."""
    g = generator()
    pages, fields = g.layout_cover(spec, rng, red if red is not None else g.RED)
    mark, right = spec["mark"], spec.get("mark_right", False)
    size = 24.0
    w = g.text_width(mark, "hei", size)
    x = g.LEFT + g.WIDTH - w if right else g.LEFT
    pages[0].text(x, 22, mark, font="hei", size=size)
    if spec.get("mark_box"):
        pages[0].rect(x - 2, 12.5, w + 4, 12.5, width=1.0)
    fields["is_urgent"] = True
    fields["urgency"] = fields.get("urgency") or (mark if mark in ("特急", "加急") else None)
    return pages, fields


# --- the documents -------------------------------------------------------------------------

def _letter(f: Fill, issuer: str, abbr: str) -> dict[str, Any]:
    """A carried document: an ordinary letterhead notice of this unit."""
    r = f.rng
    topic = r.choice(["汛期地质灾害隐患排查", "冬季森林防火巡查", "尾矿库安全检查",
                      "应急物资储备核查", "避险安置点建设"])
    body = [("p", f"为切实做好{topic}工作，现将有关事项函告如下："),
            ("p", f"一、请于{f.md()}前完成本辖区{topic}情况摸底，建立工作台账。"),
            ("p", "二、发现问题要立行立改，不能立即整改的要落实管控措施和责任人。"),
            ("p", f"三、工作情况请报送{issuer}，联系人：{f.name()}，电话：{f.phone()}。")]
    return dict(issuer=issuer, letterhead=issuer, red_letterhead=r.random() < 0.5,
                doc_number=f.doc_number(abbr + "函") if r.random() < 0.6 else None,
                title=f"关于做好{topic}工作的函", urgency=None,
                recipients="各乡镇人民政府，县直有关单位：", body=body, date=f.date(),
                seal=r.random() < 0.5)


def _cover_spec(f: Fill, *, checkboxes: list[str] | None = None, checked: str | None = None,
                remark: str | None = None) -> dict[str, Any]:
    r = f.rng
    sender, abbr = f.unit()
    carried = _letter(f, sender, abbr)
    to_org = r.choice([f"{f.city}人民政府总值班室", f"{f.county}人民政府总值班室"])
    spec: dict[str, Any] = dict(
        issuer=sender, sender_org=sender, cover_title=r.choice(["传真封面", "传　真", "传真件"]),
        subject=carried["title"], attached=("letter", carried),
        rows=[("收件单位", to_org, "收件人", r.choice(["值班室", "值班员", f.name()])),
              ("发件单位", sender, None, None),
              ("发件人", f.name(), "电　话", f.phone()),
              ("日　期", f.date(), "页　数", "共{N}页（含本页）"),
              ("主　题", carried["title"], None, None)],
        message=f"现将《{carried['title']}》传真给你们，请查收后回电确认。",
        footer="本传真如有缺页或字迹不清，请速与发件人联系。")
    if checkboxes:
        spec["checkboxes"], spec["checked"] = checkboxes, [checked]
        spec["urgent"] = checked in ("急件", "加急", "紧急")
    if remark:
        spec["remark"] = remark
    return spec


def cover_mark(f: Fill) -> tuple[str, dict[str, Any]]:
    spec = _cover_spec(f)
    spec.update(mark=f.rng.choice(["急件", "急件", "加急"]), mark_right=f.rng.random() < 0.4,
                mark_box=f.rng.random() < 0.5, urgent=True)
    return "cover_mark", spec


def cover_box(f: Fill) -> tuple[str, dict[str, Any]]:
    options = ["急件", "请阅办", "请回复", "仅供参考"]
    checked = f.rng.choice(["急件", "急件", "请阅办", "仅供参考"])
    return "cover", _cover_spec(f, checkboxes=options, checked=checked)


def cover_calm(f: Fill) -> tuple[str, dict[str, Any]]:
    remark = f.rng.choice(["备注：非紧急件，请于工作日转有关科室办理。",
                           "备注：此件不紧急，请按正常程序呈阅。"])
    return "cover", _cover_spec(f, remark=remark)


def phone_record(f: Fill) -> tuple[str, dict[str, Any]]:
    r = f.rng
    caller, _ = f.unit()
    hazard, what = r.choice(ACCIDENTS)
    n = r.randint(2, 12)
    matter = r.choice([f"{f.town}{hazard}险情", f"报告{f.town}{hazard}险情",
                       f"{f.town}{f.village}{hazard}险情处置"])
    urgent = r.random() < 0.5
    matter_label = r.choice(["事　由", "来电事由", "主要事项"])
    content = (f"{f.md()}{f.hour}时{f.minute}分，{f.town}{f.village}{what.format(n=n)}。"
               f"{caller}已组织力量赶赴现场处置，" +
               ("请求县里协调专业救援力量支援。" if urgent else "目前情况稳定，后续情况将及时报告。"))
    spec = dict(
        form_title=r.choice(["电话记录", "值班电话记录", "来电记录单"]),
        form_owner=f"{f.county}人民政府总值班室",
        issuer=caller, title=matter,
        pairs=[("来电单位", caller, "来电时间", f"{f.md()}{f.hour}时{f.minute}分"),
               ("来 电 人", f.name(), "来电号码", f.phone()),
               ("接 听 人", f.name(), "记录时间", f"{f.hour}时{(f.minute + 5) % 60}分"),
               (matter_label, matter, None, None)],
        blocks=[("来电内容", content, 3), ("领导批示", "", 2)],
        options=["一般", "较急", "紧急"] if r.random() < 0.8 else None,
        checked="紧急" if urgent else r.choice(["一般", "较急"]),
        footer=r.choice(["注：接报重要紧急情况须即报带班领导。", ""]),
        jitter=r.choice([0.4, 0.6, 0.8]))
    if not spec["options"]:
        spec["checked"] = None
    return "phone_record", spec


def _report(f: Fill, title: str, body_extra: str, *, mark: str | None = None,
            is_urgent: bool) -> dict[str, Any]:
    r = f.rng
    issuer = f.town + "人民政府"
    hazard, what = r.choice(ACCIDENTS)
    n = r.randint(2, 15)
    body = [("h1", "一、基本情况"),
            ("p", f"{f.md()}{f.hour}时{f.minute}分，{f.village}{what.format(n=n)}。{body_extra}"),
            ("h1", "二、处置情况"),
            ("p", "险情发生后，我镇立即启动应急预案，主要负责同志带领应急分队赶赴现场，"
                  "会同派出所、卫生院开展搜救和群众转移工作。"),
            ("h1", "三、下步打算"),
            ("p", "我镇将继续全力做好救援和安置工作，有关情况随时报告。")]
    spec = dict(issuer=issuer, title=title, recipients=f"{f.county}人民政府总值班室：",
                body=body, date=f.date(), urgency=mark if mark in ("特急", "加急") else None,
                seal=r.random() < 0.5, is_urgent=is_urgent,
                contact=f"联系人：{f.name()}　联系电话：{f.phone()}")
    if mark:
        spec["urgency_mark"] = mark
    return spec


def report_title(f: Fill) -> tuple[str, dict[str, Any]]:
    hazard = f.rng.choice(["群众遇险", "游客遇险", "渔船遇险", "矿工遇险", "车辆落水人员遇险"])
    title = f"关于{f.town}{f.village}{hazard}情况的紧急报告"
    return "report", _report(f, title, "目前现场仍在搜救。", is_urgent=True)


def report_followup(f: Fill) -> tuple[str, dict[str, Any]]:
    marked = f.rng.random() < 0.5
    title = f"关于{f.town}{f.rng.choice(['山洪', '滑坡', '内涝'])}灾情的续报（第{f.rng.randint(2, 4)}报）"
    extra = "截至发稿时已紧急转移安置群众" + str(f.rng.randint(30, 400)) + "人。"
    return "report", _report(f, title, extra, mark="特急" if marked else None, is_urgent=marked)


def report_calm(f: Fill) -> tuple[str, dict[str, Any]]:
    title = f"关于{f.town}开展紧急避险转移演练情况的报告" if f.rng.random() < 0.5 else \
        f"关于{f.town}防汛工作开展情况的报告"
    extra = "遇有紧急情况将第一时间报告，情况紧急时先电话报告。"
    return "report", _report(f, title, extra, is_urgent=False)


_GRADES = ["特提", "特急", "加急", "平急"]


def telegram(f: Fill, grade: str | None = None) -> tuple[str, dict[str, Any]]:
    r = f.rng
    issuer, abbr = r.choice([(f.city + "人民政府办公室", f.city_abbr + "政办"),
                             (f.county + "人民政府办公室", f.abbr + "政办"),
                             (f.county + "防汛抗旱指挥部", f.abbr + "汛")])
    grade = grade or r.choice(_GRADES)
    topic = r.choice(["强对流天气", "持续高温干旱", "山洪地质灾害", "道路结冰"])
    title = (f"关于切实做好{topic}防范应对工作的紧急通知" if grade != "平急" and r.random() < 0.5
             else f"关于做好{topic}防范应对工作的通知")
    body = [("p", f"据气象部门预报，{f.md()}起我市将出现{topic}过程。为做好防范应对，"
                  "现就有关事项通知如下："),
            ("p", "一、各地要加强监测预警，及时发布预警信息，遇有紧急情况立即组织群众转移。"),
            ("p", "二、严格落实领导带班和24小时值班制度，确保信息报送渠道畅通。"),
            ("p", "三、重要情况请及时报告市政府总值班室。")]
    return "telegram", dict(
        issuer=issuer, mark=issuer + "明传电报", sender=issuer, approver=f.name(),
        urgency=grade, doc_number=f"{abbr}明电〔{f.year}〕{r.randint(1, 90)}号", title=title,
        recipients="各县（市、区）人民政府，市直有关单位：", body=body,
        cc=r.choice(["市委办公室", "市应急管理局、市水利局", ""]), date=f.date(),
        seal=r.random() < 0.5, classification=None, secrecy_period=None)


KINDS = [cover_mark, cover_box, cover_calm, phone_record, phone_record, report_title,
         report_followup, report_calm, telegram, telegram]


def build(out: Path, seed: int, count: int = 20) -> list[dict[str, Any]]:
    """Write ``count`` faxes (``new_NNN.tif`` + ``.json``) into ``out``; deterministic."""
    g = generator()
    g.register_fonts()
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(count)]
    rng.shuffle(kinds)
    grades = iter(_GRADES * count)
    metas = []
    for i, template in enumerate(kinds):
        f = Fill(rng)
        kind, spec = template(f, next(grades)) if template is telegram else template(f)
        if kind in ("cover", "cover_mark"):
            spec = g.fill_cover_pages(spec, rng)
        fax = g.random_fax_options(rng)
        hh = rng.choice([22, 23, 0, 1, 3, 5, 9, 14, 17])
        when = (f.year, f.month, f.day, hh, rng.randint(0, 59))
        fax["tti"] = g.random_tti(rng, when, f.phone(), rng.choice(["DUTY", "ZHIBAN", "GOV", ""]))
        name = f"new_{i + 1:03d}"
        metas.append(g.make_fax(kind, spec, fax, str(out), name, rng,
                                extra={"template": template.__name__}))
    return metas
