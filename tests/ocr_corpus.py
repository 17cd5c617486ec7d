"""The fax corpus, OCR'd once per test session (a pytest plugin, loaded from conftest).

OCR takes seconds a page and the dev corpus has 40 pages, so every test that needs what the
pipeline read asks for the session-scoped ``ocr_corpus`` instead of reading pages itself.
The raw-engine baselines (tesseract CLI and RapidOCR on the page as received) are separate
fixtures, computed only when a test asks for them.

Set ``TEST_DUTYGW_OCR_CACHE=1`` to keep the pipeline's results in pytest's cache folder between
local runs (keyed by the file's sha256, the engine and its settings, and
``ocr.normalise.VERSION``). It is off by default, so CI always OCRs for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocr.cer import cer
from ocr.engines import OcrEngine, RapidOcrEngine, TesseractEngine
from ocr.model import OcrLine, PageText
from ocr.normalise import VERSION, NormalisedPage, normalise
from ocr.pages import FaxPage, load_pages

SHARED = Path(os.environ.get("TEST_DUTYGW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FAX_FIXTURES = SHARED / "fixtures" / "fax"
MAX_PAGES = 60
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class FaxFixture:
    """One fixture fax: the TIFF and its ground-truth sidecar."""

    path: Path
    sidecar: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def resolution(self) -> str:
        """``standard`` (204×98) or ``fine`` (204×196)."""
        return str(self.sidecar["fax"]["resolution"])

    def truth(self, page_no: int) -> str:
        return str(self.sidecar["pages"][page_no - 1]["text"])

    def pages(self) -> list[FaxPage]:
        return load_pages(self.path, max_pages=MAX_PAGES, max_pixels=MAX_PIXELS)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class OcrPage:
    """What the pipeline made of one fixture page."""

    fixture: FaxFixture
    page: FaxPage
    normalised: NormalisedPage
    text: PageText

    @property
    def truth(self) -> str:
        return self.fixture.truth(self.page.page_no)

    @property
    def cer(self) -> float:
        return cer(self.text.text, self.truth)


def fax_fixtures(folder: Path = FAX_FIXTURES) -> list[FaxFixture]:
    """Every ``*.tif`` with a JSON sidecar in ``folder``, in name order."""
    return [FaxFixture(tif, json.loads(tif.with_suffix(".json").read_text(encoding="utf-8")))
            for tif in sorted(folder.glob("*.tif")) if tif.with_suffix(".json").exists()]


def ocr_fixture(fixture: FaxFixture, engine: OcrEngine,
                cache: Path | None = None) -> tuple[OcrPage, ...]:
    """Normalise and read every page of one fixture (through the disk cache when given)."""
    cached = _cache_file(cache, fixture, engine)
    texts = _load_texts(cached) if cached and cached.exists() else None
    pages = []
    for page in fixture.pages():
        normalised = normalise(page)
        text = (texts[page.page_no - 1] if texts
                else engine.read(normalised.image, page_no=page.page_no))
        pages.append(OcrPage(fixture, page, normalised, text))
    if cached and texts is None:
        _save_texts(cached, [p.text for p in pages])
    return tuple(pages)


def raw_tesseract_text(page: FaxPage, lang: str = "chi_sim") -> str:
    """``tesseract page.tif - -l chi_sim`` on the page exactly as received (the baseline)."""
    with tempfile.TemporaryDirectory(prefix="dutygw-raw-") as work:
        path = Path(work) / "page.tif"
        page.image.save(path, compression="group4" if page.image.mode == "1" else None,
                        dpi=page.dpi)
        result = subprocess.run(["tesseract", str(path), "-", "-l", lang], capture_output=True,
                                env={**os.environ, "OMP_THREAD_LIMIT": "1"}, check=True)
    return result.stdout.decode("utf-8", errors="replace")


def plain_rapidocr() -> Callable[[FaxPage], str]:
    """The RapidOCR library with its default settings on the page as received (squashed,
    skewed, speckled): the other baseline. None of our engine's choices (size, frame, tidy)."""
    from rapidocr_onnxruntime import RapidOCR

    ocr = RapidOCR()

    def read(page: FaxPage) -> str:
        result, _ = ocr(np.asarray(page.image.convert("RGB")))
        return "\n".join(text for _, text, _ in result or ())

    return read


# --- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fax_corpus() -> list[FaxFixture]:
    """The dev fax fixtures with their sidecars (no OCR)."""
    fixtures = fax_fixtures()
    if not fixtures:
        pytest.fail(f"no fax fixtures in {FAX_FIXTURES} (set TEST_DUTYGW_SHARED?)")
    return fixtures


@pytest.fixture(scope="session")
def rapid_engine() -> RapidOcrEngine:
    return RapidOcrEngine()


@pytest.fixture(scope="session")
def tesseract_engine() -> TesseractEngine:
    return TesseractEngine()


@pytest.fixture(scope="session")
def ocr_corpus(request: pytest.FixtureRequest, fax_corpus: list[FaxFixture],
               rapid_engine: RapidOcrEngine) -> dict[str, tuple[OcrPage, ...]]:
    """Fixture name (``fax_003``) → its pages as the pipeline read them (RapidOCR)."""
    cache = _cache_dir(request.config)
    return {f.name: ocr_fixture(f, rapid_engine, cache) for f in fax_corpus}


@pytest.fixture(scope="session")
def raw_tesseract_corpus(fax_corpus: list[FaxFixture]) -> dict[str, tuple[str, ...]]:
    """Fixture name → text of each page by the plain tesseract CLI, as received."""
    return _per_page(fax_corpus, raw_tesseract_text)


@pytest.fixture(scope="session")
def raw_rapidocr_corpus(fax_corpus: list[FaxFixture]) -> dict[str, tuple[str, ...]]:
    """Fixture name → text of each page by plain RapidOCR on the unnormalised page."""
    return _per_page(fax_corpus, plain_rapidocr())


def _per_page(fixtures: list[FaxFixture],
              read: Callable[[FaxPage], str]) -> dict[str, tuple[str, ...]]:
    return {f.name: tuple(read(page) for page in f.pages()) for f in fixtures}


# --- disk cache (opt-in, local runs only) -------------------------------------------------

def _cache_dir(config: pytest.Config) -> Path | None:
    if os.environ.get("TEST_DUTYGW_OCR_CACHE") != "1" or not hasattr(config, "cache"):
        return None
    return Path(config.cache.mkdir("dutygw-ocr"))


def _cache_file(cache: Path | None, fixture: FaxFixture, engine: OcrEngine) -> Path | None:
    if cache is None:
        return None
    version = getattr(engine, "version", "")
    return cache / f"{fixture.sha256[:24]}-{engine.name}{version}-n{VERSION}.json"


def _save_texts(path: Path, texts: list[PageText]) -> None:
    data = [{"page_no": t.page_no, "engine": t.engine, "width": t.width, "height": t.height,
             "lines": [[ln.text, list(ln.box), ln.confidence] for ln in t.lines]} for t in texts]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _load_texts(path: Path) -> list[PageText]:
    return [PageText(d["page_no"], tuple(OcrLine(text, tuple(box), conf)  # type: ignore[arg-type]
                                         for text, box, conf in d["lines"]),
                     d["engine"], d["width"], d["height"])
            for d in json.loads(path.read_text(encoding="utf-8"))]
