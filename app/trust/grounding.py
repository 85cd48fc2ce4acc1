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

from app.documents.textmap import METHOD_SCORE, DocumentMap, Match, PageMap
from app.pages import BBox

MIN_GROUNDED_SCORE = 0.5
_EDGE = ".,:;()[]\"'"
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class Evidence:
    page: int
    bbox: BBox
    text: str
    score: float
    method: str
    ocr_confidence: float | None
    """The lowest OCR confidence among the matched words (None for the PDF text layer)."""
    lines: tuple[int, ...] = ()
    """The page's line numbers of the matched words: values on different lines were printed in
    different places, which is what corroboration asks for."""

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


class Grounder:
    """Grounds values in one document, remembering searches and label positions: line items repeat
    values ("1", "19%") and fields, so most lookups are answered from memory."""

    def __init__(self, document: DocumentMap) -> None:
        self.document = document
        self.pages = {p.number: p for p in document.pages}
        self._found: dict[tuple[str, bool], list[Match]] = {}
        self._labels: dict[tuple[int, frozenset[str]], list[tuple[float, float, int]]] = {}

    def _find(self, form: str, fuzzy: bool) -> list[Match]:
        key = (form, fuzzy)
        if key not in self._found:
            self._found[key] = self.document.find(form, limit=10, fuzzy=fuzzy)
        return self._found[key]

    def ground(self, forms: list[str], pointer: str, *, fuzzy: bool = True) -> Evidence | None:
        """The best place one of ``forms`` is printed, or None. Forms are tried in order, and an
        exact match of an earlier form ends the search (the raw text first: it is what the model
        read); fuzzy search, once, on the first form when nothing matched well."""
        best: list[Match] = []
        candidates = list(dict.fromkeys(f for f in forms if f and f.strip()))
        for form in candidates:
            found = self._find(form, False)
            if not found:
                continue
            if not best or found[0].score > best[0].score:
                best = [m for m in found if m.score == found[0].score]
            elif found[0].score == best[0].score:
                best += [m for m in found if m.score == found[0].score]
            if best[0].score >= METHOD_SCORE["exact"]:
                break
        if fuzzy and candidates and (not best or best[0].score < METHOD_SCORE["normalized"]):
            loose = self._find(candidates[0], True)
            if loose and (not best or loose[0].score > best[0].score):
                best = [m for m in loose if m.score == loose[0].score]
        best = [m for m in best if m.score >= MIN_GROUNDED_SCORE]
        if not best:
            return None
        labels = frozenset(label_words(pointer))
        chosen = min(best, key=lambda m: (_distance(self._label_centres(m.page, labels), m), m.page, m.words))
        words = self.pages[chosen.page].words[chosen.words[0] : chosen.words[1]]
        ocr = [w.confidence for w in words if w.source == "ocr"]
        return Evidence(
            chosen.page,
            chosen.bbox,
            chosen.text,
            chosen.score,
            chosen.method,
            min(ocr) if ocr else None,  # a value is as sure as its least sure word
            tuple(sorted({w.line for w in words})),
        )

    def places(self, form: str) -> set[tuple[int, int]]:
        """The (page, line) of every exact occurrence of ``form`` as whole words."""
        found = set()
        for match in self._find(form, False):
            if match.score < METHOD_SCORE["exact"]:
                continue
            words = self.pages[match.page].words[match.words[0] : match.words[1]]
            if "".join(w.text for w in words).strip(_EDGE) == "".join(form.split()).strip(_EDGE):
                found.add((match.page, words[0].line))
        return found

    def _label_centres(self, page: int, labels: frozenset[str]) -> list[tuple[float, float, int]]:
        if (page, labels) not in self._labels:
            self._labels[(page, labels)] = _label_centres(self.pages[page], labels)
        return self._labels[(page, labels)]


def ground(document: DocumentMap, forms: list[str], pointer: str) -> Evidence | None:
    """One value, without memory across calls (see ``Grounder`` for a whole document)."""
    return Grounder(document).ground(forms, pointer)


def _label_centres(page: PageMap, labels: frozenset[str]) -> list[tuple[float, float, int]]:
    """Centres of the words on the page that could be a label naming the field."""
    if not labels:
        return []
    return [
        ((w.bbox[0] + w.bbox[2]) / 2, (w.bbox[1] + w.bbox[3]) / 2, index)
        for index, (w, tokens) in enumerate(zip(page.words, page.tokens, strict=True))
        if labels & tokens
    ]


def _distance(anchors: list[tuple[float, float, int]], match: Match) -> float:
    """From the match to the nearest label word outside it (vertical distance counts double: a label
    sits left of its value on the same line, or above it); inf without one."""
    x0, y0, x1, y1 = match.bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return min(
        (
            abs(ax - cx) + 2 * abs(ay - cy)
            for ax, ay, index in anchors
            if not match.words[0] <= index < match.words[1]
        ),
        default=float("inf"),
    )
