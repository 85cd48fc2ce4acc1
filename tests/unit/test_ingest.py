"""Ingest: types by content, pages with words and boxes, scanned-page detection, every refusal."""

from __future__ import annotations

import gc
import io
import weakref

import pytest
from PIL import Image

from app.documents.detect import detect_type
from app.documents.ingest import IngestLimits, open_document, parse_page_selection
from app.documents.models import Page
from app.lib.problems import Problem
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
    with pytest.raises(Problem) as caught, open_document(data, limits, password) as document:
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
    with pytest.raises(Problem) as caught:
        parse_page_selection(text, 8)
    assert caught.value.kind.slug == "invalid-page-selection"
