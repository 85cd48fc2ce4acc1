"""What ingest produces and the evidence layer is built from: pages, words and layout regions.

Boxes are normalised to the page: ``(x0, y0, x1, y1)`` in 0..1, origin top-left, so a box means the
same thing on the PDF page, on its rendering at any DPI and in the API's output.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from PIL import Image

BBox = tuple[float, float, float, float]
WordSource = Literal["pdf", "ocr"]
PageKind = Literal["born_digital", "scanned", "image"]


class Word(NamedTuple):
    """One word with its box. ``line`` numbers lines in reading order within the page; words of a
    line share it, and follow each other left to right. (A tuple: pages have thousands.)"""

    text: str
    bbox: BBox
    confidence: float
    source: WordSource
    line: int
    block: int = 0


def visual_rows(words: list[Word], height: float) -> list[list[Word]]:
    """Words grouped into rows as a reader sees them (centres within half of ``height``, a line's
    height), each left to right. A PDF's label and value are often separate text blocks, and OCR
    may join a table's header cells into one line: rows, not ``line`` numbers, say what is beside
    what."""
    rows: list[list[Word]] = []
    centre_of_row = 0.0
    for word in sorted(words, key=lambda w: (w.bbox[1] + w.bbox[3]) / 2):
        centre = (word.bbox[1] + word.bbox[3]) / 2
        if rows and abs(centre - centre_of_row) <= height / 2:
            rows[-1].append(word)
        else:
            rows.append([word])
            centre_of_row = centre
    return [sorted(row, key=lambda w: w.bbox[0]) for row in rows]


class Region(NamedTuple):
    """A layout region: ``label`` from PP-DocLayoutV3's vocabulary, ``order`` its reading-order rank."""

    label: str
    bbox: BBox
    score: float
    order: int


class Page:
    """One ingested page. ``width``/``height`` are in PDF points for PDFs and in pixels for images.

    A PDF page keeps MuPDF's rendering and becomes a PIL image only when something asks for
    ``image`` (OCR, a layout model, an overlay): the conversion costs more than the rendering, and
    born-digital pages often need neither.
    """

    __slots__ = (
        "_image",
        "_pixmap",
        "dpi",
        "height",
        "kind",
        "native_regions",
        "number",
        "pictures",
        "width",
        "words",
    )

    def __init__(
        self,
        *,
        number: int,
        width: float,
        height: float,
        kind: PageKind,
        dpi: float | None,
        image: Image.Image | None = None,
        pixmap: Any = None,
        words: list[Word] | None = None,
        native_regions: list[Region] | None = None,
        pictures: list[BBox] | None = None,
    ) -> None:
        if (image is None) == (pixmap is None):
            raise ValueError("a page has either an image or a pixmap")
        self.number = number
        """1-based page number in the document (not in the selection)."""
        self.width = width
        self.height = height
        self.kind = kind
        self.dpi = dpi
        """Pixels per inch of ``image`` (None for an image file that does not say)."""
        self._image = image
        self._pixmap = pixmap
        self.words: list[Word] = words if words is not None else []
        """The PDF text layer for born-digital pages; OCR fills it for the others."""
        self.native_regions = native_regions
        """Layout read from the PDF's own structure (born-digital pages, when asked for at ingest)."""
        self.pictures: list[BBox] = pictures if pictures is not None else []
        """Images placed on a born-digital page (letterheads, pasted scans): text in them is not in
        the text layer, so OCR reads them."""

    @property
    def image(self) -> Image.Image:
        """The page as an RGB image, orientation applied."""
        if self._image is None:
            pixmap = self._pixmap
            self._image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
            self._pixmap = None
        return self._image

    @property
    def pixel_size(self) -> tuple[int, int]:
        if self._image is not None:
            return self._image.size
        return (self._pixmap.width, self._pixmap.height)

    def __repr__(self) -> str:
        return f"Page({self.number}, {self.kind}, {len(self.words)} words, {self.pixel_size} px)"


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
