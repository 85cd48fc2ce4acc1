"""The engine when none is configured: a null object, so the rest of the code always holds an
``Engine``. Extraction answers 503 engine-unavailable (``Extractor.require_engine`` says what to
set before any work is done); ``/ready`` reports the engine as not configured."""

from __future__ import annotations

from typing import Any

from app.engines.base import Engine, EngineError, EngineRequest, EngineResult

NOT_CONFIGURED = (
    "No extraction engine is configured: set DOCEXTRACT_SGLANG_URL (or DOCEXTRACT_ENGINE=transformers)."
)


class UnavailableEngine(Engine):
    name = "unavailable"
    model = "none"

    def __init__(self, reason: str = NOT_CONFIGURED) -> None:
        self.reason = reason

    async def generate(self, request: EngineRequest) -> EngineResult:
        raise EngineError(self.reason, category="not_configured", retryable=True)

    async def ready(self) -> dict[str, Any]:
        raise EngineError(self.reason, category="not_configured", retryable=True)
