"""Document in, text map out: ingest, OCR for pages without a text layer, layout, in page order.

Pages are produced one at a time in the PyMuPDF thread; OCR runs in its own worker pool and the
layout model in a worker thread, so the event loop never waits on CPU work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.documents.ingest import Document, IngestLimits, open_document, parse_page_selection
from app.documents.pdf_thread import run_in_pdf_thread
from app.documents.textmap import DocumentMap
from app.pages import Page, Region, Word
from app.regions.base import LayoutBackend

OcrFunction = Callable[[Page], Awaitable[list[Word]]]
PageHook = Callable[[Page, list[Region]], Awaitable[None] | None]


@dataclass(frozen=True)
class AnalyzeOptions:
    pages: str | None = None
    """Page selection such as ``1-3,7``; all pages when empty."""
    password: str | None = None
    ocr: bool = True
    ocr_pictures: bool = True
    """Also OCR pictures on born-digital pages (pasted letterheads, stamps); off trades that text
    for speed (a page's OCR of its logos costs far more than reading its text layer)."""
    layout: bool = True


@dataclass
class Analysis:
    map: DocumentMap
    document_type: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    ocr_skipped_pages: list[int] = field(default_factory=list)
    """Pages without a text layer that got no OCR (OCR off or not installed)."""


async def analyze_document(
    data: bytes,
    options: AnalyzeOptions,
    *,
    limits: IngestLimits,
    layout: LayoutBackend | None,
    ocr: OcrFunction | None,
    layout_batch: int = 4,
    on_page: PageHook | None = None,
    on_open: Callable[[int], None] | None = None,
    on_ocr: Callable[[int], None] | None = None,
) -> Analysis:
    """``on_open`` learns how many pages were selected; ``on_ocr`` the number of a page about to be
    OCRed (the slow step a progress display names); ``on_page`` sees each page with its image
    and regions before the image is let go (when it returns an awaitable, the next page waits for
    it: that is how a consumer holds the pipeline back)."""
    clock = {"ingest": 0.0, "ocr": 0.0, "layout": 0.0}
    started = time.perf_counter()
    document: Document = await run_in_pdf_thread(open_document, data, limits, options.password)
    clock["ingest"] += time.perf_counter() - started
    try:
        selection = parse_page_selection(options.pages, document.page_count)
        if on_open is not None:
            on_open(len(selection))
        active_layout = layout if options.layout else None
        pages = document.pages(selection, native_layout=active_layout is not None)
        analysis = Analysis(DocumentMap(page_count=document.page_count), document.type)
        batch: list[Page] = []
        while True:
            started = time.perf_counter()
            page = await run_in_pdf_thread(next, pages, None)
            clock["ingest"] += time.perf_counter() - started
            if page is None:
                break
            if page.kind != "born_digital" or (page.pictures and options.ocr_pictures):
                if options.ocr and ocr is not None:
                    if on_ocr is not None:
                        on_ocr(page.number)
                    started = time.perf_counter()
                    if page.kind == "born_digital":
                        page.words += await picture_words(page, ocr)
                    else:
                        page.words = await ocr(page)
                    clock["ocr"] += time.perf_counter() - started
                elif page.kind != "born_digital":
                    analysis.ocr_skipped_pages.append(page.number)
            batch.append(page)
            if len(batch) >= layout_batch:
                clock["layout"] += await _flush(batch, analysis.map, active_layout, on_page)
        clock["layout"] += await _flush(batch, analysis.map, active_layout, on_page)
    finally:
        await run_in_pdf_thread(document.close)
    analysis.timings_ms = {k: round(v * 1000, 1) for k, v in clock.items()}
    return analysis


MIN_PICTURE_PIXELS = 24


async def picture_words(page: Page, ocr: OcrFunction) -> list[Word]:
    """OCR the pictures on a born-digital page and place their words on the page. Words where the
    text layer already has text (text printed over an image) are left out."""
    image = page.image
    width, height = image.size
    found: list[Word] = []
    next_line = max((w.line for w in page.words), default=-1) + 1
    for x0, y0, x1, y1 in page.pictures:
        crop_box = (int(x0 * width), int(y0 * height), int(x1 * width) + 1, int(y1 * height) + 1)
        crop = image.crop(crop_box)
        if min(crop.size) < MIN_PICTURE_PIXELS:
            continue
        piece = Page(
            number=page.number, width=crop.width, height=crop.height, kind="image", image=crop, dpi=page.dpi
        )
        sx, sy = crop.width / width, crop.height / height
        ox, oy = crop_box[0] / width, crop_box[1] / height
        lines = 0
        for word in await ocr(piece):
            a, b, c, d = word.bbox
            box = (ox + a * sx, oy + b * sy, ox + c * sx, oy + d * sy)
            if _covered_by_text(box, page.words):
                continue
            found.append(word._replace(bbox=box, line=next_line + word.line))
            lines = max(lines, word.line + 1)
        next_line += lines
    return found


def _covered_by_text(box: tuple[float, float, float, float], words: list[Word]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(
        w.source == "pdf" and w.bbox[0] <= cx <= w.bbox[2] and w.bbox[1] <= cy <= w.bbox[3] for w in words
    )


async def _flush(
    batch: list[Page], target: DocumentMap, layout: LayoutBackend | None, on_page: PageHook | None
) -> float:
    """Lay out a batch of pages, add them to the map, and let go of their images."""
    if not batch:
        return 0.0
    started = time.perf_counter()
    regions = await asyncio.to_thread(layout.detect, batch) if layout else [[] for _ in batch]
    for page, page_regions in zip(batch, regions, strict=True):
        target.add(page, page_regions)
        if on_page is not None and (waiting := on_page(page, page_regions)) is not None:
            await waiting
    batch.clear()
    return time.perf_counter() - started
