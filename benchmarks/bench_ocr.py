"""Seconds per page of our OCR pipeline against the raw engines, on the same pages, same run.

    python benchmarks/bench_ocr.py [--pages N] [--corpus DIR]

Three readers of every page:

* pipeline — ``normalise`` (square pixels, 300 dpi, deskew, descreen, despeckle) + RapidOCR;
* raw RapidOCR — the library with its default settings on the page as received;
* raw tesseract — ``tesseract page.tif - -l chi_sim`` (``OMP_THREAD_LIMIT=1``).

Prints s/page (median and mean) and the ratios of the pipeline to each raw engine, and the
mean character error rate of each per resolution. Timings on a shared machine are noisy:
compare the ratios, which are measured side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import mean, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr.cer import cer
from ocr.engines import RapidOcrEngine
from ocr.normalise import normalise
from ocr.pages import FaxPage
from tests.ocr_corpus import (
    FAX_FIXTURES,
    FaxFixture,
    fax_fixtures,
    plain_rapidocr,
    raw_tesseract_text,
)

Reader = Callable[[FaxPage], str]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=0, help="stop after N pages (0 = all)")
    parser.add_argument("--corpus", type=Path, default=FAX_FIXTURES)
    args = parser.parse_args(argv)

    engine = RapidOcrEngine()
    readers: dict[str, Reader] = {
        "pipeline": lambda page: engine.read(normalise(page).image, page_no=page.page_no).text,
        "raw RapidOCR": plain_rapidocr(),
        "raw tesseract": raw_tesseract_text,
    }
    seconds: dict[str, list[float]] = {name: [] for name in readers}
    cers: dict[tuple[str, str], list[float]] = {}
    for fixture, page in pages_of(fax_fixtures(args.corpus), args.pages):
        for name, read in readers.items():
            started = time.perf_counter()
            text = read(page)
            seconds[name].append(time.perf_counter() - started)
            value = cer(text, fixture.truth(page.page_no))
            cers.setdefault((name, fixture.resolution), []).append(value)
            cers.setdefault((name, "all"), []).append(value)
    report(seconds, cers)
    return 0


def pages_of(fixtures: list[FaxFixture], limit: int) -> list[tuple[FaxFixture, FaxPage]]:
    pages = [(fixture, page) for fixture in fixtures for page in fixture.pages()]
    return pages[:limit] if limit else pages


def report(seconds: dict[str, list[float]], cers: dict[tuple[str, str], list[float]]) -> None:
    count = len(seconds["pipeline"])
    ours = median(seconds["pipeline"])
    print(f"{count} pages\n")
    print(f"{'reader':16} {'median s/p':>10} {'mean s/p':>9} {'pipeline ÷ this':>16}"
          f" {'CER std':>8} {'CER fine':>8} {'CER all':>8}")
    for name, values in seconds.items():
        row = [mean(cers.get((name, r), [float("nan")])) for r in ("standard", "fine", "all")]
        print(f"{name:16} {median(values):10.2f} {mean(values):9.2f} {ours / median(values):16.2f}"
              f" {row[0]:8.3f} {row[1]:8.3f} {row[2]:8.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
