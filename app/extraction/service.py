"""Document + schema version in, result out: pages to the engine concurrently, outputs merged,
validated against the registered schema, stored with the document.

The result keeps the schema-valid data clean and puts everything else in a parallel map keyed by
JSON Pointer (DESIGN.md §3). A result that fails validation is returned and stored as it is, with
status ``needs_review`` and the findings; nothing is silently "fixed".
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog
from PIL import Image

from app.documents.analyze import Analysis, AnalyzeOptions
from app.documents.service import DocumentAnalyzer
from app.documents.textmap import DocumentMap, PageMap
from app.engines.base import Engine, EngineError, EngineRequest, EngineResult
from app.engines.unavailable import UnavailableEngine
from app.extraction import einvoice
from app.extraction.merge import PageOutput, merge_pages
from app.extraction.prompt import prompt_for
from app.extraction.spans import SpanError, leaf_spans, token_evidence
from app.lib import metrics, tracing
from app.lib.errors import EngineUnavailable, ExtractionError, SchemaError
from app.lib.jsonpointer import pointer as to_pointer
from app.lib.problems import (
    ENGINE_UNAVAILABLE,
    SCHEMA_NOT_SUPPORTED,
    SCHEMA_RECURSIVE,
)
from app.memory.profile import Profile, recall
from app.memory.service import MemoryLookup
from app.pages import Page, Region
from app.registry.service import SchemaVersion
from app.schema.compiled import CompiledSchema
from app.trust.assess import ReviewPolicy, assess
from app.trust.confidence import Calibrations
from app.trust.sources import Remembered

logger = structlog.get_logger(__name__)
ProgressHook = Callable[[int, int], None]
StageHook = Callable[[str, int | None], None]
"""Told each stage as it starts: ``opening``, ``ocr`` (page n), ``reading`` (page n, by the engine),
``checking`` (the trust layer); what a person waiting on one document wants to see move."""
RETRY_AFTER_S = 30
EINVOICE_MODEL = {"engine": "e-invoice", "name": "EN 16931 XML"}
"""What read an e-invoice when no engine read its pages (none configured, or an XML upload)."""
NO_IMAGE = Image.new("RGB", (1, 1), "white")
"""Sent to engines that read the text map only (``Engine.needs_image`` false)."""


@dataclass(frozen=True)
class PageFailure:
    page: int
    reason: str
    """``truncated`` (the output hit max_tokens) or ``unreadable`` (not the JSON the grammar allows)."""


@dataclass
class Extraction:
    result: dict[str, Any]
    document: bytes
    document_type: str


class Extractor:
    def __init__(
        self,
        engine: Engine,
        analyzer: DocumentAnalyzer,
        *,
        max_tokens: int,
        page_concurrency: int,
        calibration_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.analyzer = analyzer
        self.max_tokens = max_tokens
        self.page_concurrency = page_concurrency
        self.calibrations = Calibrations(calibration_dir, engine.name)

    def require_engine(self) -> Engine:
        """503 before any work is done when no engine is configured."""
        if isinstance(self.engine, UnavailableEngine):
            raise EngineUnavailable(
                ENGINE_UNAVAILABLE, self.engine.reason, headers={"Retry-After": str(RETRY_AFTER_S)}
            )
        return self.engine

    def _engine_for(self, found: einvoice.Found | None) -> Engine | None:
        """The engine that reads the pages. For an e-invoice the XML is the invoice: an engine only
        reads the pages to compare, when one is configured (and there are pages)."""
        if found is None or found.invoice is None:
            return self.require_engine()
        return None if isinstance(self.engine, UnavailableEngine) or not found.pages else self.engine

    async def extract(
        self,
        data: bytes,
        schema: SchemaVersion,
        *,
        pages: str | None = None,
        password: str | None = None,
        on_progress: ProgressHook | None = None,
        on_stage: StageHook = lambda stage, page: None,
        document_id: str | None = None,
        review: ReviewPolicy | None = None,
        memory: MemoryLookup | None = None,
    ) -> Extraction:
        """``document_id`` names the document for engines that need it (replay; default: its
        SHA-256); ``review`` replaces the schema's ``x-review`` (see ``ReviewPolicy.of``); ``memory``
        looks the sender up on the first page (sender memory: ``app.memory``)."""
        with tracing.span("docextract.extract", schema=schema.ref, bytes=len(data)):
            return await self._extract(
                data, schema, pages, password, on_progress, on_stage, document_id, review, memory
            )

    async def _einvoice(self, data: bytes, password: str | None) -> tuple[einvoice.Found | None, float]:
        """The document's e-invoice (``app.extraction.einvoice``) and the milliseconds it took."""
        started = time.perf_counter()
        with tracing.span("einvoice"):
            found = await einvoice.find(data, self.analyzer.limits, password)
        return found, (time.perf_counter() - started) * 1000

    async def _extract(
        self,
        data: bytes,
        schema: SchemaVersion,
        pages: str | None,
        password: str | None,
        on_progress: ProgressHook | None,
        on_stage: StageHook,
        document_id: str | None,
        review: ReviewPolicy | None,
        memory: MemoryLookup | None,
    ) -> Extraction:
        compiled = _usable(schema)
        on_stage("opening", None)
        started = time.perf_counter()
        found, einvoice_ms = await self._einvoice(data, password)
        engine = self._engine_for(found)
        prompt, grammar_schema = prompt_for(compiled.skeleton), compiled.decoding_schema
        slots = asyncio.Semaphore(self.page_concurrency)
        tasks: dict[int, asyncio.Task[EngineResult]] = {}
        progress = {"done": 0, "total": 0}
        engine_span = _Span()

        def opened(total: int) -> None:
            progress["total"] = total
            if on_progress:
                on_progress(0, total)

        name = document_id or hashlib.sha256(data).hexdigest()

        async def generate(
            engine: Engine,
            image: Image.Image,
            number: int,
            page_map: PageMap,
            hints: dict[str, Remembered] | None,
        ) -> EngineResult:
            try:
                request = EngineRequest(
                    image,
                    prompt,
                    grammar_schema,
                    self.max_tokens,
                    document_id=name,
                    page=number,
                    schema=schema.schema,
                    page_map=page_map,
                    memory=hints,
                )
                with tracing.span("engine.page", page=number, engine=engine.name):
                    return await engine_span.timed(engine.generate(request))
            finally:
                slots.release()
                progress["done"] += 1
                if on_progress:
                    on_progress(progress["done"], progress["total"])

        sender = _SenderMemory(memory)

        async def send(page: Page, regions: list[Region]) -> None:
            if engine is None:
                return
            page_map = PageMap(page.number, page.width, page.height, page.kind, list(page.words), regions)
            hints = await sender.hints(page_map)
            await slots.acquire()  # holds the pipeline back: at most page_concurrency images in memory
            image = page.image if engine.needs_image else NO_IMAGE  # converting a page costs ~10 ms
            on_stage("reading", page.number)
            tasks[page.number] = asyncio.create_task(generate(engine, image, page.number, page_map, hints))

        try:
            with tracing.span("pages"):  # ingest, OCR and the engine's pages, which overlap
                analysis = (
                    await self.analyzer.analyze(
                        data,
                        AnalyzeOptions(pages=pages, password=password, ocr=True, layout=False),  # ground
                        on_page=send,
                        on_open=opened,
                        on_ocr=lambda number: on_stage("ocr", number),
                    )
                    if found is None or found.pages
                    else Analysis(DocumentMap(page_count=0), "xml")  # an XML upload: no pages
                )
                outputs = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))
        except EngineError as exc:
            raise _engine_problem(exc) from exc
        finally:
            for task in tasks.values():
                task.cancel()
        on_stage("checking", None)
        trust_started = time.perf_counter()
        # Validation, normalisation and grounding take CPU (and patterns from the schema): in a
        # thread, so one document never stalls the event loop that serves every other request.
        with tracing.span("trust"):
            result = await asyncio.to_thread(
                self._result,
                schema,
                compiled,
                engine,
                outputs,
                analysis.map,
                review or compiled.review,
                sender.recalled,
                found,
            )
        trust_ms = (time.perf_counter() - trust_started) * 1000
        total_ms = (time.perf_counter() - started) * 1000  # everything, the trust layer included
        phases = {
            **({"einvoice": einvoice_ms} if found is not None else {}),
            **analysis.timings_ms,
            **engine_span.timings_ms(),
            "trust": trust_ms,
        }
        return _finished(result, data, analysis, phases, total_ms, found)

    def _result(
        self,
        schema: SchemaVersion,
        compiled: CompiledSchema,
        engine: Engine | None,
        outputs: dict[int, EngineResult],
        document: DocumentMap,
        policy: ReviewPolicy,
        recalled: dict[str, Remembered] | None = None,
        found: einvoice.Found | None = None,
    ) -> dict[str, Any]:
        page_outputs: list[PageOutput] = []
        failures: list[PageFailure] = []
        for number, output in sorted(outputs.items()):
            parsed = _parse(number, output)
            if isinstance(parsed, PageFailure):
                failures.append(parsed)
            else:
                page_outputs.append(parsed)
        data, sources = merge_pages(page_outputs)
        data = drop_absent(compiled, data if page_outputs else None)
        page_data: Any = None
        if found is not None and found.invoice is not None:
            data, sources, page_data = einvoice.overlay(found, compiled, data, sources)
        calibration = self.calibrations.for_schema(schema.name)
        from_memory = frozenset(
            pointer
            for pointer, source in sources.items()
            if source is not None and source.pointer in outputs[source.page].from_memory
        )
        trust = assess(
            compiled,
            data,
            sources,
            document,
            policy=policy,
            calibration=calibration,
            memory=recalled,
            from_memory=from_memory,
        )
        trust_reasons = trust.reasons
        if found is not None and found.invoice is not None:
            trust_reasons = einvoice.settle(trust, found, page_data, has_pages=found.pages)
        elif found is not None:
            trust_reasons = [*trust.reasons, f"einvoice_unreadable:{found.report['error']}"]
        findings = validation_findings(compiled, trust.data)
        reasons = [f"page_{f.reason}:{f.page}" for f in failures]
        # Pages read by the fallback engine (GLM-OCR was down): a person looks before they are used.
        reasons += [f"engine_fallback:{n}" for n, o in sorted(outputs.items()) if o.fallback_from is not None]
        reasons += [f"invalid:{f['pointer']}:{f['keyword']}" for f in findings]
        reasons += trust_reasons
        return {
            "id": f"ext_{uuid.uuid4().hex}",
            "status": "needs_review" if reasons else "succeeded",
            "schema": {"name": schema.name, "version": schema.version, "sha256": schema.sha256},
            "model": {"engine": engine.name, "name": engine.model} if engine else EINVOICE_MODEL,
            "data": trust.data,
            "confidence": trust.confidence,
            "confidence_calibrated": trust.calibrated,
            "fields": trust.fields,
            "checks": trust.checks,
            "validation": findings,
            "review": {
                "required": bool(reasons),
                "reasons": reasons,
                "min_confidence": policy.min_confidence,
                "status": "pending" if reasons else "not_required",
                "revision": 0,
                "revisions": [],
            },
            "pages": [
                {
                    "page": n,
                    "model": o.model,
                    "finish_reason": o.finish_reason,
                    "prompt_tokens": o.usage.prompt_tokens,
                    "completion_tokens": o.usage.completion_tokens,
                }
                for n, o in sorted(outputs.items())
            ],
        }


@dataclass
class _Span:
    """The engine's share of an extraction: from the first page sent to the last answer back (pages
    go to the engine while later ones are still read, so the phases overlap)."""

    first: float | None = None
    last: float | None = None

    async def timed(self, call: Awaitable[EngineResult]) -> EngineResult:
        if self.first is None:
            self.first = time.perf_counter()
        try:
            return await call
        finally:
            self.last = time.perf_counter()

    def timings_ms(self) -> dict[str, float]:
        if self.first is None or self.last is None:
            return {}
        return {"engine": round((self.last - self.first) * 1000, 1)}


class _SenderMemory:
    """The sender's profile, looked up on the first page before it is sent to the engine, and what
    it recalled on each page (the engine's hints, the trust layer's cross-check)."""

    def __init__(self, lookup: MemoryLookup | None) -> None:
        self.lookup = lookup
        self.profile: Profile | None = None
        self.looked_up = False
        self.recalled: dict[str, Remembered] = {}

    async def hints(self, page: PageMap) -> dict[str, Remembered] | None:
        """What the sender's memory finds on ``page``; a failure costs the memory, not the extraction."""
        if self.lookup is None:
            return None
        try:
            if not self.looked_up:
                self.looked_up = True
                self.profile = await self.lookup(page)
            if self.profile is None:
                return None
            hints = await asyncio.to_thread(recall, self.profile, [page])
        except Exception:
            logger.exception("sender_memory_failed", page=page.number)
            self.lookup = None
            return None
        self.recalled.update(hints)
        return hints


def _finished(
    result: dict[str, Any],
    data: bytes,
    analysis: Analysis,
    phases: dict[str, float],
    total_ms: float,
    found: einvoice.Found | None,
) -> Extraction:
    """The result with its timings (ms per phase, then ``total``, which covers them all) and its
    e-invoice report, counted in the metrics."""
    result["timings_ms"] = {**{k: round(v, 1) for k, v in phases.items()}, "total": round(total_ms, 1)}
    result["einvoice"] = found.report if found is not None else None
    _observe(result, analysis)
    return Extraction(result, data, analysis.document_type)


def _usable(schema: SchemaVersion) -> CompiledSchema:
    """The compiled schema of an active, non-recursive version."""
    schema.require_active()
    compiled = schema.compiled
    if (cycle := compiled.ref_cycle) is not None:  # registered before the registry refused these
        raise SchemaError(
            SCHEMA_RECURSIVE,
            f"The schema {schema.ref} is recursive; register a version without the cycle.",
            errors=[{"pointer": "/schema" + to_pointer(cycle), "detail": "closes a reference cycle"}],
        )
    return compiled


def _parse(page: int, output: EngineResult) -> PageOutput | PageFailure:
    if output.finish_reason == "length":
        return PageFailure(page, "truncated")
    try:
        data = orjson.loads(output.text)
        spans = leaf_spans(output.text)
    except (orjson.JSONDecodeError, SpanError):
        logger.warning("engine_output_unreadable", page=page, text=output.text[:200])
        return PageFailure(page, "unreadable")
    evidence = {ptr: token_evidence(span, output.tokens) for ptr, span in spans.items()}
    return PageOutput(page, data, evidence, output.alternatives)


def drop_absent(compiled: CompiledSchema, data: Any) -> Any:
    """Null means "not on the page". A property whose schema does not admit null is then absent:
    its key is removed, so the data is what the registered schema describes, and a missing required
    property is reported by ``required`` instead of as a wrong type."""
    tree = compiled.tree

    def walk(value: Any, sub: Any) -> Any:
        if isinstance(value, dict) and isinstance(tree.resolve(sub), dict):
            properties = tree.properties(sub)
            return {
                key: walk(child, properties.get(key, {}))
                for key, child in value.items()
                if child is not None or tree.admits_null(properties.get(key, {}))
            }
        if isinstance(value, list) and isinstance(tree.resolve(sub), dict):
            return [walk(item, tree.items(sub)) for item in value]
        return value

    return walk(data, compiled.schema)


def validation_findings(compiled: CompiledSchema, data: Any) -> list[dict[str, str]]:
    """Every place ``data`` breaks the registered schema (checked in full, including what decoding
    could not enforce), by JSON Pointer; a missing required property points at where it belongs."""
    findings = []
    errors = compiled.validator.iter_errors(data)
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [
                p for p in error.validator_value if p not in error.instance and repr(p) in error.message
            ]
            path += missing[:1]
        findings.append(
            {"pointer": to_pointer(path), "keyword": str(error.validator), "message": error.message}
        )
    return findings


def _observe(result: dict[str, Any], analysis: Analysis) -> None:
    """Count one extracted document in the metrics: the one place both the synchronous route and the
    job runners pass through."""
    for page in analysis.map.pages:
        metrics.PAGES.labels(analysis.document_type, page.kind).inc()
    metrics.EXTRACTIONS.labels(result["status"], result["model"]["engine"]).inc()
    if result["confidence"] is not None:
        metrics.CONFIDENCE.observe(result["confidence"])
    for stage, ms in result["timings_ms"].items():
        if stage in metrics.STAGES:
            metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)


def _engine_problem(exc: EngineError) -> ExtractionError:
    metrics.ENGINE_ERRORS.labels(exc.category).inc()
    if exc.category == "schema_not_supported":
        return ExtractionError(
            SCHEMA_NOT_SUPPORTED, f"The engine cannot compile this schema's grammar: {exc}"
        )
    logger.error("engine_failed", category=exc.category, retryable=exc.retryable, error=str(exc))
    return EngineUnavailable(
        ENGINE_UNAVAILABLE,
        f"The extraction engine failed ({exc.category}); nothing was stored. Retry later.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
        category=exc.category,
        retryable=exc.retryable,
    )
