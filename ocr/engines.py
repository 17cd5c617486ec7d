"""OCR engines behind one small interface, so the pipeline never knows which one reads.

* ``RapidOcrEngine`` — PaddleOCR's Chinese models run by onnxruntime (the models ship in
  the ``rapidocr_onnxruntime`` wheel: no network). The default reader of Chinese text.
* ``TesseractEngine`` — the ``tesseract`` program with ``chi_sim``; weaker on faxes, kept as
  a second, independent reader of small regions (page 1's header zone, the TTI line) and for
  page orientation (OSD).

Engines are built once (loading models takes a second) and reused for every page.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from ocr.model import Box, OcrLine, PageText


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image, *, page_no: int = 1) -> PageText:
        """All text lines of ``image`` in reading order; boxes in ``image``'s pixels."""
        ...


class EngineError(RuntimeError):
    """The OCR engine itself failed (missing program or model, crash); not the page's fault."""


def make_engine(name: str, **options: object) -> OcrEngine:
    """The engine called ``name`` in the configuration (``rapidocr`` or ``tesseract``)."""
    engines: dict[str, type] = {"rapidocr": RapidOcrEngine, "tesseract": TesseractEngine}
    if name not in engines:
        raise ValueError(f"unknown OCR engine {name!r}; expected one of {', '.join(engines)}")
    engine: OcrEngine = engines[name](**options)
    return engine


# --- reading order -----------------------------------------------------------------------

def reading_order(lines: Sequence[OcrLine]) -> tuple[OcrLine, ...]:
    """Top to bottom, and left to right within a visual row.

    Two boxes are on the same row when their vertical middles are closer than half the
    smaller box's height (table cells, a date at the right of a unit name).
    """
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: _middle(ln.box)):
        if rows and _same_row(rows[-1][-1].box, line.box):
            rows[-1].append(line)
        else:
            rows.append([line])
    return tuple(line for row in rows for line in sorted(row, key=lambda ln: ln.box[0]))


def _middle(box: Box) -> float:
    return (box[1] + box[3]) / 2


def _same_row(a: Box, b: Box) -> bool:
    height = min(a[3] - a[1], b[3] - b[1])
    return abs(_middle(a) - _middle(b)) < height / 2


# --- RapidOCR -----------------------------------------------------------------------------

class RapidOcrEngine:
    """PP-OCRv4 detection + recognition through ``rapidocr_onnxruntime``."""

    name = "rapidocr"

    def __init__(self, *, threads: int = 0, max_side_len: int = 4000, border: int = 32,
                 **rapidocr_settings: object) -> None:
        """``threads`` 0 lets onnxruntime choose. RapidOCR would shrink a page whose longer
        side exceeds ``max_side_len``; the normalised page already has the size it reads
        best (see ``ocr.normalise``), so the limit only guards against huge images.
        ``rapidocr_settings`` go to RapidOCR as they are (e.g. ``det_box_thresh=0.4``)."""
        from rapidocr_onnxruntime import RapidOCR  # slow import: only when built

        settings: dict[str, object] = {"max_side_len": max_side_len, **rapidocr_settings}
        if threads > 0:
            settings.update(intra_op_num_threads=threads, inter_op_num_threads=1)
        with _threads_that_wait_asleep():
            self._ocr = RapidOCR(**settings)
        self.border = border
        self.version = f"1.4.4-s{max_side_len}-b{border}-t1" + "".join(
            f"-{k}{v}" for k, v in sorted(rapidocr_settings.items()))
        """What changes its output: package and settings (keys cached results)."""

    def read(self, image: Image.Image, *, page_no: int = 1) -> PageText:
        pixels = np.asarray(image.convert("RGB"))
        border = self.border
        # the text detector misses lines that touch the image edge (the TTI header line)
        framed = cv2.copyMakeBorder(pixels, border, border, border, border,
                                    cv2.BORDER_CONSTANT, value=(255, 255, 255))
        result, _ = self._ocr(framed)
        lines = [_rapid_line(points, text, score, -border, image.size)
                 for points, text, score in result or ()]
        return PageText(page_no, reading_order([ln for ln in lines if ln.text.strip()]),
                        self.name, image.width, image.height)


@contextmanager
def _threads_that_wait_asleep() -> Iterator[None]:
    """Build RapidOCR's onnxruntime sessions with spinning off (RapidOCR has no setting).

    A spinning thread waits for its peers by burning a core. On a machine busy with
    anything else (the other OCR worker, the database) a peer is often descheduled, and
    a two-thread page then took 5 s of CPU instead of 2.6 and longer than one thread; with
    threads that sleep while they wait it never does worse than one thread, and on an idle
    machine it is 1.7 times as fast."""
    from rapidocr_onnxruntime.utils import infer_engine

    session = infer_engine.OrtInferSession
    original = session.__dict__["_init_sess_opts"]

    def options(config: dict[str, object]) -> object:
        opts = original.__func__(config)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return opts

    session._init_sess_opts = staticmethod(options)
    try:
        yield
    finally:
        session._init_sess_opts = original


_YEAR_IN_BRACKETS = re.compile(
    r"[\[［【(（〔]\s*((?:19|20)\d{2})\s*[\]］】)）〕](?=\s*\d{1,4}\s*号)")


def tidy(text: str) -> str:
    """Undo RapidOCR's systematic misreadings of official documents.

    Its model prints the enumeration comma 、 as 丶 (a radical no document uses), and the
    brackets of a 发文字号 (``〔2025〕30号``, GB/T 9704) as [] or （）.
    """
    return _YEAR_IN_BRACKETS.sub(r"〔\1〕", text.replace("丶", "、"))


def _rapid_line(points: Sequence[Sequence[float]], text: str, score: float, shift: int,
                size: tuple[int, int]) -> OcrLine:
    xs = [min(max(p[0] + shift, 0), size[0]) for p in points]
    ys = [min(max(p[1] + shift, 0), size[1]) for p in points]
    box = (int(min(xs)), int(min(ys)), round(max(xs)), round(max(ys)))
    return OcrLine(tidy(text.strip()), box, float(score))


# --- Tesseract ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Orientation:
    """What tesseract's OSD says: turn the page by ``rotate_deg`` clockwise to make it upright."""

    rotate_deg: int
    confidence: float
    script: str


class TesseractEngine:
    """The ``tesseract`` program, one process per call, single-threaded.

    ``OMP_THREAD_LIMIT=1`` goes into the tesseract process's environment only: with its
    default threading a page takes 5–7× longer on a small shared machine.
    """

    name = "tesseract"

    def __init__(self, *, lang: str = "chi_sim", command: str = "tesseract",
                 timeout_s: float = 120.0) -> None:
        found = shutil.which(command)
        if found is None:
            raise EngineError(f"tesseract is not installed ({command!r} not found)")
        self.lang, self.command, self.timeout_s = lang, found, timeout_s

    def read(self, image: Image.Image, *, page_no: int = 1, psm: int = 3,
             lang: str | None = None) -> PageText:
        """``psm`` is tesseract's page segmentation mode (3 page, 6 block, 7 one line)."""
        tsv = self._run(image, ["-l", lang or self.lang, "--psm", str(psm), "tsv"])
        lines = _tsv_lines(tsv)
        return PageText(page_no, reading_order(lines), self.name, image.width, image.height)

    def read_region(self, image: Image.Image, box: Box, *, page_no: int = 1,
                    single_line: bool = False, lang: str | None = None,
                    scale: float = 1.0) -> PageText:
        """Read one zone of a page (header zone, TTI line); boxes come back in page pixels.

        The fax TTI line is Latin digits and letters: ``lang="eng"`` reads it far better
        than ``chi_sim``, which takes 0 for 6. Tesseract wants ~300 dpi: on a page
        normalised for RapidOCR (170 dpi) pass ``scale=2``.
        """
        x0, y0 = box[0], box[1]
        crop = image.crop(box)
        if scale != 1.0:
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)),
                               Image.Resampling.LANCZOS)
        region = self.read(crop, page_no=page_no, psm=7 if single_line else 6, lang=lang)
        lines = tuple(
            OcrLine(ln.text, (x0 + round(ln.box[0] / scale), y0 + round(ln.box[1] / scale),
                              x0 + round(ln.box[2] / scale), y0 + round(ln.box[3] / scale)),
                    ln.confidence)
            for ln in region.lines)
        return PageText(page_no, lines, self.name, image.width, image.height)

    def has_osd(self) -> bool:
        """Whether the ``osd`` traineddata (Debian ``tesseract-ocr-osd``) is installed."""
        listing = subprocess.run([self.command, "--list-langs"], capture_output=True,
                                 text=True, timeout=self.timeout_s, check=False)
        return "osd" in listing.stdout.split()

    def orientation(self, image: Image.Image) -> Orientation:
        """Page orientation by OSD; raises ``EngineError`` when OSD is missing or unsure."""
        out = self._run(image, ["--psm", "0", "-l", "osd"])
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        try:
            return Orientation(int(fields["Rotate"]), float(fields["Orientation confidence"]),
                               fields.get("Script", "").strip())
        except (KeyError, ValueError) as exc:
            raise EngineError(f"tesseract OSD gave no orientation: {out.strip()[:200]}") from exc

    def _run(self, image: Image.Image, args: list[str]) -> str:
        png = io.BytesIO()
        image.save(png, format="PNG", dpi=(300, 300))
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        result = subprocess.run([self.command, "stdin", "stdout", *args], input=png.getvalue(),
                                capture_output=True, env=env, timeout=self.timeout_s, check=False)
        if result.returncode != 0:
            raise EngineError(f"tesseract failed ({result.returncode}): "
                              f"{result.stderr.decode(errors='replace').strip()[:300]}")
        return result.stdout.decode("utf-8", errors="replace")


def _tsv_lines(tsv: str) -> list[OcrLine]:
    """Group tesseract's word rows (level 5) into lines by (block, paragraph, line)."""
    words: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") == "5" and (row.get("text") or "").strip():
            words.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    return [_tsv_line(group) for group in words.values()]


def _tsv_line(words: list[dict[str, str]]) -> OcrLine:
    x0 = min(int(w["left"]) for w in words)
    y0 = min(int(w["top"]) for w in words)
    x1 = max(int(w["left"]) + int(w["width"]) for w in words)
    y1 = max(int(w["top"]) + int(w["height"]) for w in words)
    confidences = [max(float(w["conf"]), 0.0) / 100 for w in words]
    return OcrLine(_join_words([w["text"].strip() for w in words]), (x0, y0, x1, y1),
                   sum(confidences) / len(confidences))


def _join_words(words: list[str]) -> str:
    """chi_sim gives one "word" per character or run: no space between CJK, one between Latin."""
    text = words[0]
    for word in words[1:]:
        text += (" " if _latin(text[-1]) and _latin(word[0]) else "") + word
    return text


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()
