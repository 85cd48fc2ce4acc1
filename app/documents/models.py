"""What ingest produces and the evidence layer is built from: pages, words and layout regions.

Boxes are normalised to the page: ``(x0, y0, x1, y1)`` in 0..1, origin top-left, so a box means the
same thing on the PDF page, on its rendering at any DPI and in the API's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

BBox = tuple[float, float, float, float]
WordSource = Literal["pdf", "ocr"]
PageKind = Literal["born_digital", "scanned", "image"]


@dataclass(frozen=True, slots=True)
class Word:
    """One word with its box. ``line`` numbers lines in reading order within the page; words of a
    line share it, and follow each other left to right."""

    text: str
    bbox: BBox
    confidence: float
    source: WordSource
    line: int
    block: int = 0


@dataclass(frozen=True, slots=True)
class Region:
    """A layout region: ``label`` from PP-DocLayoutV3's vocabulary, ``order`` its reading-order rank."""

    label: str
    bbox: BBox
    score: float
    order: int


@dataclass(slots=True)
class Page:
    """One ingested page. ``width``/``height`` are in PDF points for PDFs and in pixels for images."""

    number: int
    """1-based page number in the document (not in the selection)."""
    width: float
    height: float
    kind: PageKind
    image: Image.Image
    """The page rendered (or decoded) as RGB, orientation applied."""
    dpi: float | None
    """Pixels per inch of ``image`` (None for an image file that does not say)."""
    words: list[Word] = field(default_factory=list)
    """The PDF text layer for born-digital pages; OCR fills it for the others."""
    native_regions: list[Region] | None = None
    """Layout read from the PDF's own structure (born-digital pages, when asked for at ingest)."""


def clamp_box(x0: float, y0: float, x1: float, y1: float) -> BBox:
    """Normalised box clipped to the page, with x0 <= x1 and y0 <= y1."""
    lo_x, hi_x = sorted((min(max(x0, 0.0), 1.0), min(max(x1, 0.0), 1.0)))
    lo_y, hi_y = sorted((min(max(y0, 0.0), 1.0), min(max(y1, 0.0), 1.0)))
    return (lo_x, lo_y, hi_x, hi_y)


def union_box(boxes: list[BBox]) -> BBox:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
