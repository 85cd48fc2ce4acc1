"""The text map: every page's words and regions, and a search that says where a value is printed.

This is the evidence layer. Extracted values are grounded by ``DocumentMap.find``: the value is
looked up in each page's words in reading order, first exactly (ignoring only how whitespace and
line breaks fall), then after normalisation (case, Unicode compatibility forms, punctuation), then
fuzzily. Whitespace never matters, because OCR joins words (``InvoiceNo.:INV-7``) and values wrap
across lines. Each page keeps a precomputed index, so a search costs a substring scan per page.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Literal, NamedTuple

from rapidfuzz import fuzz

from app.pages import BBox, Page, PageKind, Region, Word, union_box

MatchMethod = Literal["exact", "normalized", "fuzzy"]
_LETTERS = re.compile(r"[a-z]+")
METHOD_SCORE: dict[MatchMethod, float] = {"exact": 1.0, "normalized": 0.95, "fuzzy": 0.9}
# A match that starts or ends inside a run of letters/digits ("42" in "2042") is a weak one.
PARTIAL_TOKEN_FACTOR = 0.6
# OCR drops spaces between words ("15/01/20181:48PM"), so a cut inside a run of OCR text is much more
# often a lost boundary than a wrong match: a milder penalty there.
PARTIAL_TOKEN_FACTOR_OCR = 0.85
DEFAULT_FUZZY_THRESHOLD = 0.85
# A short value ("1") can be printed hundreds of times; beyond this many per page, the rest add nothing.
MAX_MATCHES_PER_PAGE = 12


@dataclass(frozen=True, slots=True)
class Match:
    page: int
    bbox: BBox
    text: str
    """The words the match covers, as printed."""
    score: float
    method: MatchMethod
    words: tuple[int, int]
    """Index of the first and one past the last matched word on the page."""


@lru_cache(maxsize=4096)
def _normalize_char(ch: str) -> str:
    """Case- and form-insensitive; punctuation and symbols dropped, letters and digits kept."""
    return "".join(c for c in unicodedata.normalize("NFKC", ch).casefold() if c.isalnum())


@dataclass
class _Index:
    """One searchable string per level. Each character is mapped back to its word, and marked when
    a token boundary precedes it (a word start, or a separator that the level dropped)."""

    text: str
    owner: list[int]
    boundary: list[bool]

    def cuts_token(self, start: int, end: int) -> bool:
        """Whether [start, end) begins or ends inside a run of letters or a run of digits. A change
        between letters and digits counts as a boundary: OCR joins "TOTAL" and "RM12.50" that way."""
        text = self.text
        return (start > 0 and not self.boundary[start] and _same_run(text[start - 1], text[start])) or (
            end < len(text) and not self.boundary[end] and _same_run(text[end - 1], text[end])
        )


def _same_run(a: str, b: str) -> bool:
    return (a.isdigit() and b.isdigit()) or (a.isalpha() and b.isalpha())


def _build_index(words: list[Word], transform: Any) -> _Index:
    chars: list[str] = []
    owner: list[int] = []
    boundary: list[bool] = []
    for index, word in enumerate(words):
        pending_break = True  # a word starts a token
        for ch in word.text:
            kept = transform(ch)
            if not kept or not ch.isalnum():
                pending_break = True
            for out in kept:
                chars.append(out)
                owner.append(index)
                boundary.append(pending_break)
                pending_break = False
            if not ch.isalnum():
                pending_break = True
    return _Index("".join(chars), owner, boundary)


class _Span(NamedTuple):
    """An occurrence located but not yet built into a Match (most are never returned)."""

    score: float
    first: int
    last: int
    source: _Index
    start: int
    end: int
    method: MatchMethod


def _exact_chars(ch: str) -> str:
    return "" if ch.isspace() else ch


@dataclass
class PageMap:
    number: int
    width: float
    height: float
    kind: PageKind
    words: list[Word] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)

    @property
    def _partial_factor(self) -> float:
        return PARTIAL_TOKEN_FACTOR if self.kind == "born_digital" else PARTIAL_TOKEN_FACTOR_OCR

    @cached_property
    def tokens(self) -> list[frozenset[str]]:
        """Lower-case letter runs of each word (labels are searched by these)."""
        return [frozenset(_LETTERS.findall(w.text.lower())) for w in self.words]

    @cached_property
    def _exact(self) -> _Index:
        return _build_index(self.words, _exact_chars)

    @cached_property
    def _normalized(self) -> _Index:
        return _build_index(self.words, _normalize_char)

    def find(
        self,
        value: str,
        *,
        fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
        fuzzy: bool = True,
        limit: int | None = None,
    ) -> list[Match]:
        """Every place ``value`` is printed (the best ``limit``), best first; fuzzy only when nothing
        matches better. Matches are located cheaply and built only for those returned."""
        exact_value = "".join(_exact_chars(c) for c in value)
        if not exact_value:
            return []
        spans = self._scan(self._exact, exact_value, "exact")
        normalized_value = "".join(_normalize_char(c) for c in value)
        if normalized_value:
            seen = {(s.first, s.last) for s in spans}
            spans += [
                s
                for s in self._scan(self._normalized, normalized_value, "normalized")
                if (s.first, s.last) not in seen
            ]
        spans.sort(key=lambda s: (-s.score, s.first))
        found = [self._match(s.source, s.start, s.end, s.score, s.method) for s in spans[:limit]]
        if (
            fuzzy
            and not any(m.score >= METHOD_SCORE["normalized"] for m in found)
            and len(normalized_value) >= 4
        ):
            found += [
                m
                for m in self._fuzzy(normalized_value, fuzzy_threshold)
                if all(m.words != seen.words or m.score > seen.score for seen in found)
            ]
        return sorted(found, key=lambda m: (-m.score, m.words))

    def _scan(self, index: _Index, needle: str, method: MatchMethod) -> list[_Span]:
        """Each occurrence of ``needle`` in ``index``, up to a cap."""
        spans: list[_Span] = []
        start = index.text.find(needle)
        while start != -1 and len(spans) < MAX_MATCHES_PER_PAGE:
            end = start + len(needle)
            score = METHOD_SCORE[method] * (self._partial_factor if index.cuts_token(start, end) else 1.0)
            spans.append(
                _Span(score, index.owner[start], index.owner[end - 1] + 1, index, start, end, method)
            )
            start = index.text.find(needle, start + 1)
        return spans

    def _fuzzy(self, needle: str, threshold: float) -> list[Match]:
        index = self._normalized
        if not index.text:
            return []
        result = fuzz.partial_ratio_alignment(needle, index.text, score_cutoff=threshold * 100)
        if result is None or result.dest_end <= result.dest_start:
            return []
        score = METHOD_SCORE["fuzzy"] * result.score / 100
        if index.cuts_token(result.dest_start, result.dest_end):
            score *= self._partial_factor
        return [self._match(index, result.dest_start, result.dest_end, score, "fuzzy")]

    def _match(self, index: _Index, start: int, end: int, score: float, method: MatchMethod) -> Match:
        first, last = index.owner[start], index.owner[end - 1] + 1
        words = self.words[first:last]
        return Match(
            page=self.number,
            bbox=union_box([w.bbox for w in words]),
            text=_join(words),
            score=round(score, 4),
            method=method,
            words=(first, last),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "width": self.width,
            "height": self.height,
            "kind": self.kind,
            "regions": [
                {"label": r.label, "bbox": _round(r.bbox), "score": round(r.score, 4), "order": r.order}
                for r in self.regions
            ],
            "words": [
                {
                    "text": w.text,
                    "bbox": _round(w.bbox),
                    "confidence": round(w.confidence, 4),
                    "source": w.source,
                    "line": w.line,
                }
                for w in self.words
            ],
        }


def _join(words: list[Word]) -> str:
    """Words as printed: a space within a line, a newline between lines."""
    parts: list[str] = []
    for i, word in enumerate(words):
        if i:
            parts.append(" " if word.line == words[i - 1].line else "\n")
        parts.append(word.text)
    return "".join(parts)


def _round(box: BBox) -> list[float]:
    return [round(v, 5) for v in box]


@dataclass
class DocumentMap:
    """All analysed pages of one document (only the selected ones, in order)."""

    page_count: int
    pages: list[PageMap] = field(default_factory=list)

    def add(self, page: Page, regions: list[Region]) -> PageMap:
        page_map = PageMap(page.number, page.width, page.height, page.kind, list(page.words), regions)
        self.pages.append(page_map)
        return page_map

    def find(
        self,
        value: str,
        *,
        limit: int = 5,
        fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
        fuzzy: bool = True,
    ) -> list[Match]:
        """Where ``value`` appears in the document, best first (then by page and position)."""
        found = [
            m
            for page in self.pages
            for m in page.find(value, fuzzy_threshold=fuzzy_threshold, fuzzy=fuzzy, limit=limit)
        ]
        return sorted(found, key=lambda m: (-m.score, m.page, m.words))[:limit]

    def to_dict(self) -> dict[str, Any]:
        return {"page_count": self.page_count, "pages": [p.to_dict() for p in self.pages]}
