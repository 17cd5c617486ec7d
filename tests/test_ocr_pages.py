"""Reading received documents into pages, and normalising them: invariants on the real faxes."""

from __future__ import annotations

import io
import resource
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from reportlab.lib import pdfencrypt
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from ocr.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnreadableDocument,
    UnsupportedFormat,
)
from ocr.normalise import (
    NormaliseOptions,
    deskew,
    estimate_skew,
    header_rows,
    normalise,
    remove_streaks,
    resample,
    to_grey,
)
from ocr.pages import FaxPage, load_pages, render_cpu_limit
from tests.fax_mails import POSTSCRIPT_LOOP
from tests.ocr_corpus import FaxFixture

MAX_PAGES, MAX_PIXELS = 60, 40_000_000
A4_FAX = 297 / 215
"""Height over width of a fax page: A4 length over the 215 mm scan width."""


def load(source: Path | bytes, content_type: str | None = None) -> list[FaxPage]:
    return load_pages(source, content_type=content_type, max_pages=MAX_PAGES,
                      max_pixels=MAX_PIXELS)


def by_name(corpus: list[FaxFixture], name: str) -> FaxFixture:
    return next(f for f in corpus if f.name == name)


def first_of(corpus: list[FaxFixture], resolution: str, *, skewed: bool = False) -> FaxFixture:
    return next(f for f in corpus if f.resolution == resolution
                and (abs(f.sidecar["fax"]["skew_deg"]) > 0.8 or not skewed))


# --- TIFF as received -------------------------------------------------------------------

def test_page_counts_and_resolutions_match_the_sidecars(fax_corpus: list[FaxFixture]) -> None:
    for fixture in fax_corpus:
        pages = fixture.pages()
        assert len(pages) == fixture.sidecar["fields"]["pages"], fixture.name
        assert [p.page_no for p in pages] == list(range(1, len(pages) + 1))
        assert all(p.total_pages == len(pages) for p in pages)
        assert all(p.dpi == tuple(fixture.sidecar["fax"]["dpi"]) for p in pages), fixture.name
        assert all(p.image.mode == "1" for p in pages)


def test_bytes_and_path_give_the_same_pages(fax_corpus: list[FaxFixture]) -> None:
    fixture = fax_corpus[2]
    from_path = load(fixture.path)
    from_bytes = load(fixture.path.read_bytes(), content_type="image/tiff")
    assert [p.image.tobytes() for p in from_path] == [p.image.tobytes() for p in from_bytes]


def test_a_long_fax_is_capped_and_says_how_long_it_was(fax_corpus: list[FaxFixture]) -> None:
    fixture = next(f for f in fax_corpus if f.sidecar["fields"]["pages"] == 3)
    pages = load_pages(fixture.path, max_pages=2, max_pixels=MAX_PIXELS)
    assert [(p.page_no, p.total_pages) for p in pages] == [(1, 3), (2, 3)]


# --- normalisation ----------------------------------------------------------------------

def test_standard_resolution_comes_out_square_with_a4_proportions(
        fax_corpus: list[FaxFixture]) -> None:
    standard = first_of(fax_corpus, "standard").pages()[0]
    fine = first_of(fax_corpus, "fine").pages()[0]
    assert not standard.is_square and standard.image.height < standard.image.width
    for page in (standard, fine):
        out = normalise(page)
        assert out.image.mode == "L"
        assert out.image.height / out.image.width == pytest.approx(A4_FAX, rel=0.02)
        assert out.image.width == pytest.approx(215 / 25.4 * out.dpi, rel=0.01)
    scale_x, scale_y = normalise(standard).scale
    assert scale_y / scale_x == pytest.approx(204 / 98)  # standard pixels are ~2× as tall


@pytest.mark.parametrize("resolution", ["standard", "fine"])
def test_deskew_finds_and_removes_the_skew(fax_corpus: list[FaxFixture], resolution: str) -> None:
    fixture = first_of(fax_corpus, resolution, skewed=True)
    truth = fixture.sidecar["fax"]["skew_deg"]
    out = normalise(fixture.pages()[0])
    assert out.skew_deg == pytest.approx(truth, abs=0.15)
    left_over = estimate_skew(to_grey(out.image))
    assert abs(left_over) <= 0.3


def test_skew_estimates_on_every_page_are_close(fax_corpus: list[FaxFixture]) -> None:
    for fixture in fax_corpus:
        page = fixture.pages()[0]
        square = resample(to_grey(page.image), 1.0, page.dpi[0] / page.dpi[1])
        assert estimate_skew(square) == pytest.approx(fixture.sidecar["fax"]["skew_deg"],
                                                      abs=0.3), fixture.name


def test_the_fax_header_line_is_found_on_exactly_the_pages_that_have_one(
        fax_corpus: list[FaxFixture]) -> None:
    for fixture in fax_corpus:
        for page in fixture.pages():
            square = resample(to_grey(page.image), 170 / page.dpi[0], 170 / page.dpi[1])
            has_header = bool(fixture.sidecar["pages"][page.page_no - 1].get("fax_header"))
            assert (header_rows(square, 170) > 0) == has_header, (fixture.name, page.page_no)


def test_deskew_leaves_the_header_line_straight_and_whole(fax_corpus: list[FaxFixture]) -> None:
    for fixture in fax_corpus:
        skew = fixture.sidecar["fax"]["skew_deg"]
        if abs(skew) < 1 or not fixture.sidecar["pages"][0].get("fax_header"):
            continue
        page = fixture.pages()[0]
        square = resample(to_grey(page.image), 170 / page.dpi[0], 170 / page.dpi[1])
        rows = header_rows(square, 170)
        out = deskew(square, skew, keep_top=rows)
        assert (out[:rows] == square[:rows]).all()
        ink_under = (out[rows : rows + 30] < 128).mean()  # no turned ghost of the header
        assert ink_under <= (square[rows : rows + 30] < 128).mean() + 0.002, fixture.name


def test_despeckle_removes_isolated_specks_but_keeps_text(fax_corpus: list[FaxFixture]) -> None:
    page = by_name(fax_corpus, "fax_020").pages()[0]  # heavy speckle
    plain = normalise(page, NormaliseOptions(speck_area=0, descreen_sigma=0))
    cleaned = normalise(page, NormaliseOptions(descreen_sigma=0))
    ink_before = (to_grey(plain.image) < 128).sum()
    ink_after = (to_grey(cleaned.image) < 128).sum()
    assert 0.5 * ink_before < ink_after < ink_before


def test_scanner_streaks_are_erased_and_text_kept(fax_corpus: list[FaxFixture]) -> None:
    streaked = [f for f in fax_corpus if f.sidecar["fax"]["degrade"].get("streak")]
    assert streaked
    for fixture in streaked:
        grey = to_grey(fixture.pages()[0].image)
        coverage = (grey < 128).mean(axis=0)
        assert coverage.max() > 0.5, fixture.name
        cleaned = remove_streaks(grey, 0.5)
        assert (cleaned < 128).mean(axis=0).max() < 0.3, fixture.name
        untouched = coverage < 0.5
        assert (cleaned[:, untouched] == grey[:, untouched]).all()
    clean = next(f for f in fax_corpus if not f.sidecar["fax"]["degrade"].get("streak"))
    grey = to_grey(clean.pages()[0].image)
    assert (remove_streaks(grey, 0.5) == grey).all()


def test_debug_folder_gets_every_intermediate(fax_corpus: list[FaxFixture], tmp_path: Path) -> None:
    normalise(fax_corpus[0].pages()[0], NormaliseOptions(debug_dir=tmp_path))
    steps = sorted(p.name for p in tmp_path.iterdir())
    assert steps[0].startswith("p1-1-") and len(steps) >= 4
    for step in steps:
        with Image.open(tmp_path / step) as image:
            assert image.mode == "L" and image.width > 1000


# --- other formats ----------------------------------------------------------------------

def fax_page(corpus: list[FaxFixture]) -> FaxPage:
    return first_of(corpus, "fine").pages()[0]


def pdf_of(page: FaxPage, **canvas_args: object) -> bytes:
    """A PDF with the fax page drawn over a whole A4 page, as a fax-to-mail gateway makes."""
    buffer = io.BytesIO()
    width, height = 595.0, 595.0 * page.image.height / page.image.width * page.dpi[0] / page.dpi[1]
    pdf = canvas.Canvas(buffer, pagesize=(width, height), **canvas_args)
    pdf.drawImage(ImageReader(page.image.convert("L")), 0, 0, width, height)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_png_input_keeps_its_resolution(fax_corpus: list[FaxFixture]) -> None:
    page = fax_page(fax_corpus)
    png = io.BytesIO()
    page.image.save(png, format="PNG", dpi=page.dpi)
    (loaded,) = load(png.getvalue(), content_type="image/png")
    assert loaded.dpi == pytest.approx(page.dpi, abs=0.5)
    assert loaded.image.tobytes() == page.image.tobytes()


def test_pdf_input_is_rendered_at_a_fax_like_resolution(fax_corpus: list[FaxFixture]) -> None:
    page = fax_page(fax_corpus)
    (loaded,) = load(pdf_of(page), content_type="application/octet-stream")
    assert loaded.image.mode == "L" and loaded.dpi == (300.0, 300.0)
    assert loaded.image.height / loaded.image.width == pytest.approx(A4_FAX, rel=0.02)
    out = normalise(loaded)
    assert out.skew_deg == pytest.approx(normalise(page).skew_deg, abs=0.15)


@pytest.mark.skipif(shutil.which("gs") is None, reason="ghostscript is not installed")
def test_postscript_input_is_rasterised_by_ghostscript(fax_corpus: list[FaxFixture],
                                                       tmp_path: Path) -> None:
    page = fax_page(fax_corpus)
    (tmp_path / "in.pdf").write_bytes(pdf_of(page))
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=ps2write",
                    f"-sOutputFile={tmp_path / 'in.ps'}", str(tmp_path / "in.pdf")], check=True)
    (loaded,) = load(tmp_path / "in.ps")
    assert loaded.dpi == (300.0, 300.0)
    assert loaded.image.height / loaded.image.width == pytest.approx(A4_FAX, rel=0.02)


# --- documents that cannot be read --------------------------------------------------------

def test_a_postscript_program_that_never_ends_is_stopped_at_its_cpu_limit() -> None:
    """The kernel stops ghostscript (RLIMIT_CPU): the caller is not stuck and not killed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with pytest.raises(CorruptDocument, match="PostScript 渲染超过4秒"):
        load_pages(POSTSCRIPT_LOOP, max_pages=2, max_pixels=40_000_000, count_pages=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert render_cpu_limit(2) - 1 < used < render_cpu_limit(2) + 2



def test_zero_bytes_is_an_empty_document(tmp_path: Path) -> None:
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(EmptyDocument, match="empty"):
        load(tmp_path / "empty.tif")
    with pytest.raises(EmptyDocument):
        load(b"")


def test_unknown_bytes_are_refused() -> None:
    with pytest.raises(UnsupportedFormat):
        load(b"Dear duty officer, this is not a fax")


def test_corrupt_tiff(fax_corpus: list[FaxFixture]) -> None:
    data = fax_corpus[0].path.read_bytes()
    with pytest.raises(CorruptDocument):
        load(data[:4] + b"\xff" * 200)


def test_truncated_tiff(fax_corpus: list[FaxFixture]) -> None:
    data = fax_corpus[2].path.read_bytes()
    for cut in (len(data) // 3, len(data) - 50):
        with pytest.raises(CorruptDocument):
            load(data[:cut])


def bomb(width: int, height: int) -> bytes:
    """A tiny G4 TIFF whose header claims ``width``×``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("1", (64, 64), 1).save(buffer, format="TIFF", compression="group4")
    data = bytearray(buffer.getvalue())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            struct.pack_into("<I" if kind == 4 else "<H", data, entry + 8, value)
    return bytes(data)


def test_decompression_bomb_over_our_limit() -> None:
    with pytest.raises(DocumentTooLarge, match="more than the limit"):
        load_pages(bomb(8000, 8000), max_pages=60, max_pixels=40_000_000)


def test_decompression_bomb_over_pillows_limit() -> None:
    with pytest.raises(DocumentTooLarge, match="Pillow"):
        load_pages(bomb(60000, 60000), max_pages=60, max_pixels=10**12)


def test_encrypted_pdf(fax_corpus: list[FaxFixture]) -> None:
    secret = pdfencrypt.StandardEncryption("secret", canPrint=0)
    with pytest.raises(EncryptedDocument, match="password"):
        load(pdf_of(fax_page(fax_corpus), encrypt=secret))


def empty_pdf() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_without_pages() -> None:
    with pytest.raises(EmptyDocument, match="no pages"):
        load(empty_pdf())


def test_damaged_pdf(fax_corpus: list[FaxFixture]) -> None:
    data = pdf_of(fax_page(fax_corpus))
    for cut in (300, len(data) // 2):
        with pytest.raises(CorruptDocument):
            load(data[:cut])


def test_every_refusal_is_an_unreadable_document_with_a_remedy() -> None:
    for error in (EmptyDocument, CorruptDocument, UnsupportedFormat, EncryptedDocument,
                  DocumentTooLarge):
        assert issubclass(error, UnreadableDocument) and error.remedy
