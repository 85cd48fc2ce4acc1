"""The analyze pipeline around OCR: which pages get it, and how picture text joins the text layer."""

from __future__ import annotations

from app.documents.analyze import AnalyzeOptions, analyze_document, picture_words
from app.documents.ingest import IngestLimits, open_document
from app.pages import Page, Word
from app.regions.native import AutoLayout
from tests.documents import invoice_pdf, pdf_with_text_picture, rasterise


class FakeOcr:
    """Returns one word filling the middle of whatever image it is given, and counts calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    async def __call__(self, page: Page) -> list[Word]:
        self.calls.append(page.image.size)
        return [Word("PICTURED", (0.25, 0.25, 0.75, 0.75), 0.9, "ocr", 0)]


async def test_pictures_on_born_digital_pages_are_ocred_into_place() -> None:
    with open_document(pdf_with_text_picture(), IngestLimits(dpi=100)) as document:
        (page,) = list(document.pages())
    assert page.kind == "born_digital" and len(page.pictures) == 1
    x0, y0, x1, y1 = page.pictures[0]
    assert abs(x0 - 60 / 595) < 0.01 and abs(y1 - 760 / 842) < 0.01
    ocr = FakeOcr()
    words = await picture_words(page, ocr)
    assert len(ocr.calls) == 1 and ocr.calls[0][0] < page.image.width  # only the picture was read
    (word,) = words
    # The word sits in the middle of the picture, in page coordinates, on a line after the text layer.
    assert abs((word.bbox[0] + word.bbox[2]) / 2 - (x0 + x1) / 2) < 0.01
    assert abs((word.bbox[1] + word.bbox[3]) / 2 - (y0 + y1) / 2) < 0.01
    assert word.line > max(w.line for w in page.words)


async def test_text_printed_over_a_picture_is_not_read_twice() -> None:
    with open_document(pdf_with_text_picture(), IngestLimits(dpi=100)) as document:
        (page,) = list(document.pages())
    cx, cy = (page.pictures[0][0] + page.pictures[0][2]) / 2, (page.pictures[0][1] + page.pictures[0][3]) / 2
    page.words.append(Word("overprint", (cx - 0.05, cy - 0.01, cx + 0.05, cy + 0.01), 1.0, "pdf", 99))
    assert await picture_words(page, FakeOcr()) == []


async def test_which_pages_get_ocr() -> None:
    pdf, _ = invoice_pdf()
    ocr = FakeOcr()
    plain = await analyze_document(
        pdf, AnalyzeOptions(), limits=IngestLimits(dpi=72), layout=AutoLayout(None), ocr=ocr
    )
    assert ocr.calls == [] and plain.map.pages[0].kind == "born_digital"  # no pictures, no OCR
    scan = await analyze_document(
        rasterise(pdf, 72), AnalyzeOptions(), limits=IngestLimits(), layout=None, ocr=ocr
    )
    assert len(ocr.calls) == 1 and [w.text for w in scan.map.pages[0].words] == ["PICTURED"]
    skipped = await analyze_document(
        rasterise(pdf, 72), AnalyzeOptions(ocr=False), limits=IngestLimits(), layout=None, ocr=ocr
    )
    assert skipped.ocr_skipped_pages == [1] and len(ocr.calls) == 1
    no_engine = await analyze_document(
        rasterise(pdf, 72), AnalyzeOptions(), limits=IngestLimits(), layout=None, ocr=None
    )
    assert no_engine.ocr_skipped_pages == [1]


async def test_picture_ocr_can_be_turned_off() -> None:
    ocr = FakeOcr()
    analysis = await analyze_document(
        pdf_with_text_picture(),
        AnalyzeOptions(ocr_pictures=False),
        limits=IngestLimits(dpi=100),
        layout=None,
        ocr=ocr,
    )
    assert ocr.calls == [] and "PICTURED" not in [w.text for w in analysis.map.pages[0].words]
    analysis = await analyze_document(
        pdf_with_text_picture(), AnalyzeOptions(), limits=IngestLimits(dpi=100), layout=None, ocr=ocr
    )
    assert len(ocr.calls) == 1 and "PICTURED" in [w.text for w in analysis.map.pages[0].words]
