"""The engine contract, one suite for every engine: SGLang (through the fake server on loopback),
transformers (a tiny random GLM-OCR) and layout (the page's words and the schema, no model).
Engine-specific behaviour (retries, KV cache, ...) is tested beside each engine; this file is
what the extraction service relies on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from PIL import Image, ImageDraw

from app.documents.textmap import PageMap
from app.engines.base import Engine, EngineRequest, EngineResult
from app.engines.layout import LayoutEngine
from app.engines.sglang import SGLangConfig, SGLangEngine
from app.extraction.prompt import extraction_prompt
from app.extraction.spans import leaf_spans, token_evidence
from app.pages import Word
from app.schema.decoding import decoding_schema
from tests.fake_sglang import FakeSGLang
from tests.helpers import leaf_pointers

REGISTERED: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "maxLength": 6},
        "currency": {"enum": ["EUR", "ü€中"]},
        "total": {"type": "integer", "minimum": 0},
        "lines": {
            "type": "array",
            "maxItems": 1,
            "items": {"type": "object", "properties": {"paid": {"type": "boolean"}}},
        },
    },
    "required": ["invoice_number", "total"],
}


def page() -> Image.Image:
    image = Image.new("RGB", (112, 140), "white")
    ImageDraw.Draw(image).text((6, 8), "INV-42  Total 99 EUR", fill="black")
    return image


def page_map() -> PageMap:
    """The words drawn on ``page()``, as the text map has them (engines that read words need them)."""
    texts = ["INV-42", "Total", "99", "EUR"]
    words = [Word(t, (0.05 + 0.2 * i, 0.06, 0.2 + 0.2 * i, 0.12), 1.0, "pdf", 0) for i, t in enumerate(texts)]
    return PageMap(1, 112, 140, "born_digital", words)


def request(max_tokens: int) -> EngineRequest:
    return EngineRequest(
        page(),
        extraction_prompt(REGISTERED),
        grammar(),
        max_tokens=max_tokens,
        schema=REGISTERED,
        page_map=page_map(),
    )


def grammar() -> dict[str, Any]:
    """Production's decoding schema, with string lengths bounded so a random model finishes."""
    schema = decoding_schema(REGISTERED)
    schema["properties"]["invoice_number"]["maxLength"] = 6
    return schema


@pytest.fixture(params=["sglang", "transformers", "layout"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    if request.param == "layout":
        layout = LayoutEngine()
        yield layout
        await layout.aclose()
        return
    if request.param == "sglang":
        with FakeSGLang() as fake:
            sglang = SGLangEngine(SGLangConfig(base_url=fake.url, max_retries=0))
            yield sglang
            await sglang.aclose()
        return
    pytest.importorskip("torch")
    pytest.importorskip("llguidance")
    from app.engines.transformers_engine import TransformersConfig, TransformersEngine
    from tests.tiny_glm import build_tiny_glm

    model, processor = build_tiny_glm()
    local = TransformersEngine.from_components(model, processor, TransformersConfig(model="tiny-glm-ocr"))
    yield local
    await local.aclose()


def check_offsets(result: EngineResult) -> None:
    encoded = result.text.encode("utf-8")
    assert result.tokens, "a generation has tokens"
    assert result.tokens[0].start == 0 and result.tokens[-1].end == len(encoded)
    for before, after in zip(result.tokens, result.tokens[1:], strict=False):
        assert before.end == after.start and before.start <= before.end
    assert all(t.logprob <= 1e-6 for t in result.tokens)
    assert result.usage.completion_tokens >= len(result.tokens) and result.usage.prompt_tokens > 0


@pytest.mark.slow
async def test_generation_follows_the_contract(engine: Engine) -> None:
    schema = grammar()
    result = await engine.generate(request(256))
    assert result.finish_reason in ("stop", "length") and result.model
    check_offsets(result)
    if result.finish_reason == "stop":
        value = json.loads(result.text)
        Draft202012Validator(schema).validate(value)
        spans = leaf_spans(result.text)
        assert set(spans) == set(leaf_pointers(value))
        assert all(token_evidence(span, result.tokens) is not None for span in spans.values())


async def test_truncation_is_reported_as_length(engine: Engine) -> None:
    result = await engine.generate(request(3))
    assert result.finish_reason == "length"
    check_offsets(result)


async def test_readiness_names_the_engine(engine: Engine) -> None:
    details = await engine.ready()
    assert details["engine"] == engine.name
