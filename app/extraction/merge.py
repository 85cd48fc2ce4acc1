"""Merging the per-page outputs of a multi-page document into one result.

GLM-OCR reads one page per request, so a document's values arrive page by page:
- a scalar takes the best non-null value over the pages: the one whose tokens were most certain
  (highest minimum token probability), the earlier page on a tie; its page is recorded (a value
  null on every page records the first page), and its rivals: the engine's runner-ups on that
  page and the other values other pages read;
- objects merge key by key, in the order keys first appear;
- arrays (line items) concatenate in page order; an item identical in every field to one on an
  earlier page (a table header or a carried-forward row repeated at the top of each page) is kept
  once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.engines.base import Alternative
from app.lib.canonical import canonical_json
from app.lib.jsonpointer import escape
from app.trust.sources import FieldSource, Rival, TokenEvidence

__all__ = ["FieldSource", "PageOutput", "merge_pages"]


@dataclass(frozen=True)
class PageOutput:
    page: int
    data: Any
    evidence: dict[str, TokenEvidence | None]
    """Token evidence by JSON Pointer into this page's ``data``."""
    alternatives: dict[str, list[Alternative]] = field(default_factory=dict)
    """The engine's runner-up readings, by the same pointers."""


Candidate = tuple[PageOutput, Any, str]


def merge_pages(outputs: list[PageOutput]) -> tuple[Any, dict[str, FieldSource | None]]:
    """The merged data and, for every leaf of it, the page output it came from."""
    sources: dict[str, FieldSource | None] = {}
    merged = _merge([(o, o.data, "") for o in outputs], "", sources)
    return merged, sources


def _merge(candidates: list[Candidate], pointer: str, sources: dict[str, FieldSource | None]) -> Any:
    present = [c for c in candidates if c[1] is not None]
    if present and all(isinstance(value, dict) for _, value, _ in present):
        keys = list(dict.fromkeys(key for _, value, _ in present for key in value))
        return {
            key: _merge(
                [(o, value.get(key), f"{at}/{escape(key)}") for o, value, at in present],
                f"{pointer}/{escape(key)}",
                sources,
            )
            for key in keys
        }
    if present and all(isinstance(value, list) for _, value, _ in present):
        return _concatenate(present, pointer, sources)
    return _best_leaf(present or candidates[:1], pointer, sources)


def _concatenate(present: list[Candidate], pointer: str, sources: dict[str, FieldSource | None]) -> list[Any]:
    merged: list[Any] = []
    earlier: set[bytes] = set()
    for output, items, at in sorted(present, key=lambda c: c[0].page):
        on_this_page = set()
        for index, item in enumerate(items):
            key = canonical_json(item)
            if key in earlier:
                continue
            on_this_page.add(key)
            merged.append(_merge([(output, item, f"{at}/{index}")], f"{pointer}/{len(merged)}", sources))
        earlier |= on_this_page
    return merged


def _best_leaf(present: list[Candidate], pointer: str, sources: dict[str, FieldSource | None]) -> Any:
    if not present:  # no page at all
        sources[pointer] = None
        return None

    def certainty(candidate: Candidate) -> tuple[float, int]:
        evidence = candidate[0].evidence.get(candidate[2])
        return (evidence.min if evidence else 0.0, -candidate[0].page)

    output, value, at = max(present, key=certainty)
    rivals = [Rival(a.value, a.score, output.page) for a in output.alternatives.get(at, [])]
    rivals += [
        Rival(other, certainty((o, other, where))[0], o.page)
        for o, other, where in present
        if o is not output and other != value and not isinstance(other, dict | list)
    ]
    rivals.sort(key=lambda r: -r.score)
    sources[pointer] = FieldSource(output.page, at, output.evidence.get(at), tuple(rivals))
    if isinstance(value, dict | list):  # mixed shapes across pages: keep the chosen one whole
        _record_all(output, value, at, pointer, sources)
    return value


def _record_all(
    output: PageOutput, value: Any, at: str, pointer: str, sources: dict[str, FieldSource | None]
) -> None:
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        child_at, child_pointer = f"{at}/{escape(str(key))}", f"{pointer}/{escape(str(key))}"
        if isinstance(child, dict | list):
            _record_all(output, child, child_at, child_pointer, sources)
        else:
            sources[child_pointer] = FieldSource(output.page, child_at, output.evidence.get(child_at))
