"""PP-OCRv6 on German, French and Spanish pages drawn with PyMuPDF: accented words, amounts and
dates must come back exactly, as words placed where they were drawn, on a clean 200 DPI rendering
and on a damaged one (150 DPI, noise, JPEG). Real OCR through the pool's threads: marked slow."""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass

import numpy as np
import pymupdf
import pytest
from PIL import Image

from app.ocr.engine import lines_to_words
from app.ocr.pool import OcrPool
from app.ocr.ppocr import PpOcrEngine
from app.pages import BBox, Page, Word

pytest.importorskip("rapidocr")

pytestmark = pytest.mark.slow

PAGE_W, PAGE_H = 595.0, 842.0  # A4, points
FONT = "helv"
DPI = 200
GAP_CM = 2.0
POINTS_PER_CM = 72 / 2.54


@dataclass(frozen=True)
class Sheet:
    lines: list[tuple[float, float, str, float]]
    """(x, baseline y, text, font size) in points."""
    accented: list[str]
    """Words (or word sequences) with accents, to be read exactly."""
    figures: list[str]
    """Amounts and dates, to be read exactly even from the damaged scan."""


SHEETS: dict[str, Sheet] = {
    "de": Sheet(
        lines=[
            (60, 80, "Müller GmbH", 16),
            (60, 110, "Große Straße 12, 10115 Berlin", 11),
            (60, 150, "Käufer Schröder & Söhne KG", 11),
            (60, 175, "Rechnungsdatum 29.12.2017", 11),
            (60, 200, "Währung EUR", 11),
            (60, 240, "Nettobetrag 1.234,56", 11),
            (60, 262, "Umsatzsteuer 5,47", 9),
        ],
        accented=["Müller GmbH", "Straße", "Käufer", "Schröder", "Söhne", "Währung"],
        figures=["29.12.2017", "1.234,56", "5,47"],
    ),
    "fr": Sheet(
        lines=[
            (60, 80, "Société Générale", 16),
            (60, 120, "Ticket reçu le 29/12/2017 20:17", 11),
            (60, 150, "Montant payé 41.50", 11),
            (60, 175, "Référence client 8842", 9),
        ],
        accented=["Société Générale", "reçu", "payé", "Référence"],
        figures=["29/12/2017 20:17", "41.50"],
    ),
    "es": Sheet(
        lines=[
            (60, 80, "Fecha de emisión 29/12/2017", 11),
            (60, 105, "Año fiscal 2017", 11),
            (60, 130, "Importe total 1.234,56", 11),
            (60, 155, "IVA incluido 5,47", 9),
        ],
        accented=["Fecha de emisión", "Año"],
        figures=["29/12/2017", "1.234,56", "5,47"],
    ),
}

# A label and its amount on one baseline, 2 cm apart (the German sheet, below its other lines).
GAP_LINE = (60.0, 320.0, "TOTAL", "12,50", 12.0)


@dataclass(frozen=True)
class Drawn:
    image: Image.Image
    boxes: dict[str, BBox]
    """Where each text to be read was drawn, normalised, from PyMuPDF's search of the page."""


def _normalised(rect: pymupdf.Rect) -> BBox:
    return (rect.x0 / PAGE_W, rect.y0 / PAGE_H, rect.x1 / PAGE_W, rect.y1 / PAGE_H)


def draw(lang: str) -> Drawn:
    sheet = SHEETS[lang]
    doc = pymupdf.open()
    try:
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        for x, y, text, size in sheet.lines:
            page.insert_text((x, y), text, fontname=FONT, fontsize=size)
        wanted = sheet.accented + sheet.figures
        if lang == "de":
            x, y, label, amount, size = GAP_LINE
            page.insert_text((x, y), label, fontname=FONT, fontsize=size)
            label_width = pymupdf.get_text_length(label, fontname=FONT, fontsize=size)
            page.insert_text(
                (x + label_width + GAP_CM * POINTS_PER_CM, y), amount, fontname=FONT, fontsize=size
            )
            wanted += [label, amount]
        boxes = {}
        for text in wanted:
            rects = page.search_for(text)
            assert len(rects) == 1, (text, rects)  # each text is drawn once on its sheet
            boxes[text] = _normalised(rects[0])
        pix = page.get_pixmap(dpi=DPI)
        image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    finally:
        doc.close()
    return Drawn(image, boxes)


def damage(image: Image.Image, seed: int) -> Image.Image:
    """A poor scan of the page: 150 DPI, gaussian noise (sigma 25 of 255), JPEG at quality 50."""
    small = image.resize(
        (round(image.width * 150 / DPI), round(image.height * 150 / DPI)), Image.Resampling.BILINEAR
    )
    pixels = np.asarray(small).astype(np.float32)
    pixels += np.random.default_rng(seed).normal(0.0, 25.0, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=50)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


@dataclass(frozen=True)
class Reading:
    drawn: Drawn
    words: list[Word]
    seconds: float


@pytest.fixture(scope="module")
def readings() -> dict[tuple[str, str], Reading]:
    """Each sheet, clean and damaged, read once through one thread pool (models load on the first)."""

    async def read_all() -> dict[tuple[str, str], Reading]:
        found: dict[tuple[str, str], Reading] = {}
        async with OcrPool(PpOcrEngine(), executor="thread") as pool:
            for seed, lang in enumerate(SHEETS):
                drawn = draw(lang)
                for state, image in (("clean", drawn.image), ("damaged", damage(drawn.image, seed))):
                    page = Page(number=1, width=PAGE_W, height=PAGE_H, kind="scanned", image=image, dpi=None)
                    started = time.perf_counter()
                    words = await pool.words(page)
                    found[lang, state] = Reading(drawn, words, time.perf_counter() - started)
        return found

    return asyncio.run(read_all())


def _iou(a: BBox, b: BBox) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _sequences(words: list[Word], text: str) -> list[list[Word]]:
    """Runs of consecutive words of one line that read exactly ``text``'s words."""
    tokens = text.split()
    runs = [words[i : i + len(tokens)] for i in range(len(words) - len(tokens) + 1)]
    return [run for run in runs if [w.text for w in run] == tokens and len({w.line for w in run}) == 1]


def _read_near(words: list[Word], box: BBox) -> list[str]:
    """What OCR read where ``box`` is, for the failure message."""
    return [w.text for w in words if _iou(w.bbox, box) > 0]


def _union(run: list[Word]) -> BBox:
    return (
        min(w.bbox[0] for w in run),
        min(w.bbox[1] for w in run),
        max(w.bbox[2] for w in run),
        max(w.bbox[3] for w in run),
    )


def assert_read_where_drawn(reading: Reading, text: str) -> None:
    drawn = reading.drawn.boxes[text]
    runs = _sequences(reading.words, text)
    assert runs, f"{text!r} not read exactly; read there: {_read_near(reading.words, drawn)}"
    best = max(_iou(_union(run), drawn) for run in runs)
    assert best >= 0.5, (text, drawn, [_union(run) for run in runs])


@pytest.mark.parametrize("lang", list(SHEETS))
def test_accented_words_amounts_and_dates_are_read_exactly_where_drawn(
    lang: str, readings: dict[tuple[str, str], Reading]
) -> None:
    reading = readings[lang, "clean"]
    print(f"{lang} clean: {reading.seconds:.2f} s, {' '.join(w.text for w in reading.words)}")  # with -s
    for text in SHEETS[lang].accented + SHEETS[lang].figures:
        assert_read_where_drawn(reading, text)
    assert all(0.0 < w.confidence <= 1.0 for w in reading.words)


@pytest.mark.parametrize("lang", list(SHEETS))
def test_a_damaged_scan_still_gives_amounts_and_dates_exactly(
    lang: str, readings: dict[tuple[str, str], Reading]
) -> None:
    reading = readings[lang, "damaged"]
    print(f"{lang} damaged: {reading.seconds:.2f} s, {' '.join(w.text for w in reading.words)}")
    for text in SHEETS[lang].figures:
        assert_read_where_drawn(reading, text)


@pytest.mark.parametrize("state", ["clean", "damaged"])
def test_a_label_and_its_amount_2_cm_apart_are_separate_words_where_drawn(
    state: str, readings: dict[tuple[str, str], Reading]
) -> None:
    reading = readings["de", state]
    _, _, label, amount, size = GAP_LINE
    margin_x, margin_y = size / 4 / PAGE_W, size / 4 / PAGE_H  # a quarter of the font size
    found = {}
    for text in (label, amount):
        drawn = reading.drawn.boxes[text]
        matches = [w for w in reading.words if w.text == text]
        assert len(matches) == 1, f"{text!r} read as {_read_near(reading.words, drawn)}"
        (word,) = matches
        x0, y0, x1, y1 = word.bbox
        assert drawn[0] - margin_x <= x0 < x1 <= drawn[2] + margin_x, (text, word.bbox, drawn)
        assert drawn[1] - margin_y <= y0 < y1 <= drawn[3] + margin_y, (text, word.bbox, drawn)
        found[text] = word
    assert found[label].bbox[2] < found[amount].bbox[0]  # side by side, not overlapping


def test_an_upside_down_page_is_read_in_its_own_order_with_boxes_on_the_image_given() -> None:
    """The orientation classifier runs only for a page that reads badly upright; a page it finds
    upside down is read turned (rows and words in reading order) with boxes on the image as sent."""
    drawn = draw("de")
    turned = Drawn(
        drawn.image.rotate(180),
        {text: (1 - b[2], 1 - b[3], 1 - b[0], 1 - b[1]) for text, b in drawn.boxes.items()},
    )
    words = lines_to_words(PpOcrEngine().recognize(turned.image))
    reading = Reading(turned, words, 0.0)
    sheet = SHEETS["de"]
    for text in sheet.accented + sheet.figures:
        assert_read_where_drawn(reading, text)
    assert [w.text for w in words[:2]] == ["Müller", "GmbH"]  # the top line of the page comes first
    assert words[0].bbox[0] > words[1].bbox[0]  # and is right of "GmbH" on the image as sent
