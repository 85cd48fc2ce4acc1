"""The service's own Prometheus metrics (``docextract_*``), defined once, observed where the work
happens. Request latency and counts by route come from Litestar's Prometheus middleware
(``app/api/metrics.py``); the job queue is read from the database at scrape time there too.

Labels stay few and bounded, so a busy service cannot grow the series without limit: no ids, no
schema names or versions, no raw paths. With ``docextract serve --workers N`` the processes write
their values to a shared directory (prometheus-client's multiprocess mode, set up by the CLI before
any of them starts) and ``registry()`` adds them up."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client reads it once, when it is imported: set it before a process starts."""

STAGES = ("einvoice", "ingest", "ocr", "layout", "engine", "trust")
"""The phases of ``Extractor.extract`` whose time is observed (``timings_ms`` of a result)."""

PAGES = Counter(
    "docextract_pages",
    "Pages read for extraction, by document type (pdf, image) and page kind (born_digital, scanned, image).",
    ["document_type", "kind"],
)
EXTRACTIONS = Counter(
    "docextract_extractions",
    "Documents extracted, by result status (succeeded, needs_review) and the engine that read them.",
    ["status", "engine"],
)
STAGE_SECONDS = Histogram(
    "docextract_stage_seconds",
    "Time one document spent in each extraction stage.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
CONFIDENCE = Histogram(
    "docextract_extraction_confidence",
    "A document's overall confidence (its least sure field), one observation per extraction.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
ENGINE_ERRORS = Counter(
    "docextract_engine_errors",
    "Extractions the engine failed (nothing stored), by error category.",
    ["category"],
)
ENGINE_RETRIES = Counter(
    "docextract_engine_retries",
    "Engine requests sent again after a transient failure, by error category.",
    ["category"],
)
REVIEWS = Counter(
    "docextract_reviews",
    "Reviews saved, by decision (approve, reject, none: corrections only).",
    ["decision"],
)
WEBHOOK_DELIVERIES = Counter(
    "docextract_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed: no more attempts).",
    ["outcome"],
)


def is_multiprocess() -> bool:
    return MULTIPROCESS_ENV in os.environ


def registry() -> CollectorRegistry:
    """What this process exposes: its own metrics, or those of every process in multiprocess mode."""
    if not is_multiprocess():
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


def process_exiting() -> None:
    """In multiprocess mode, drop this process's live gauges (requests in progress) as it exits."""
    if is_multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
