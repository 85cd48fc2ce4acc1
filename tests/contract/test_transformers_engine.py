"""The transformers engine against the engine contract, on a tiny random GLM-OCR built in code.

Random weights make the values meaningless; what is checked is the contract: text and byte offsets,
finish reasons, usage, log-probabilities after the mask computed on the KV cache exactly as a full
forward pass would, schema-valid output for any schema the grammar takes, and loading from a folder.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from app.engines.base import EngineError, EngineRequest, EngineResult  # noqa: E402
from app.engines.constrained import GrammarCompiler  # noqa: E402
from app.engines.transformers_engine import TransformersConfig, TransformersEngine, assemble  # noqa: E402
from app.extraction.spans import leaf_spans, token_evidence  # noqa: E402
from tests.helpers import leaf_pointers  # noqa: E402
from tests.tiny_glm import build_tiny_glm  # noqa: E402
from tests.webhook_receiver import eventually  # noqa: E402

PROMPT = "请按下列JSON格式输出图中信息:"


def obj(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SCHEMA = obj(
    invoice_number={"type": ["string", "null"], "maxLength": 6},
    total={"type": ["integer", "null"], "minimum": 0, "maximum": 999},
    currency={"enum": ["EUR", "ü€中", None]},
)


def page(width: int = 112, height: int = 140) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((6, 8), "INV-42", fill="black")
    draw.text((6, 40), "Total 99 EUR", fill="black")
    return image


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    return build_tiny_glm()


@pytest.fixture(scope="module")
def engine(tiny: tuple[Any, Any]) -> TransformersEngine:
    model, processor = tiny
    return TransformersEngine.from_components(model, processor, TransformersConfig(model="tiny-glm-ocr"))


def check_contract(result: EngineResult, max_tokens: int) -> None:
    """Offsets tile the UTF-8 text; each token's bytes are its slice; usage counts what was sampled."""
    raw = result.text.encode("utf-8")
    position = 0
    for token in result.tokens:
        assert token.start == position
        assert token.end > token.start
        assert token.logprob <= 0.0
        position = token.end
    assert position == len(raw)
    assert result.usage.completion_tokens in (len(result.tokens), len(result.tokens) + 1)
    assert result.usage.completion_tokens <= max_tokens
    if result.finish_reason == "length":
        assert result.usage.completion_tokens == max_tokens


async def test_contract(engine: TransformersEngine, tiny: tuple[Any, Any]) -> None:
    result = await engine.generate(EngineRequest(page(), PROMPT, SCHEMA, max_tokens=128))
    check_contract(result, 128)
    assert result.finish_reason == "stop"
    assert result.model == "tiny-glm-ocr"
    Draft202012Validator(SCHEMA).validate(json.loads(result.text))
    _, processor = tiny
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.startswith("[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>请按")
    assert text.endswith("<|assistant|>\n")
    prompt_ids = processor(text=[text], images=[page()], return_tensors="pt")["input_ids"]
    assert result.usage.prompt_tokens == prompt_ids.shape[1]
    assert (await engine.ready())["loaded"] is True


async def test_length_when_max_tokens_is_small(engine: TransformersEngine) -> None:
    result = await engine.generate(EngineRequest(page(), PROMPT, SCHEMA, max_tokens=3))
    assert result.finish_reason == "length"
    assert result.usage.completion_tokens == 3
    check_contract(result, 3)
    assert result.text.startswith('{"')


async def test_multibyte_characters_split_across_tokens(engine: TransformersEngine) -> None:
    """The tiny vocabulary has no token for ü or 中: their bytes come one token at a time."""
    schema = obj(name={"enum": ["ü€中ü"]})
    result = await engine.generate(EngineRequest(page(), PROMPT, schema, max_tokens=64))
    assert result.text == '{"name":"ü€中ü"}'
    check_contract(result, 64)
    assert any("\ufffd" in t.token for t in result.tokens)  # a token holding part of a character
    assert all(t.logprob == pytest.approx(0.0, abs=1e-6) for t in result.tokens)  # all forced


def test_assemble_drops_a_cut_character() -> None:
    text, spans = assemble([b'{"a":"', "ü".encode()[:1]])
    assert text == '{"a":"'
    assert spans == [('{"a":"', 0, 6)]
    text, spans = assemble([b"x", "€".encode()[:2], "€".encode()[2:], b"y"])
    assert text == "x€y"
    assert [(s, e) for _, s, e in spans] == [(0, 1), (1, 3), (3, 4), (4, 5)]


async def test_logprobs_equal_a_full_forward_pass(tiny: tuple[Any, Any]) -> None:
    """Recompute every step without the KV cache: the prompt plus the tokens so far in one forward pass,
    the repetition penalty over the generated tokens only, the grammar mask, log_softmax. The engine's
    tokens must be the argmax and its log-probabilities equal (cache, M-RoPE positions, penalty, mask)."""
    model, processor = tiny
    config = TransformersConfig(repetition_penalty=1.3)
    engine = TransformersEngine.from_components(model, processor, config)
    image = page()
    result = await engine.generate(EngineRequest(image, PROMPT, SCHEMA, max_tokens=24))
    ids = result.extra["token_ids"]
    assert len(ids) == len(result.tokens)
    assert engine._loaded is not None
    matcher = engine._loaded.compiler.compile(SCHEMA).matcher()
    inputs = engine._inputs(engine._loaded, EngineRequest(image, PROMPT, SCHEMA))
    generated: list[int] = []
    with torch.inference_mode():
        for token, reported in zip(ids, result.tokens, strict=True):
            extra = torch.tensor([generated], dtype=torch.long)
            full = {
                **inputs,
                "input_ids": torch.cat([inputs["input_ids"], extra], dim=1),
                "attention_mask": torch.ones(
                    1, inputs["input_ids"].shape[1] + len(generated), dtype=torch.long
                ),
                "mm_token_type_ids": torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(extra)], dim=1),
            }
            logits = model(**full, use_cache=False).logits[0, -1].float()
            if generated:
                seen = torch.tensor(sorted(set(generated)))
                scores = logits[seen]
                logits[seen] = torch.where(scores < 0, scores * 1.3, scores / 1.3)
            logprobs = torch.log_softmax(logits.masked_fill(~matcher.allowed_mask(), float("-inf")), dim=0)
            assert int(torch.argmax(logprobs)) == token
            assert float(logprobs[token]) == pytest.approx(reported.logprob, abs=1e-4)
            matcher.consume(token)
            generated.append(token)


async def test_concurrent_calls_are_serialised(engine: TransformersEngine) -> None:
    requests = [EngineRequest(page(112 + 28 * i, 140), PROMPT, SCHEMA, max_tokens=48) for i in range(3)]
    together = await asyncio.gather(*(engine.generate(r) for r in requests))
    one_by_one = [await engine.generate(r) for r in requests]
    assert [r.text for r in together] == [r.text for r in one_by_one]
    assert [r.tokens for r in together] == [r.tokens for r in one_by_one]


async def test_cancelled_generation_stops_and_frees_the_model(engine: TransformersEngine) -> None:
    """A free string never closes under random weights: only cancellation ends this one early."""
    endless = EngineRequest(page(), PROMPT, obj(text={"type": "string"}), max_tokens=1_000_000)
    task = asyncio.create_task(engine.generate(endless))
    await eventually(engine._generate_lock.locked, within_s=60)  # generating
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: not engine._generate_lock.locked(), within_s=60)  # stopped, model free
    result = await engine.generate(EngineRequest(page(), PROMPT, SCHEMA, max_tokens=64))
    assert result.finish_reason == "stop"


async def test_unsupported_schema_is_a_schema_error(engine: TransformersEngine) -> None:
    with pytest.raises(EngineError) as caught:
        await engine.generate(EngineRequest(page(), PROMPT, {"type": "array", "uniqueItems": True}))
    assert caught.value.category == "schema_not_supported"
    assert caught.value.retryable is False


async def test_loads_from_a_local_folder(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    engine = TransformersEngine(TransformersConfig(model=str(tmp_path), local_files_only=True))
    assert (await engine.ready())["loaded"] is False
    result = await engine.generate(EngineRequest(page(), PROMPT, SCHEMA, max_tokens=64))
    check_contract(result, 64)
    assert result.model == str(tmp_path)
    assert (await engine.ready())["loaded"] is True
    reference = TransformersEngine.from_components(model, processor)
    assert (
        result.text == (await reference.generate(EngineRequest(page(), PROMPT, SCHEMA, max_tokens=64))).text
    )
    await engine.aclose()


async def test_missing_model_is_unavailable(tmp_path: Path) -> None:
    engine = TransformersEngine(TransformersConfig(model=str(tmp_path / "nothing-here")))
    with pytest.raises(EngineError) as caught:
        await engine.generate(EngineRequest(page(), PROMPT, SCHEMA))
    assert caught.value.category == "model_unavailable"
    with pytest.raises(EngineError):
        await engine.ready()


# -- property: any schema the grammar takes -> a stopped generation is valid JSON for it ----------

NAME_CHARS = "abcxyz_üé中€"
DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


def nullable(leaf: dict[str, Any], style: int) -> dict[str, Any]:
    """Every leaf may be null, as in production's decoding schema, either way JSON Schema allows."""
    if "enum" in leaf:
        return {**leaf, "enum": [*leaf["enum"], None]}
    if style == 0 and isinstance(leaf.get("type"), str):
        return {**leaf, "type": [leaf["type"], "null"]}
    return {"anyOf": [leaf, {"type": "null"}]}


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    """Leaves whose JSON is bounded: a random model never chooses to close a free string or stop
    adding digits, so strings carry maxLength and non-integers a multipleOf."""
    kind = draw(st.sampled_from(["string", "date", "enum", "integer", "number", "boolean"]))
    leaf: dict[str, Any]
    if kind == "string":
        leaf = {"type": "string", "maxLength": draw(st.integers(0, 6))}
    elif kind == "date":
        leaf = {"type": "string", "format": "date"}
    elif kind == "enum":
        values = st.text(alphabet="abü€中 -", min_size=1, max_size=4) | st.just("ü€中")
        leaf = {"enum": draw(st.lists(values, min_size=1, max_size=3, unique=True))}
    elif kind == "integer":
        low = draw(st.integers(-50, 50))
        leaf = {"type": "integer", "minimum": low, "maximum": low + draw(st.integers(0, 500))}
    elif kind == "number":
        low = draw(st.integers(-20, 20))
        step = draw(st.sampled_from([0.5, 0.25]))
        leaf = {
            "type": "number",
            "minimum": low,
            "maximum": low + draw(st.integers(1, 100)),
            "multipleOf": step,
        }
    else:
        leaf = {"type": "boolean"}
    return nullable(leaf, draw(st.integers(0, 1)))


def objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=5)
    return st.dictionaries(names, children, min_size=1, max_size=3).map(lambda p: obj(**p))


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    arrays = objects(children).map(lambda item: {"type": "array", "items": item, "maxItems": 2})
    return objects(children) | arrays


def schemas() -> st.SearchStrategy[dict[str, Any]]:
    return objects(st.recursive(leaves(), containers, max_leaves=5))


def dates(schema: Any, value: Any) -> list[str]:
    """The strings in ``value`` that ``schema`` declares as format date."""
    if isinstance(schema, dict):
        if "anyOf" in schema:
            return [d for branch in schema["anyOf"] for d in dates(branch, value)]
        if schema.get("format") == "date" and isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [d for k, v in value.items() for d in dates(schema.get("properties", {}).get(k), v)]
        if isinstance(value, list):
            return [d for v in value for d in dates(schema.get("items"), v)]
    return []


def test_generated_schemas_give_valid_json(engine: TransformersEngine) -> None:
    """Over at least 30 generated schemas (nesting, arrays of objects, enums, bounded numbers, dates,
    nullable leaves, unicode names and values): every generation that stops is valid JSON valid against
    its schema, and most stop. The date format is checked against the grammar's own rule (calendar
    month lengths); leap years and year 0000 are left to jsonschema's format checker after decoding."""
    image = page()
    outcomes: dict[str, str] = {}

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(schemas())
    def run(schema: dict[str, Any]) -> None:
        result = asyncio.run(engine.generate(EngineRequest(image, PROMPT, schema, max_tokens=256)))
        check_contract(result, 256)
        outcomes[json.dumps(schema, ensure_ascii=False)] = result.finish_reason
        if result.finish_reason == "stop":
            value = json.loads(result.text)
            Draft202012Validator(schema).validate(value)
            assert all(DATE.match(d) for d in dates(schema, value)), result.text
            # Every leaf maps to the tokens that produced it (what field confidence is made of).
            spans = leaf_spans(result.text)
            assert set(spans) == set(leaf_pointers(value)), result.text
            assert all(token_evidence(span, result.tokens) is not None for span in spans.values())

    run()
    assert len(outcomes) >= 30
    stopped = sum(reason == "stop" for reason in outcomes.values())
    assert stopped >= 0.8 * len(outcomes), outcomes


def test_compiler_is_built_for_the_model_vocabulary(
    engine: TransformersEngine, tiny: tuple[Any, Any]
) -> None:
    model, processor = tiny
    assert engine._loaded is not None
    compiler: GrammarCompiler = engine._loaded.compiler
    assert compiler.vocab_size == model.get_output_embeddings().weight.shape[0]
    vocab = processor.tokenizer.get_vocab()
    assert compiler.stop_token_ids == {vocab["<|endoftext|>"], vocab["<|user|>"]}
