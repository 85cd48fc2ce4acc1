"""Grounding: where on the document each extracted value is printed.

Every non-null leaf is searched in the text map in the forms it may be printed in (its raw text,
then the printed forms of its normalised value): exact, normalised, then fuzzy. When a value is
printed more than once, the occurrence nearest a label naming the field wins ("Total" next to the
total, not the same number in a line item). A value found nowhere is ungrounded: the guard against
values the model made up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.documents.models import BBox
from app.documents.textmap import DocumentMap, Match, PageMap

MIN_GROUNDED_SCORE = 0.5
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class Evidence:
    page: int
    bbox: BBox
    text: str
    score: float
    method: str
    ocr_confidence: float | None
    """Mean OCR confidence of the matched words (None for the PDF text layer)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "page": self.page,
            "bbox": [round(v, 5) for v in self.bbox],
            "text": self.text,
            "score": self.score,
            "method": self.method,
        }


def label_words(pointer: str) -> set[str]:
    """Words a printed label for this field may contain: ``/seller/vat_id`` -> {"vat", "id"}."""
    last = next((part for part in reversed(pointer.split("/")) if part and not part.isdigit()), "")
    return {w for w in _WORD.findall(last.lower()) if len(w) > 1}


def ground(document: DocumentMap, forms: list[str], pointer: str) -> Evidence | None:
    """The best place one of ``forms`` is printed, or None."""
    best: list[Match] = []
    for form in dict.fromkeys(f for f in forms if f and f.strip()):
        found = document.find(form, limit=10)
        if not found:
            continue
        if not best or found[0].score > best[0].score:
            best = [m for m in found if m.score == found[0].score]
        elif found[0].score == best[0].score:
            best += [m for m in found if m.score == found[0].score]
    best = [m for m in best if m.score >= MIN_GROUNDED_SCORE]
    if not best:
        return None
    labels = label_words(pointer)
    pages = {p.number: p for p in document.pages}
    chosen = min(best, key=lambda m: (_label_distance(pages[m.page], m, labels), m.page, m.words))
    words = pages[chosen.page].words[chosen.words[0] : chosen.words[1]]
    ocr = [w.confidence for w in words if w.source == "ocr"]
    return Evidence(
        chosen.page,
        chosen.bbox,
        chosen.text,
        chosen.score,
        chosen.method,
        sum(ocr) / len(ocr) if ocr else None,
    )


def _label_distance(page: PageMap, match: Match, labels: set[str]) -> float:
    """Distance from the match to the nearest word of a label naming the field (inf without one)."""
    if not labels:
        return 0.0
    x0, y0, x1, y1 = match.bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    distances = [
        abs((w.bbox[0] + w.bbox[2]) / 2 - cx) + 2 * abs((w.bbox[1] + w.bbox[3]) / 2 - cy)
        for index, w in enumerate(page.words)
        if not (match.words[0] <= index < match.words[1]) and labels & set(_WORD.findall(w.text.lower()))
    ]
    return min(distances, default=float("inf"))
