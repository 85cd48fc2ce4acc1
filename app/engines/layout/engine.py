"""The ``layout`` engine: extraction from the text map and the schema alone, no GPU, no model download.

It answers like the model engines: the JSON text of the page's values (every key of the decoding
schema, null where nothing was found) and tokens with byte offsets, one per value, whose
probability is the value's score. The trust layer then treats that score as it treats a model's
token probability (merge across pages, confidence, calibration per engine).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from app.documents.textmap import PageMap
from app.engines.base import (
    Alternative,
    Engine,
    EngineRequest,
    EngineResult,
    FinishReason,
    TokenLogprob,
    Usage,
)
from app.engines.layout.extract import Candidate, PageReader, PageValues
from app.engines.layout.fields import ConceptMatcher, SchemaPlan, default_matcher, plan
from app.engines.layout.page import build_layout
from app.lib.jsonpointer import escape
from app.schema.checks import Check, CheckError, parse_checks
from app.schema.compiled import compile_schema
from app.trust.sources import Remembered

PLAN_CACHE = 64
MIN_SCORE = 1e-4


class LayoutEngine(Engine):
    name = "layout"
    needs_image = False

    def __init__(self, matcher: ConceptMatcher | None = None) -> None:
        self._matcher = matcher
        self.model = "layout-heuristics+minilm" if self.matcher.model is not None else "layout-heuristics"
        self._plans: OrderedDict[str, tuple[SchemaPlan, list[Check]]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def matcher(self) -> ConceptMatcher:
        if self._matcher is None:
            self._matcher = default_matcher()
        return self._matcher

    def _plan(self, schema: dict[str, Any]) -> tuple[SchemaPlan, list[Check]]:
        compiled = compile_schema(schema)
        key = compiled.sha256
        with self._lock:
            if key is not None and key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key]
        # Invalid checks compile to none: the registry refuses them; a schema given directly may
        # still have them.
        schema_plan = plan(schema, self.matcher, compiled.tree)
        entry = (schema_plan, compiled.checks or implicit_checks(schema, schema_plan))
        if key is not None:
            with self._lock:
                self._plans[key] = entry
                while len(self._plans) > PLAN_CACHE:
                    self._plans.popitem(last=False)
        return entry

    async def generate(self, request: EngineRequest) -> EngineResult:
        # Planning (the first time: loading the embedding model) and reading a busy page take
        # seconds of CPU: in a thread, so the event loop keeps serving every other request.
        return await asyncio.to_thread(self._read, request)

    def _read(self, request: EngineRequest) -> EngineResult:
        schema = request.schema if request.schema is not None else request.decoding_schema
        schema_plan, checks = self._plan(schema)
        page = request.page_map
        values = PageValues()
        if page is not None and page.words:
            values = read_page(page, schema_plan, checks, request.memory)
        result = render(request.decoding_schema, values, request.max_tokens, self.model, page)
        remembered = frozenset(_pointer(path) for path, c in values.values.items() if c.memory)
        return replace(result, from_memory=remembered) if remembered else result


def _pointer(path: tuple[str, ...]) -> str:
    return "".join(f"/{escape(part)}" for part in path)


def implicit_checks(schema: dict[str, Any], schema_plan: SchemaPlan) -> list[Check]:
    """Without declared checks, what the concepts imply: net + tax = total, net <= total."""
    by_concept = {
        spec.concept.key: spec.path[0]
        for spec in schema_plan.fields
        if spec.concept is not None and len(spec.path) == 1 and spec.numeric
    }
    total, net, tax = (by_concept.get(k) for k in ("total", "subtotal", "tax_total"))
    declared: list[dict[str, Any]] = []
    if total and net and tax:
        declared.append(
            {"name": "net_plus_tax_is_total", "expr": f"{net} + {tax} == {total}", "tolerance": 0.02}
        )
    if total and net:
        declared.append({"name": "net_at_most_total", "expr": f"{net} <= {total}"})
    if total and tax:
        declared.append({"name": "tax_below_total", "expr": f"{tax} < {total}"})
    try:
        return parse_checks({**schema, "x-checks": declared}) if declared else []
    except CheckError:
        return []


def read_page(
    page: PageMap,
    schema_plan: SchemaPlan,
    checks: list[Check],
    memory: dict[str, Remembered] | None = None,
) -> PageValues:
    """``memory``: sender memory's values for the page by pointer (``EngineRequest.memory``)."""
    layout = build_layout(page.words, page.width, page.height)
    return PageReader(layout, schema_plan, checks, page.number, memory).read()


def render(
    decoding_schema: dict[str, Any], values: PageValues, max_tokens: int, model: str, page: PageMap | None
) -> EngineResult:
    """The values as JSON in the decoding schema's key order, one token per value (its score as
    probability) and one per piece of structure (certain); the rivals of each value rendered."""
    pieces: list[tuple[str, float]] = []
    alternatives: dict[str, list[Alternative]] = {}
    _object(decoding_schema, (), values.values, values, pieces, alternatives)
    tokens: list[TokenLogprob] = []
    at = 0
    text_parts: list[str] = []
    for text, probability in pieces:
        size = len(text.encode("utf-8"))
        tokens.append(TokenLogprob(text, at, at + size, math.log(max(probability, MIN_SCORE))))
        text_parts.append(text)
        at += size
    finish: FinishReason = "stop"
    if len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        text_parts = text_parts[:max_tokens]
        finish = "length"
    words = len(page.words) if page is not None else 0
    return EngineResult(
        text="".join(text_parts),
        tokens=tokens,
        finish_reason=finish,
        usage=Usage(prompt_tokens=max(1, words), completion_tokens=len(tokens)),
        model=model,
        alternatives=alternatives,
    )


def _object(
    schema: dict[str, Any],
    path: tuple[str, ...],
    found: dict[tuple[str, ...], Candidate],
    values: PageValues,
    pieces: list[tuple[str, float]],
    alternatives: dict[str, list[Alternative]],
) -> None:
    properties = schema.get("properties") or {}
    pieces.append(("{", 1.0))
    for i, (name, sub) in enumerate(properties.items()):
        pieces.append((("," if i else "") + json.dumps(name, ensure_ascii=False) + ":", 1.0))
        _value(sub if isinstance(sub, dict) else {}, (*path, name), found, values, pieces, alternatives)
    pieces.append(("}", 1.0))


def _value(
    schema: dict[str, Any],
    path: tuple[str, ...],
    found: dict[tuple[str, ...], Candidate],
    values: PageValues,
    pieces: list[tuple[str, float]],
    alternatives: dict[str, list[Alternative]],
) -> None:
    kinds = schema.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if "properties" in schema:
        _object(schema, path, found, values, pieces, alternatives)
        return
    if "array" in kinds or "items" in schema:
        rows = values.tables.get(path, []) if found is values.values else []
        item_schema = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        pieces.append(("[", 1.0))
        for i, row in enumerate(rows):
            if i:
                pieces.append((",", 1.0))
            _object(item_schema or {}, (), row, values, pieces, alternatives)
        pieces.append(("]", 1.0))
        return
    candidate = found.get(path)
    if candidate is None or not _admits(schema, candidate.value):
        pieces.append(("null", 1.0))  # the decoding schema lets every leaf be null
        return
    pieces.append((json.dumps(candidate.value, ensure_ascii=False), min(candidate.score, 0.999)))
    rivals = [
        Alternative(rival.value, min(rival.score, 0.999))
        for rival in (values.rivals.get(path, []) if found is values.values else [])
        if _admits(schema, rival.value)
    ]
    if rivals:
        alternatives["".join(f"/{escape(part)}" for part in path)] = rivals


def _admits(schema: dict[str, Any], value: Any) -> bool:
    """Whether the decoding schema's type allows the value (the grammar would have)."""
    kinds = schema.get("type")
    allowed = set(kinds) if isinstance(kinds, list) else {kinds} if kinds else set()
    if "enum" in schema:
        return value in schema["enum"]
    if not allowed:
        return True
    if isinstance(value, bool):
        return "boolean" in allowed
    if isinstance(value, int):
        return bool(allowed & {"integer", "number"})
    if isinstance(value, float):
        return "number" in allowed
    return isinstance(value, str) and "string" in allowed
