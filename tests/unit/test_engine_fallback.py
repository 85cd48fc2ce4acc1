"""``DOCEXTRACT_ENGINE_FALLBACK=layout``: which failures fall back, what the result says, and how
``auto`` treats a configured SGLang server that is not up yet."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from app.engines.base import Engine, EngineError, EngineRequest, EngineResult, Usage
from app.engines.factory import build_engine
from app.engines.fallback import FallbackEngine
from app.lib.settings import EngineSettings

REQUEST = EngineRequest(Image.new("RGB", (4, 4)), "prompt", {"type": "object"})


class Stub(Engine):
    def __init__(self, name: str, error: EngineError | None = None) -> None:
        self.name = self.model = name
        self.error = error
        self.calls = 0

    async def generate(self, request: EngineRequest) -> EngineResult:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return EngineResult("{}", [], "stop", Usage(1, 1), self.model)

    async def ready(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"engine": self.name}


DOWN = EngineError("connection refused", category="engine_unreachable", retryable=True)
BAD_SCHEMA = EngineError("grammar", category="schema_not_supported", retryable=False)


async def test_an_unavailable_primary_falls_back_and_says_so() -> None:
    primary, layout = Stub("sglang", DOWN), Stub("layout")
    result = await FallbackEngine(primary, layout).generate(REQUEST)
    assert result.model == "layout" and result.fallback_from == "sglang"
    assert primary.calls == layout.calls == 1
    assert (await FallbackEngine(primary, layout).ready())["primary_unavailable"] == "connection refused"


async def test_a_healthy_primary_is_used_and_permanent_errors_do_not_fall_back() -> None:
    healthy, layout = Stub("sglang"), Stub("layout")
    result = await FallbackEngine(healthy, layout).generate(REQUEST)
    assert result.fallback_from is None and layout.calls == 0
    with pytest.raises(EngineError, match="grammar"):
        await FallbackEngine(Stub("sglang", BAD_SCHEMA), layout).generate(REQUEST)
    assert layout.calls == 0


def test_auto_keeps_a_configured_sglang_server_that_is_not_up_yet() -> None:
    unreachable = "http://127.0.0.1:9"  # discard port: nothing answers
    engine = build_engine(EngineSettings(engine="auto", sglang_url=unreachable))
    assert engine is not None and engine.name == "sglang"
    wrapped = build_engine(EngineSettings(engine="auto", sglang_url=unreachable, engine_fallback="layout"))
    assert isinstance(wrapped, FallbackEngine) and wrapped.fallback.name == "layout"
    assert build_engine(EngineSettings(engine="layout", engine_fallback="layout")).name == "layout"
