"""What an approved document teaches about where its sender prints each field, and reading the
next document of that sender with it.

``learn`` takes the final (reviewed) result and the document's words. For every value of the
document (not of line items: a table's rows are the layout engine's to read, and they move from
one document to the next) it finds the words that print the value (the result's evidence, for a
correction the words the reviewer picked, else the value's printed forms searched on the page),
then its label as the layout engine's segments cut the page: before it on its segment
(``inline``), the segment to its left (``right``), the first cell of its table row (``row``) or
the cell above it (``below``); without one, its place on the page (``page``, or ``cell`` for a
value among other values: a guess). It keeps the label's folded words, both boxes, the value as
printed, and its format: a date's pattern (``99.99.9999``) and day/month order, an amount's
decimal separator and decimals, an identifier's shape (``A-9-9``). Values printed over several
lines (addresses) are not remembered.

``recall`` finds the label again on a new page and reads the value where it stood relative to it
(so a total that moved down with a longer item table is still found), else at the same place on
the page, and checks its format. Positions are in page widths (x and y alike): a receipt's length
changes with its items, its width does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from app.documents.textmap import DocumentMap, PageMap
from app.engines.layout.page import PageLayout, Segment, build_layout
from app.lexicon import fold_phrase
from app.lib.jsonpointer import PointerNotFound, resolve
from app.pages import BBox, Word, union_box
from app.schema.kinds import KINDS, Kind
from app.trust.grounding import Grounder
from app.trust.normalize import normalize, printed_forms
from app.trust.sources import Remembered

Profile = dict[str, Any]
"""JSON: ``{"version": 1, "fields": {pointer: {page, kind, relation, rows, label, label_box, box,
value, words, format, day_first, seen, constant}}}``."""
VERSION = 1
MAX_LABEL_WORDS = 6
MAX_ROWS_ABOVE = 3
LABEL_SCORE = 0.95
"""A value beside (or under) its remembered label, in its remembered format."""
PAGE_SCORE = 0.88
"""A value with no label, at its remembered place on the page (a receipt's header)."""
FALLBACK_SCORE = 0.55
"""A labelled value whose label is not found again, read at its remembered place: a guess."""
CONSTANT_SCORE = 0.97
"""The same text as on the approved document, at its place (the sender's name, IBAN, currency)."""
FORMAT_MISFIT = 0.6
OTHER_ROW = 0.8
"""The label's row has another number of cells than on the approved document."""
AMBIGUOUS = 0.8
"""The label found at several places, as like the remembered one, that give different values."""
MIN_SCORE = 0.8
"""Only values recalled this surely are used: a guess (a label not found again, a value among
other values read by its place alone, a format that changed) would be the layout engine's
strongest candidate, wrong where the document differs; it is left out instead."""
MIN_OVERLAP = 0.3
MAX_PLACES = 4
RELATION_RANK = {"inline": 0, "right": 0, "below": 0, "row": 1, "page": 2, "cell": 3}
"""A value's own label beside it first, then its table row's, then its place."""
SCANNED_ROW = 0.8
"""A label far left of its value on a scan (a table row's first cell): a skew of a degree puts it
beside the values of the row above or below; only a label near its value reads surely there."""
WIDE_GAP = 0.25
"""Page widths between a label and its value beyond which a scan's skew may pair the wrong rows."""
_PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s?%")
_WINDOW = {"date": 4, "amount": 3, "percent": 2, "iban": 9, "vat_id": 5, "phone": 5, "currency": 2}


def learn(pages: Sequence[PageMap], result: dict[str, Any]) -> Profile:
    """Where the document's values are printed, by pointer (see the module docstring)."""
    data = result.get("data")
    document = DocumentMap(page_count=len(pages), pages=list(pages))
    grounder = Grounder(document)
    by_number = {page.number: page for page in pages}
    layouts: dict[int, PageLayout] = {}
    fields: dict[str, dict[str, Any]] = {}
    for pointer, entry in (result.get("fields") or {}).items():
        if any(part.isdigit() for part in pointer.split("/")):
            continue  # line items
        try:
            value = resolve(data, pointer)
        except PointerNotFound:
            continue
        if value is None or isinstance(value, dict | list | bool):
            continue
        kind = _kind(entry)
        place = _place(grounder, by_number, pointer, value, kind, entry)
        if place is None:
            continue
        places = [place, *_elsewhere(by_number, place)]
        learnt = []
        for page, indices in places:
            if page.number not in layouts:
                layouts[page.number] = build_layout(page.words, page.width, page.height)
            remembered = _field(page, layouts[page.number], indices, value, kind)
            if remembered is not None:
                learnt.append(remembered)
        if learnt:  # a value printed twice: where its own label stands beside it
            fields[pointer] = min(learnt, key=lambda f: RELATION_RANK[f["relation"]])
    return {"version": VERSION, "fields": fields}


def merge(old: Profile, new: Profile) -> Profile:
    """A later approval of the same sender: its places replace the older ones (the newest template
    wins); a value the same on both is constant (a name, an IBAN)."""
    fields = dict(old.get("fields") or {})
    for pointer, field in (new.get("fields") or {}).items():
        before = fields.get(pointer)
        if before is None:
            fields[pointer] = field
            continue
        same = _fold(before.get("value")) == _fold(field.get("value"))
        fields[pointer] = {
            **field,
            "seen": int(before.get("seen", 1)) + 1,
            "constant": same and before.get("constant") is not False,
        }
    return {"version": VERSION, "fields": fields}


def recall(profile: Profile, pages: Sequence[PageMap]) -> dict[str, Remembered]:
    """The values ``pages`` print where the sender's approved documents printed them, by pointer;
    only those recalled surely (``MIN_SCORE``)."""
    found: dict[str, Remembered] = {}
    for page in pages:
        fields = {
            pointer: field
            for pointer, field in (profile.get("fields") or {}).items()
            if field.get("page") == page.number
        }
        if not fields or not page.words or page.width <= 0:
            continue
        layout = build_layout(page.words, page.width, page.height)
        for pointer, field in fields.items():
            remembered = _recall_field(page, layout, field)
            if remembered is not None and remembered.score >= MIN_SCORE:
                found[pointer] = remembered
    return found


# -- learning


def _kind(entry: dict[str, Any]) -> Kind:
    kind = (entry.get("normalized") or {}).get("kind")
    return kind if kind in KINDS else "text"


def _place(
    grounder: Grounder,
    pages: dict[int, PageMap],
    pointer: str,
    value: Any,
    kind: Kind,
    entry: dict[str, Any],
) -> tuple[PageMap, list[int]] | None:
    """The page and the indexes of the words that print the value: the result's evidence (for a
    correction, the words the reviewer picked) when they read as the value, else the value's
    printed forms searched on the pages."""
    evidence = entry.get("evidence") or []
    if evidence:
        first = evidence[0]
        page = pages.get(int(first.get("page", 0)))
        if page is not None:
            indices = _inside(page, tuple(first["bbox"]))
            if indices and _reads_as(_text(page.words, indices), value, kind):
                return page, indices
    forms = [str(value), *printed_forms(value, kind)]
    raw = entry.get("raw_text")
    if raw is not None and entry.get("source") != "reviewer":
        forms.insert(0, str(raw))
    found = grounder.ground(forms, pointer, fuzzy=False)
    if found is None or found.method == "fuzzy" or found.page not in pages:
        return None
    page = pages[found.page]
    indices = _inside(page, found.bbox)
    return (page, indices) if indices else None


def _elsewhere(
    pages: dict[int, PageMap], place: tuple[PageMap, list[int]]
) -> list[tuple[PageMap, list[int]]]:
    """The other places the same words are printed (the total in a VAT table's sum row and beside
    "Amount due"), as whole words."""
    page, indices = place
    text = _text(page.words, indices)
    found = []
    for other in pages.values():
        for match in other.find(text, fuzzy=False, limit=MAX_PLACES):
            span = list(range(*match.words))
            if match.score >= 1.0 and (other is not page or span != indices):
                found.append((other, span))
    return found


def _inside(page: PageMap, bbox: BBox) -> list[int]:
    x0, y0, x1, y1 = bbox
    tolerance = 0.002
    return [
        i
        for i, w in enumerate(page.words)
        if x0 - tolerance <= (w.bbox[0] + w.bbox[2]) / 2 <= x1 + tolerance
        and y0 - tolerance <= (w.bbox[1] + w.bbox[3]) / 2 <= y1 + tolerance
    ]


def _reads_as(text: str, value: Any, kind: Kind) -> bool:
    read, approved = normalize(text, kind), normalize(value, kind)
    if read.status == "ok" and approved.status == "ok":
        return bool(read.value == approved.value) or _fold(read.value) == _fold(approved.value)
    return _fold(text) == _fold(value)


def _field(
    page: PageMap, layout: PageLayout, indices: list[int], value: Any, kind: Kind
) -> dict[str, Any] | None:
    words = [page.words[i] for i in indices]
    where = {
        id(w): (segment, position) for segment in layout.segments for position, w in enumerate(segment.words)
    }
    placed = [where[id(w)] for w in words if id(w) in where]
    if not placed or len({segment.row for segment, _ in placed}) > 1:
        return None  # printed over several lines
    segment, position = min(placed, key=lambda p: (p[0].box[0], p[1]))
    relation, rows, label = _label(layout, segment, position)
    text = _text(page.words, indices)
    return {
        "page": page.number,
        "kind": kind,
        "relation": relation,
        "rows": rows,
        "cells": len(layout.rows[segment.row]),
        "label": fold_phrase(" ".join(w.text for w in label)) if label else None,
        "label_box": _units(page, union_box([w.bbox for w in label])) if label else None,
        "box": _units(page, union_box([w.bbox for w in words])),
        "value": text,
        "words": len(words),
        "format": signature(text, kind),
        "day_first": _day_first(text, value) if kind == "date" else None,
        "seen": 1,
        "constant": None,
    }


def _label(layout: PageLayout, segment: Segment, position: int) -> tuple[str, int, list[Word]]:
    """How the value's label stands to it: before it on its segment (``inline``), the segment to
    its left (``right``), the first cell of its row when other values stand between (``row``: a
    VAT table's sum row), or the cell above it (``below``). Without one, ``page`` for a value that
    stands alone (a receipt's header), ``cell`` for one among other values (a guess)."""
    before = _label_words(segment.words[:position])
    if before:
        return "inline", 0, before
    row = layout.rows[segment.row]
    left = [s for s in row if s.box[2] <= segment.box[0] + 1]
    if left:
        words = _label_words(left[-1].words)
        if words:
            return "right", 0, words
        words = _label_words(left[0].words)
        if words and len(words) == len(left[0].words):
            return "row", 0, words
    for rows in range(1, MAX_ROWS_ABOVE + 1):
        if segment.row - rows < 0:
            break
        above = _under(layout.rows[segment.row - rows], segment)
        if above is None:
            continue
        words = _label_words(above.words)
        if words and len(words) == len(above.words):
            return "below", rows, words
        return "cell", 0, []
    return ("cell" if left else "page"), 0, []


def _label_words(words: list[Word]) -> list[Word]:
    """The longest run of words at the end of ``words`` that reads as a label: letters, no value
    (a rate such as "19 %" may be part of it)."""
    taken: list[Word] = []
    for word in reversed(words):
        if len(taken) >= MAX_LABEL_WORDS:
            break
        candidate = [word, *taken]
        text = _PERCENT.sub("", " ".join(w.text for w in candidate))
        if any(c.isdigit() for c in text) and word.text != "%":
            break
        taken = candidate
    text = fold_phrase(" ".join(w.text for w in taken))
    return taken if sum(c.isalpha() for c in text) >= 2 else []


def _under(row: list[Segment], segment: Segment) -> Segment | None:
    """The cell of ``row`` that stands over (or under) ``segment`` most."""
    best: tuple[float, Segment] | None = None
    for other in row:
        shared = min(other.box[2], segment.box[2]) - max(other.box[0], segment.box[0])
        narrower = min(other.box[2] - other.box[0], segment.box[2] - segment.box[0])
        if shared >= MIN_OVERLAP * narrower and (best is None or shared > best[0]):
            best = (shared, other)
    return best[1] if best is not None else None


def _day_first(printed: str, value: Any) -> bool | None:
    """The order the approved value says the printed date is in, when only one order reads it so."""
    approved = normalize(value, "date").value
    first = normalize(printed, "date", day_first=True).value
    second = normalize(printed, "date", day_first=False).value
    if first == approved and second != approved:
        return True
    if second == approved and first != approved:
        return False
    return None


def signature(text: str, kind: Kind) -> str | None:
    """A value's format: a date's pattern, an amount's decimal separator and decimals, an
    identifier's shape (runs of letters and digits); None for names and codes with check digits."""
    if kind == "date":
        return re.sub(r"\d", "9", re.sub(r"[^\W\d_]+", "a", text.strip()))
    if kind in ("amount", "percent"):
        decimals = re.search(r"([.,])(\d+)\D*$", text)
        return f"{decimals[1]}{len(decimals[2])}" if decimals else "0"
    if kind == "text" and any(c.isdigit() for c in text):
        return re.sub(r"9+", "9", re.sub(r"A+", "A", re.sub(r"\d", "9", re.sub(r"[^\W\d_]", "A", text))))
    return None


# -- recalling


def _recall_field(page: PageMap, layout: PageLayout, field: dict[str, Any]) -> Remembered | None:
    kind: Kind = field["kind"] if field.get("kind") in KINDS else "text"
    readings: list[tuple[float, list[Word]]] = []
    anchor = "label"
    if field.get("label") and field.get("relation") not in ("page", "cell"):
        readings = _beside_label(page, layout, field)
    if not readings:
        anchor = "page"
        base = PAGE_SCORE if field.get("relation") == "page" else FALLBACK_SCORE
        words = _at_place(page, layout, field)
        readings = [(base, words)] if words else []
    found: list[Remembered] = []
    for base, words in readings:
        read = _read(words, kind, field)
        if read is None:
            continue
        text, used = read
        score = base * (1.0 if signature(text, kind) == field.get("format") else FORMAT_MISFIT)
        if field.get("constant") is not False and _fold(text) == _fold(field.get("value")):
            score = max(score, CONSTANT_SCORE)
        bbox = union_box([w.bbox for w in used])
        found.append(
            Remembered(text, page.number, bbox, round(score, 4), kind, field.get("day_first"), anchor)
        )
    if not found:
        return None
    best = max(found, key=lambda r: r.score)
    if any(_fold(r.text) != _fold(best.text) and r.score >= best.score for r in found if r is not best):
        return replace(best, score=round(best.score * AMBIGUOUS, 4))  # as likely another value
    return best


def _beside_label(page: PageMap, layout: PageLayout, field: dict[str, Any]) -> list[tuple[float, list[Word]]]:
    """The words in the remembered relation to each place the label is printed, nearest the
    remembered label first."""
    tokens = str(field["label"]).split()
    relation = field.get("relation")
    remembered = field.get("label_box") or field["box"]
    found: list[tuple[float, float, list[Word]]] = []
    for segment in layout.segments:
        for first, last in _occurrences(segment, tokens):
            label = segment.words[first : last + 1]
            words: list[Word] = []
            if relation == "inline":
                words = segment.words[last + 1 :]
            elif relation == "right" and last == len(segment.words) - 1:
                row = layout.rows[segment.row]
                after = [s for s in row if s.box[0] >= segment.box[2] - 1 and s is not segment]
                words = after[0].words if after else []
            elif relation == "row" and (first, last) == (0, len(segment.words) - 1):
                words = _in_column(page, layout.rows[segment.row], segment, field)
            elif relation == "below":
                target = segment.row + int(field.get("rows") or 1)
                if target < len(layout.rows):
                    under = _under(layout.rows[target], segment)
                    words = under.words if under is not None else []
            if words:
                gap = min(w.bbox[0] for w in words) - max(w.bbox[2] for w in label)
                sideways = relation == "row" or (relation == "right" and gap > WIDE_GAP)
                skew = SCANNED_ROW if sideways and page.kind != "born_digital" else 1.0
                box = _units(page, union_box([w.bbox for w in label]))
                drift = sum(abs(a - b) for a, b in zip(box[:2], remembered[:2], strict=True))
                cells = len(layout.rows[segment.row]) == field.get("cells", len(layout.rows[segment.row]))
                found.append((drift, LABEL_SCORE * skew * (1.0 if cells else OTHER_ROW), list(words)))
    found.sort(key=lambda f: f[0])
    return [(score, words) for _, score, words in found[:3]]


def _in_column(page: PageMap, row: list[Segment], label: Segment, field: dict[str, Any]) -> list[Word]:
    """On the label's row, the cell that stands where the value stood (a table's column)."""
    x0, _, x1, _ = field["box"]
    best: tuple[float, Segment] | None = None
    for segment in row:
        if segment is label or segment.box[0] < label.box[2]:
            continue
        there = _units(page, union_box([w.bbox for w in segment.words]))
        shared = min(there[2], x1) - max(there[0], x0)
        if shared > 0 and (best is None or shared > best[0]):
            best = (shared, segment)
    return list(best[1].words) if best is not None else []


def _occurrences(segment: Segment, tokens: list[str]) -> list[tuple[int, int]]:
    """Where the label's folded tokens are printed in the segment: (first, last) word indexes."""
    folded = segment.tokens
    size = len(tokens)
    return [
        (folded[i][1], folded[i + size - 1][1])
        for i in range(len(folded) - size + 1)
        if [t for t, _ in folded[i : i + size]] == tokens
    ]


def _at_place(page: PageMap, layout: PageLayout, field: dict[str, Any]) -> list[Word]:
    """The segment that covers the remembered box most (shared area over their union)."""
    box = field["box"]
    best: tuple[float, Segment] | None = None
    for segment in layout.segments:
        there = _units(page, union_box([w.bbox for w in segment.words]))
        shared_w = min(there[2], box[2]) - max(there[0], box[0])
        shared_h = min(there[3], box[3]) - max(there[1], box[1])
        if shared_w <= 0 or shared_h <= 0:
            continue
        shared = shared_w * shared_h
        union = _area(there) + _area(box) - shared
        overlap = shared / union if union > 0 else 0.0
        if overlap >= MIN_OVERLAP and (best is None or overlap > best[0]):
            best = (overlap, segment)
    return list(best[1].words) if best is not None else []


def _read(words: list[Word], kind: Kind, field: dict[str, Any]) -> tuple[str, list[Word]] | None:
    """The value in ``words`` (which start where it starts), as printed, and its words."""
    if not words:
        return None
    if kind == "text":
        taken = words[:1] if int(field.get("words") or 1) == 1 else words
        return _text_of(taken), taken
    day_first = field.get("day_first")
    size = _WINDOW.get(kind, 3)
    for start in range(min(2, len(words))):
        for end in range(min(len(words), start + size), start, -1):
            text = _text_of(words[start:end])
            if normalize(text, kind, day_first=day_first).status == "ok":
                return text, words[start:end]
    return None


# -- helpers


def _units(page: PageMap, bbox: BBox | tuple[float, ...]) -> list[float]:
    """A normalised box in page widths (y scaled by the page's height over its width)."""
    ratio = page.height / page.width if page.width else 1.0
    x0, y0, x1, y1 = bbox
    return [round(x0, 5), round(y0 * ratio, 5), round(x1, 5), round(y1 * ratio, 5)]


def _area(box: Sequence[float]) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _text(words: list[Word], indices: list[int]) -> str:
    return _text_of([words[i] for i in indices])


def _text_of(words: list[Word]) -> str:
    return " ".join(w.text for w in words)


def _fold(value: Any) -> str:
    return " ".join(str(value).casefold().split()) if value is not None else ""
