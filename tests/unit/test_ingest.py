"""Ingest: types by content, pages with words and boxes, scanned-page detection, every refusal."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFile, ImageOps

from app.documents.detect import detect_type
from app.documents.ingest import IngestLimits, open_document, parse_page_selection
from app.lib.errors import DocumentError
from app.pages import Page
from tests.documents import (
    ZERO_PAGE_PDF,
    encrypted_pdf,
    garbage_text_pdf,
    invoice_pdf,
    multipage_tiff,
    pdf_with_xml_attachment,
    photo_with_exif_orientation,
    png_header_only,
    rasterise,
    scanned_pdf,
    scanned_pdf_with_invisible_text,
)

LIMITS = IngestLimits()


def pages_of(data: bytes, limits: IngestLimits = LIMITS, **kwargs: object) -> list[Page]:
    with open_document(data, limits, **kwargs) as document:  # type: ignore[arg-type]
        return list(document.pages())


def refusal(data: bytes, limits: IngestLimits = LIMITS, password: str | None = None) -> str:
    with pytest.raises(DocumentError) as caught, open_document(data, limits, password) as document:
        list(document.pages())
    return caught.value.kind.slug


def test_text_layer_words_are_exact_and_where_they_were_drawn() -> None:
    pdf, drawn = invoice_pdf()
    (page,) = pages_of(pdf)
    assert page.kind == "born_digital" and (page.width, page.height) == (595, 842)
    assert [w.text for w in page.words] == [d.text for d in drawn]
    for word, expected in zip(page.words, drawn, strict=True):
        assert all(abs(a - b) <= 0.02 for a, b in zip(word.bbox, expected.bbox, strict=True)), (
            word,
            expected,
        )
        assert word.source == "pdf" and word.confidence == 1.0
    # Lines follow reading order: the words of one printed line share a line number.
    by_line: dict[int, list[str]] = {}
    for word in page.words:
        by_line.setdefault(word.line, []).append(word.text)
    assert " ".join(by_line[2]) == "Invoice No. INV-2024-0042"


def test_rendering_respects_dpi_and_the_long_side_cap() -> None:
    pdf, _ = invoice_pdf()
    (page,) = pages_of(pdf)
    assert page.image.mode == "RGB" and page.image.size == (1653, 2339)  # A4 at 200 DPI
    (capped,) = pages_of(pdf, IngestLimits(dpi=300, max_long_side=1000))
    assert max(capped.image.size) == 1000 and capped.dpi is not None and capped.dpi < 300


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (rasterise, "png"),
        (lambda pdf: rasterise(pdf, fmt="JPEG"), "jpeg"),
        (lambda pdf: rasterise(pdf, fmt="WEBP"), "webp"),
        (multipage_tiff, "tiff"),
        (lambda pdf: pdf, "pdf"),
    ],
)
def test_types_are_detected_by_content(make: object, kind: str) -> None:
    pdf, _ = invoice_pdf()
    data = make(pdf)  # type: ignore[operator]
    assert detect_type(data[:1024]) == kind
    with open_document(data, LIMITS) as document:
        assert document.type == kind


def test_tiff_pages_and_selection() -> None:
    pdf, _ = invoice_pdf()
    pages = pages_of(multipage_tiff(pdf, pages=3))
    assert [p.number for p in pages] == [1, 2, 3] and all(p.kind == "image" for p in pages)
    with open_document(multipage_tiff(pdf, pages=3), LIMITS) as document:
        assert [p.number for p in document.pages([1, 3])] == [1, 3]


def test_exif_orientation_is_applied() -> None:
    pdf, _ = invoice_pdf()
    (page,) = pages_of(photo_with_exif_orientation(pdf))
    assert page.image.height > page.image.width  # stored landscape, shown portrait
    # The page's top (the letterhead) is dark ink on the top part, as on the upright original.
    upright = Image.open(io.BytesIO(rasterise(pdf, 100))).convert("L").resize(page.image.size)
    shown = page.image.convert("L")
    top = (0, 0, page.image.width, page.image.height // 8)
    assert abs(_ink(shown.crop(top)) - _ink(upright.crop(top))) < 0.02


def _ink(image: Image.Image) -> float:
    histogram = image.histogram()
    return sum(histogram[:128]) / max(1, sum(histogram))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (scanned_pdf, "scanned"),
        (scanned_pdf_with_invisible_text, "scanned"),
        (lambda _: garbage_text_pdf(), "scanned"),
    ],
)
def test_pages_without_a_usable_text_layer_are_images(make: object, kind: str) -> None:
    pdf, _ = invoice_pdf()
    (page,) = pages_of(make(pdf))  # type: ignore[operator]
    assert page.kind == kind and page.words == []


def test_xml_attachments_are_never_read() -> None:
    pdf, drawn = invoice_pdf()
    (page,) = pages_of(pdf_with_xml_attachment(pdf, b"<Invoice><Total>HIDDEN-XML-TOTAL</Total></Invoice>"))
    text = " ".join(w.text for w in page.words)
    assert "HIDDEN" not in text and "Invoice" in text
    assert [w.text for w in page.words] == [d.text for d in drawn]


def test_pages_are_produced_lazily_and_let_go() -> None:
    pdf, _ = invoice_pdf(pages=5)
    with open_document(pdf, LIMITS) as document:
        pages = document.pages()
        first = next(pages)
        image_ref = weakref.ref(first.image)
        del first
        gc.collect()
        assert image_ref() is None  # the generator keeps no page it has handed out
        assert [p.number for p in pages] == [2, 3, 4, 5]


def test_encrypted_pdf() -> None:
    pdf, drawn = invoice_pdf()
    locked = encrypted_pdf(pdf, "s3cret")
    assert refusal(locked) == "document-encrypted"
    assert refusal(locked, password="wrong") == "document-password-incorrect"
    (page,) = pages_of(locked, password="s3cret")
    assert [w.text for w in page.words] == [d.text for d in drawn]


def test_refusals() -> None:
    pdf, _ = invoice_pdf(pages=3)
    png = rasterise(pdf)
    assert refusal(pdf, IngestLimits(max_bytes=len(pdf) - 1)) == "document-too-large"
    assert refusal(pdf, IngestLimits(max_pages=2)) == "too-many-pages"
    assert refusal(png, IngestLimits(max_pixels=1000 * 1000)) == "image-too-large"
    assert refusal(png_header_only(100_000, 100_000)) == "image-too-large"  # a bomb's header, never decoded
    assert refusal(ZERO_PAGE_PDF) == "document-empty"
    assert refusal(pdf[:400]) == "document-corrupt"
    assert refusal(b"%PDF-1.7\n" + b"garbage" * 100) == "document-corrupt"
    assert refusal(png[: len(png) // 2]) == "document-corrupt"
    assert refusal(b"PK\x03\x04 a zip file, e.g. a .docx") == "unsupported-document-type"
    assert refusal(b"Invoice number: 42\n") == "unsupported-document-type"


def test_pillow_bomb_guard_is_never_disabled() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None


def test_a_bomb_is_refused_with_the_service_limit_not_pillows() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    pillow_limit = str(2 * Image.MAX_IMAGE_PIXELS)
    bomb = png_header_only(100_000, 100_000)  # Pillow itself refuses to open this one
    with pytest.raises(DocumentError) as caught:
        open_document(bomb, IngestLimits(max_pixels=1_234_567))
    assert caught.value.kind.slug == "image-too-large"
    assert "1234567" in caught.value.detail and pillow_limit not in caught.value.detail
    assert caught.value.extra == {"limit_pixels": 1_234_567}
    # A limit set above Pillow's hard refusal: the message quotes the limit actually in force.
    with pytest.raises(DocumentError) as caught:
        open_document(bomb, IngestLimits(max_pixels=10**12))
    assert pillow_limit in caught.value.detail and caught.value.extra == {"limit_pixels": int(pillow_limit)}


# A 56 MP photo of a blank page (under the 60 MP limit), with a black mark to follow through ingest.
BIG = (8000, 7000)
MARK = (0.25, 0.2, 0.5, 0.6)


def _marked(mode: str, size: tuple[int, int], background: object, ink: object) -> Image.Image:
    image = Image.new(mode, size, background)  # type: ignore[arg-type]
    w, h = size
    box = (round(MARK[0] * w), round(MARK[1] * h), round(MARK[2] * w) - 1, round(MARK[3] * h) - 1)
    ImageDraw.Draw(image).rectangle(box, fill=ink)  # type: ignore[arg-type]
    return image


def _mark_box(image: Image.Image) -> tuple[float, float, float, float]:
    """Normalised box of the dark pixels."""
    dark = image.convert("L").point(lambda v: 255 if v < 128 else 0)
    box = dark.getbbox()
    assert box is not None
    w, h = image.size
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


def _close(a: tuple[float, ...], b: tuple[float, ...], tolerance: float = 0.005) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "blank.jpg"
    _marked("RGB", BIG, "white", "black").save(path, "JPEG", quality=85)
    return path


def test_a_large_jpeg_is_decoded_at_reduced_scale_straight_to_the_page_size(
    big_jpeg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        if self.tile:  # about to decode
            decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    (page,) = pages_of(big_jpeg.read_bytes())
    assert page.image.mode == "RGB" and page.image.size == (3500, 3062)  # long side capped
    assert (page.width, page.height) == page.image.size
    # libjpeg decoded at 1/2 scale: never the 8000x7000 frame, never more than twice the page per side.
    assert decoded == [(4000, 3500)]
    assert _close(_mark_box(page.image), MARK)  # normalised positions survive the downscale


# Peak memory of ingesting a file, measured in a fresh process: its resident-set high-water mark
# (VmHWM) after ingest minus the one after imports and reading the file. Not ru_maxrss: Linux carries
# the spawning process's peak into it across exec, and pytest's own peak would hide ours.
_PEAK_RSS = """
import re, sys
from pathlib import Path
from app.documents.ingest import IngestLimits, open_document

def peak() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024

data = open(sys.argv[1], "rb").read()
before = peak()
with open_document(data, IngestLimits()) as document:
    for page in document.pages():
        page.image.tobytes()  # what the OCR pool sends to its worker
print(peak() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_ingesting_a_large_jpeg_costs_less_than_one_full_resolution_frame(big_jpeg: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(big_jpeg)], cwd=root, capture_output=True, text=True, check=True
    )
    full_frame = BIG[0] * BIG[1] * 4  # Pillow keeps RGB in 4 bytes a pixel: 224 MB
    assert int(run.stdout) < full_frame


@pytest.mark.parametrize(
    ("fmt", "make"),
    [
        ("PNG", lambda size: _marked("RGB", size, "white", "black")),
        ("PNG", lambda size: _marked("L", size, 255, 0)),
        ("PNG", lambda size: _marked("1", size, 1, 0)),
        ("PNG", lambda size: _marked("I;16", size, 65535, 0)),
        ("PNG", lambda size: _marked("RGBA", size, (0, 0, 0, 0), (0, 0, 0, 255))),  # transparent: paper
        ("PNG", lambda size: _marked("LA", size, (0, 0), (0, 255))),
        ("PNG", lambda size: _marked("RGB", size, "white", "black").convert("P")),
        ("TIFF", lambda size: _marked("CMYK", size, (0, 0, 0, 0), (0, 0, 0, 255))),
        ("WEBP", lambda size: _marked("RGB", size, "white", "black")),
    ],
)
def test_large_images_of_every_mode_become_white_rgb_pages_at_the_cap(
    fmt: str, make: Callable[[tuple[int, int]], Image.Image]
) -> None:
    out = io.BytesIO()
    make((2600, 1900)).save(out, fmt)
    (page,) = pages_of(out.getvalue(), IngestLimits(max_long_side=600))
    assert page.image.mode == "RGB" and page.image.size == (600, 438)
    assert page.image.getpixel((5, 5)) == (255, 255, 255)
    assert _close(_mark_box(page.image), MARK, tolerance=0.01)


def test_exif_orientation_is_applied_to_a_downscaled_photo() -> None:
    stored = _marked("RGB", (4000, 3000), "white", "black")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = io.BytesIO()
    stored.save(out, "JPEG", exif=exif)
    (page,) = pages_of(out.getvalue(), IngestLimits(max_long_side=1000))
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue())))
    assert page.image.size == (750, 1000)
    assert _close(_mark_box(page.image), _mark_box(upright), tolerance=0.01)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, [1, 2, 3, 4, 5, 6, 7, 8]),
        ("", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("1-3,7", [1, 2, 3, 7]),
        (" 7 , 2-3, 3 ", [2, 3, 7]),
        ("8", [8]),
    ],
)
def test_page_selection(text: str | None, expected: list[int]) -> None:
    assert parse_page_selection(text, 8) == expected


@pytest.mark.parametrize("text", ["0", "9", "3-2", "1-9", "a", "1,,2", "-3", "2-"])
def test_bad_page_selection(text: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_page_selection(text, 8)
    assert caught.value.kind.slug == "invalid-page-selection"
