"""Pages for the benchmarks drawn from rows of text cells, with PyMuPDF's TextWriter (€, ß and
accents render): shared by bench_ocr_engines.py (pages with known text) and generate_eval_set.py
(labelled documents)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pymupdf

BOLD = {"helv": "hebo", "tiro": "tibo", "cour": "cobo"}


@dataclass(frozen=True)
class Cell:
    text: str
    x: float
    align: str = "left"  # x is the left edge; "right": the right edge; "center": the centre


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    size: float
    bold: bool = False
    space: float = 1.0  # the step from the previous row, in multiples of 1.45 * size


class Typeface:
    def __init__(self, family: str) -> None:
        self.fonts = {False: pymupdf.Font(family), True: pymupdf.Font(BOLD[family])}

    def width(self, text: str, size: float, bold: bool = False) -> float:
        return float(self.fonts[bold].text_length(text, fontsize=size))


def draw_page(
    rows: Sequence[Row], width: float, height: float | None, face: Typeface, margin: float
) -> tuple[pymupdf.Document, list[str]]:
    """A one-page document with every row's cells written where they belong, and each printed
    row's text (cells left to right, joined by " "). ``height`` None: as tall as the rows need.
    Raises ValueError for a missing glyph, cells closer than a space, or text off the page."""
    placed, y, texts = [], margin, []
    for row in rows:
        y += row.size * 1.45 * row.space
        spans = []
        for cell in row.cells:
            font = face.fonts[row.bold]
            if missing := [c for c in cell.text if not c.isspace() and not font.has_glyph(ord(c))]:
                raise ValueError(f"font {font.name} has no glyph for {missing}")
            w = face.width(cell.text, row.size, row.bold)
            spans.append((cell.x - {"left": 0, "right": w, "center": w / 2}[cell.align], w, cell.text))
        spans.sort()
        if not spans:  # a blank row: only space
            continue
        for (x0, w0, a), (x1, _, b) in itertools.pairwise(spans):
            if x1 < x0 + w0 + row.size * 0.6:
                raise ValueError(f"cells too close: {a!r} {b!r}")
        if spans[0][0] < 0 or spans[-1][0] + spans[-1][1] > width:
            raise ValueError(f"row off the page: {spans}")
        placed += [(x, y, text, row) for x, _, text in spans]
        texts.append(" ".join(text for _, _, text in spans))
    page_height = height or y + margin
    if y > page_height - 20:
        raise ValueError("page overflows")
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=page_height)
    writer = pymupdf.TextWriter(page.rect)
    for x, y_, text, row in placed:
        writer.append((x, y_), text, font=face.fonts[row.bold], fontsize=row.size)
    writer.write_text(page)
    return doc, texts
