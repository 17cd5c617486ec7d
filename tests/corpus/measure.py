"""Accuracy of the whole reader on generated fax sets (and the shared fixtures).

    python -m tests.corpus.measure fixtures new:11:20 gen:2:16 [--cache DIR] [--table]

A set is ``fixtures`` (the shared dev fixtures), ``gen:SEED:COUNT`` (the shared generator's own
templates, another seed) or ``new:SEED:COUNT`` (``tests.corpus.templates``). Sets are generated
into the cache folder once; with ``--cache`` the engines' readings are kept there too (keyed by
the image's bytes), so the rules can be measured again without OCR.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ocr.config import UrgencyConfig
from ocr.engines import OcrEngine, RapidOcrEngine, TesseractEngine
from ocr.model import Box, OcrLine, PageText
from ocr.reader import FaxReader, FaxReading
from tests.corpus import templates
from tests.ocr_corpus import FAX_FIXTURES, FaxFixture, fax_fixtures

FIELDS = ("urgent", "class", "doc_no", "issuer", "title")


class CachedEngine:
    """An engine whose readings of an image are kept (in memory, and on disk when given a
    folder): the same image is read once per session however often it is asked for."""

    def __init__(self, real: OcrEngine, folder: Path | None = None) -> None:
        self.real, self.folder = real, folder
        self.name = real.name
        self.memory: dict[str, PageText] = {}
        if hasattr(real, "read_region"):
            self.read_region = self._read_region

    def read(self, image: Image.Image, *, page_no: int = 1) -> PageText:
        return self._cached(("read", image), lambda: self.real.read(image, page_no=page_no))

    def _read_region(self, image: Image.Image, box: Box, *, page_no: int = 1) -> PageText:
        region = getattr(self.real, "read_region")
        return self._cached(("region", image, box),
                            lambda: region(image, box, page_no=page_no))

    def _cached(self, what: tuple[Any, ...], run: Any) -> PageText:
        digest = hashlib.sha1(repr((what[0], what[2:], what[1].size, what[1].mode)).encode())
        digest.update(what[1].tobytes())
        key = f"{self.name}-{digest.hexdigest()}"
        if key in self.memory:
            return self.memory[key]
        path = self.folder / f"{key}.json" if self.folder else None
        if path and path.exists():
            text = _load(path)
        else:
            text = run()
            if path:
                _save(path, text)
        self.memory[key] = text
        return text


def _save(path: Path, t: PageText) -> None:
    data = {"page_no": t.page_no, "engine": t.engine, "width": t.width, "height": t.height,
            "error": t.error, "lines": [[ln.text, list(ln.box), ln.confidence] for ln in t.lines]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _load(path: Path) -> PageText:
    d = json.loads(path.read_text(encoding="utf-8"))
    lines = tuple(OcrLine(text, tuple(box), conf)  # type: ignore[arg-type]
                  for text, box, conf in d["lines"])
    return PageText(d["page_no"], lines, d["engine"], d["width"], d["height"], d["error"])


# --- sets -------------------------------------------------------------------------------

def fixture_set(spec: str, root: Path) -> list[FaxFixture]:
    """The faxes of one set, generated into ``root`` the first time."""
    if spec == "fixtures":
        return fax_fixtures(FAX_FIXTURES)
    source, seed, count = spec.split(":")
    folder = root / f"{source}-{seed}-{count}"
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        if source == "new":
            templates.build(folder, int(seed), int(count))
        elif source == "gen":
            with contextlib.redirect_stdout(io.StringIO()):
                templates.generator().build_dev(str(folder), int(seed), int(count))
        else:
            raise ValueError(f"unknown set {spec!r}: fixtures, new:SEED:COUNT or gen:SEED:COUNT")
        (folder / "done").write_text("ok\n")
    return fax_fixtures(folder)


# --- scoring ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    fixture: FaxFixture
    reading: FaxReading

    @property
    def truth(self) -> dict[str, Any]:
        return dict(self.fixture.sidecar["fields"])

    def ok(self) -> dict[str, bool]:
        f, truth = self.reading.fields, self.truth
        return {"urgent": self.reading.urgency.should_page == truth["is_urgent"],
                "class": f.classification == truth["classification"],
                "doc_no": f.doc_number == truth["doc_number"],
                "issuer": f.issuer == truth["issuer"],
                "title": f.title == (truth["title"] or "").replace(" ", "")}


@dataclass(frozen=True)
class Summary:
    name: str
    scores: tuple[Score, ...]

    @property
    def hits(self) -> int:
        return sum(s.truth["is_urgent"] and s.reading.urgency.should_page for s in self.scores)

    @property
    def misses(self) -> int:
        return sum(s.truth["is_urgent"] and not s.reading.urgency.should_page for s in self.scores)

    @property
    def false_pages(self) -> int:
        return sum(not s.truth["is_urgent"] and s.reading.urgency.should_page for s in self.scores)

    def count(self, key: str) -> int:
        return sum(s.ok()[key] for s in self.scores)

    def accuracy(self) -> float:
        """All five checks over all faxes, as one fraction."""
        return sum(self.count(k) for k in FIELDS) / (len(FIELDS) * len(self.scores))

    def line(self) -> str:
        n = len(self.scores)
        urgent = self.hits + self.misses
        return (f"{self.name:14} n={n:2}  is_urgent hit {self.hits}/{urgent} miss {self.misses} "
                f"false {self.false_pages}  " +
                "  ".join(f"{k} {self.count(k)}/{n}" for k in FIELDS[1:]) +
                f"  all {self.accuracy():.3f}")

    def table(self) -> str:
        rows = []
        for s in self.scores:
            f, d, bad = s.reading.fields, s.reading.urgency, [k for k, v in s.ok().items() if not v]
            kind = s.fixture.sidecar.get("extra", {}).get("template") or s.fixture.sidecar["kind"]
            rows.append(f"  {s.fixture.name:8} {kind:15} page={'Y' if d.should_page else 'n'} "
                        f"{'✓' if not bad else ' '.join(bad)}  "
                        f"[{f.doc_number}|{f.issuer}|{f.title}]")
            for key in bad:
                truth = {"urgent": s.truth["is_urgent"], "class": s.truth["classification"],
                         "doc_no": s.truth["doc_number"], "issuer": s.truth["issuer"],
                         "title": s.truth["title"]}[key]
                rows.append(f"      {key} truth: {truth}")
        return "\n".join(rows)


def read_set(name: str, fixtures: Iterable[FaxFixture], reader: FaxReader) -> Summary:
    return Summary(name, tuple(Score(f, reader.read(f.pages())) for f in fixtures))


def make_reader(cache: Path | None) -> FaxReader:
    return FaxReader(CachedEngine(RapidOcrEngine(), cache),
                     CachedEngine(TesseractEngine(), cache), UrgencyConfig())


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--root", type=Path, default=Path("/tmp/dutygw-corpus"))
    ap.add_argument("--cache", type=Path, help="keep the engines' readings in this folder")
    ap.add_argument("--table", action="store_true", help="one line per fax")
    args = ap.parse_args(argv)
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    reader = make_reader(args.cache)
    for spec in args.sets:
        summary = read_set(spec, fixture_set(spec, args.root), reader)
        if args.table:
            print(summary.table())
        print(summary.line(), flush=True)


if __name__ == "__main__":
    main()
