"""The document pipeline as the API and CLI use it: limits, layout backend and OCR pool, built once
per process from settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from app.documents.analyze import Analysis, AnalyzeOptions, PageHook, analyze_document
from app.documents.ingest import IngestLimits
from app.lib.errors import OcrError
from app.lib.problems import OCR_FAILED
from app.lib.settings import Settings
from app.ocr.engine import available_cpus
from app.ocr.engines import build_ocr_engine, missing
from app.ocr.pool import OcrPool
from app.pages import Page, Word
from app.regions.factory import build_region_detector

logger = structlog.get_logger(__name__)


def ingest_limits(settings: Settings) -> IngestLimits:
    i = settings.ingest
    return IngestLimits(
        max_bytes=i.max_bytes,
        max_pages=i.max_pages,
        max_pixels=i.max_pixels,
        dpi=i.dpi,
        max_long_side=i.max_long_side,
        einvoice=i.einvoice,
        max_xml_bytes=i.max_xml_bytes,
    )


def build_ocr_pool(settings: Settings) -> OcrPool | None:
    """The OCR pool for the configured engine; None (with a warning naming what to install) when
    OCR is off or the engine is not installed, so scans come back without words, not as errors."""
    ocr = settings.ocr
    if not ocr.enabled:
        return None
    lacking = missing(ocr.engine)
    if lacking is not None:
        logger.warning("ocr_unavailable", engine=ocr.engine, install=lacking)
        return None
    threads = max(1, available_cpus() // ocr.workers)
    return OcrPool(
        build_ocr_engine(ocr.engine, threads=threads),
        executor=ocr.executor,
        max_workers=ocr.workers,
        cache_pages=ocr.cache_pages,
    )


class DocumentAnalyzer:
    def __init__(self, settings: Settings) -> None:
        self.limits = ingest_limits(settings)
        self.layout = build_region_detector(settings.layout)
        self.layout_batch = settings.layout.batch_size
        self.ocr_pictures = settings.ocr.pictures
        self.ocr_pool = build_ocr_pool(settings)

    async def _ocr(self, page: Page) -> list[Word]:
        assert self.ocr_pool is not None
        try:
            return await self.ocr_pool.words(page)
        except Exception as exc:  # a crashed or failing worker is the server's problem, not the client's
            logger.exception("ocr_failed", page=page.number)
            raise OcrError(OCR_FAILED, f"OCR failed on page {page.number}.", retryable=True) from exc

    async def analyze(
        self,
        data: bytes,
        options: AnalyzeOptions,
        on_page: PageHook | None = None,
        on_open: Callable[[int], None] | None = None,
        on_ocr: Callable[[int], None] | None = None,
    ) -> Analysis:
        if not self.ocr_pictures:
            options = dataclasses.replace(options, ocr_pictures=False)
        return await analyze_document(
            data,
            options,
            limits=self.limits,
            layout=self.layout,
            ocr=self._ocr if self.ocr_pool is not None else None,
            layout_batch=self.layout_batch,
            on_page=on_page,
            on_open=on_open,
            on_ocr=on_ocr,
        )

    def close(self) -> None:
        if self.ocr_pool is not None:
            self.ocr_pool.close()
