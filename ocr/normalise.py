"""Make a received fax page look like what OCR engines were trained on.

Small steps, each a function from image to image (numpy ``uint8`` grey, 0 = ink, 255 = paper):

* ``remove_streaks`` — a speck of dirt on the sender's scanner glass draws a thin vertical
  line down the whole page, through the text;
* ``resample`` — square pixels at ``dpi`` (a standard-resolution fax is squashed 2:1);
* ``estimate_skew`` / ``deskew`` — fax pages come through the scanner turned by up to ~1.5°;
* ``descreen`` — red letterheads and seals arrive as dithered halftone dots; a blur turns the
  dots back into grey strokes;
* ``despeckle`` — drop isolated specks (salt-and-pepper noise, dust on the glass).

``normalise(page)`` runs them in order and says what it did (scale and skew) so line boxes
can be mapped back to the received page. ``VERSION`` changes whenever the output changes, so
cached OCR results of an older pipeline are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ocr.pages import FaxPage

VERSION = "4"

Grey = np.ndarray
"""2-D uint8 array, 0 = black ink, 255 = white paper."""


@dataclass(frozen=True)
class NormaliseOptions:
    dpi: float = 170.0
    """Output resolution. Measured on 13 dev pages, RapidOCR reads fax pages best at about
    170 dpi (mean CER 0.049 against 0.053 at 160 and 180, 0.058 at 150, 0.060 at 200 and
    0.062 at 300 dpi): its models were trained on text of about that pixel size. It is
    also 3× fewer pixels than 300 dpi, so faster."""
    max_skew_deg: float = 3.0
    streak_coverage: float = 0.5
    """A column of the received page inked over more than this share of its height is a
    scanner streak (printed rules and text columns stay under 0.25); 0 switches it off."""
    descreen_sigma: float = 1.0
    """Gaussian blur (in output pixels) that merges halftone dots; 0 switches it off."""
    speck_area: int = 6
    """Dark blobs of at most this many output pixels, with nothing near them, are removed.
    RapidOCR hardly minds speckle (CER 0.049 with, 0.050 without); the tick reader and
    Tesseract do."""
    debug_dir: Path | None = None
    """When set, every intermediate image is written there as ``p<page>-<n>-<step>.png``."""


@dataclass(frozen=True)
class NormalisedPage:
    image: Image.Image
    """Mode ``"L"``, square pixels at ``dpi``."""
    page_no: int
    dpi: float
    scale: tuple[float, float]
    """Output pixels per received pixel, (x, y)."""
    skew_deg: float
    """Skew found and removed; positive = the content was turned clockwise."""
    source_size: tuple[int, int] = field(default=(0, 0))


def normalise(page: FaxPage, options: NormaliseOptions = NormaliseOptions()) -> NormalisedPage:
    """Square pixels, ``options.dpi``, upright, descreened and despeckled."""
    debug = _Debug(options.debug_dir, page.page_no)
    grey = debug.keep("grey", to_grey(page.image))
    grey = debug.keep("unstreaked", remove_streaks(grey, options.streak_coverage))
    scale = (options.dpi / page.dpi[0], options.dpi / page.dpi[1])
    grey = debug.keep("resampled", resample(grey, *scale))
    skew = estimate_skew(grey, limit_deg=options.max_skew_deg)
    grey = debug.keep("deskewed", deskew(grey, skew, keep_top=header_rows(grey, options.dpi)))
    grey = debug.keep("descreened", descreen(grey, options.descreen_sigma))
    grey = debug.keep("despeckled", despeckle(grey, options.speck_area))
    return NormalisedPage(Image.fromarray(grey, "L"), page.page_no, options.dpi, scale, skew,
                          page.image.size)


def to_grey(image: Image.Image) -> Grey:
    return np.asarray(image.convert("L"), dtype=np.uint8)


def remove_streaks(grey: Grey, min_coverage: float, max_width: int = 4) -> Grey:
    """Erase thin vertical lines that run down most of the page (dirt on the scanner glass).

    Done on the received pixel grid, where the streak is exactly vertical and 1–2 pixels
    wide. Each streak pixel takes the lighter of its two neighbours, so the paper shows
    through but a horizontal stroke crossing the streak stays whole.
    """
    if min_coverage <= 0:
        return grey
    columns = np.flatnonzero((grey < 128).mean(axis=0) >= min_coverage)
    if len(columns) == 0:
        return grey
    cleaned = grey.copy()
    for run in np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1):
        first, last = int(run[0]), int(run[-1])
        if last - first + 1 > max_width:
            continue  # a thick bar is printed, not dirt
        left = grey[:, max(first - 1, 0)]
        right = grey[:, min(last + 1, grey.shape[1] - 1)]
        cleaned[:, first : last + 1] = np.maximum(left, right)[:, None]
    return cleaned


def resample(grey: Grey, scale_x: float, scale_y: float) -> Grey:
    """Stretch to square pixels and scale in one resampling (each one blurs a little)."""
    height, width = grey.shape
    size = (round(width * scale_x), round(height * scale_y))
    if size == (width, height):
        return grey
    shrinking = scale_x < 1 and scale_y < 1
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def estimate_skew(grey: Grey, *, limit_deg: float = 3.0) -> float:
    """Angle of the text lines by projection profile: the shear that makes rows sharpest.

    Shearing ink coordinates (``y - x·tan a``) instead of rotating the image keeps it cheap:
    one histogram per candidate angle, coarse then fine.
    """
    ys, xs = np.nonzero(grey < 128)
    if len(xs) < 100:
        return 0.0
    step = max(1, len(xs) // 150_000)
    xs, ys = xs[::step].astype(np.float64), ys[::step].astype(np.float64)
    best = _best_angle(xs, ys, np.arange(-limit_deg, limit_deg + 1e-9, 0.25))
    best = _best_angle(xs, ys, np.arange(best - 0.25, best + 0.25 + 1e-9, 0.025))
    return round(float(best), 3) + 0.0  # never -0.0


def _best_angle(xs: np.ndarray, ys: np.ndarray, angles: np.ndarray) -> float:
    def sharpness(angle: float) -> float:
        rows = ys - xs * np.tan(np.radians(angle))
        counts = np.bincount((rows - rows.min()).astype(np.int64))
        return float(np.dot(counts, counts))

    return float(angles[int(np.argmax([sharpness(a) for a in angles]))])


def deskew(grey: Grey, skew_deg: float, *, keep_top: int = 0) -> Grey:
    """Turn the page back by ``skew_deg`` (counter-clockwise for positive), paper-white corners.

    The top ``keep_top`` rows stay as they are: the fax header line (TTI) is printed by the
    fax machine, straight, on top of the skewed scan; turning it would tilt it and push one
    end off the page.
    """
    if abs(skew_deg) < 0.05:
        return grey
    height, width = grey.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), skew_deg, 1.0)
    body = grey.copy()
    body[:keep_top] = 255  # else a turned ghost of the header line shows under the straight one
    turned = cv2.warpAffine(body, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    turned[:keep_top] = grey[:keep_top]
    return turned


def header_rows(grey: Grey, dpi: float) -> int:
    """How many rows at the top hold the fax header line (TTI), or 0 when there is none.

    The TTI line is one short band of dense ink in the first few millimetres of the page,
    with blank paper under it.
    """
    mm = dpi / 25.4
    top = grey[: int(12 * mm)]
    busy = (top < 128).sum(axis=1) > 0.03 * grey.shape[1]
    rows = np.flatnonzero(busy)
    if len(rows) == 0 or rows[0] > 6 * mm:
        return 0
    start = end = rows[0]
    while end + 1 < len(busy) and busy[end + 1]:
        end += 1
    gap_below = not busy[end + 1 : end + 1 + int(2 * mm)].any()
    if end - start > 5 * mm or not gap_below:
        return 0
    return int(end + 1 + mm)


def descreen(grey: Grey, sigma: float) -> Grey:
    """Blur halftone dots into solid grey strokes the engines can read."""
    if sigma <= 0:
        return grey
    return cv2.GaussianBlur(grey, (0, 0), sigma)


def despeckle(grey: Grey, max_area: int) -> Grey:
    """Whiten small isolated dark blobs (fax line noise); strokes are larger or touch others."""
    if max_area <= 0:
        return grey
    ink = (grey < 160).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False
    if not small.any():
        return grey
    specks = small[labels]
    # keep specks that sit next to other ink: dots of 、。 and the ends of thin strokes
    near_ink = cv2.dilate(ink & ~specks.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    cleaned = grey.copy()
    cleaned[specks & ~near_ink] = 255
    return cleaned


class _Debug:
    """Writes intermediates when a folder is given; otherwise passes images through."""

    def __init__(self, folder: Path | None, page_no: int) -> None:
        self.folder, self.page_no, self.count = folder, page_no, 0
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def keep(self, step: str, grey: Grey) -> Grey:
        if self.folder is not None:
            self.count += 1
            Image.fromarray(grey).save(self.folder / f"p{self.page_no}-{self.count}-{step}.png")
        return grey
