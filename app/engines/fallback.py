"""GLM-OCR first; the layout engine when GLM-OCR cannot be reached (``DOCEXTRACT_ENGINE_FALLBACK=layout``).

Off by default: a finance team should know when values come from the weaker engine. When it is on,
a page the primary engine could not read (a retryable failure left after its own retries: server
down, overloaded, timing out) is read by the fallback instead, and the page's ``model`` in the result
names the engine that read it; the extraction service routes such results to review.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog

from app.engines.base import Engine, EngineError, EngineRequest, EngineResult

logger = structlog.get_logger(__name__)


class FallbackEngine(Engine):
    def __init__(self, primary: Engine, fallback: Engine) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.model = primary.model
        self.needs_image = primary.needs_image

    async def generate(self, request: EngineRequest) -> EngineResult:
        try:
            return await self.primary.generate(request)
        except EngineError as exc:
            if not exc.retryable:
                raise
            logger.warning(
                "engine_fallback", primary=self.primary.name, category=exc.category, page=request.page
            )
            result = await self.fallback.generate(request)
            return dataclasses.replace(result, fallback_from=self.primary.name)

    async def ready(self) -> dict[str, Any]:
        """Ready while either engine is: the fallback keeps extraction working."""
        try:
            return await self.primary.ready()
        except EngineError as exc:
            details = await self.fallback.ready()
            return {**details, "primary_unavailable": str(exc)}

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()
