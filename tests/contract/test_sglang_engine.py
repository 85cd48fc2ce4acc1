"""The SGLang engine against a strict fake SGLang server on loopback (tests/fake_sglang.py).

What a GPU run would show about the real server is pinned here in the fake: the request shape SGLang's
``ChatCompletionRequest`` takes, its response and error shapes, and its lossy ``bytes`` for tokens that
split a character.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from PIL import Image

from app.engines.base import EngineError, EngineRequest, EngineResult
from app.engines.sglang import SGLangConfig, SGLangEngine, align_tokens, encode_image
from tests.fake_sglang import (
    FakeSGLang,
    delay,
    drop,
    error_body,
    grammar_error,
    instance_for,
    respond,
    split_tokens,
    status,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "issue_date": {"type": ["string", "null"], "format": "date"},
        "total": {"type": "number"},
        "currency": {"enum": ["EUR", "USD"]},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "quantity": {"type": "integer"}},
            },
        },
        "paid": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
    },
}
NON_ASCII = json.dumps(
    {"supplier": "Müller GmbH \u2013 5 €", "address": "東京都港区芝公園 4-2-8", "note": "ß😀"},
    ensure_ascii=False,
    separators=(",", ":"),
)

EngineFactory = Callable[..., SGLangEngine]


@pytest.fixture
def fake() -> Iterator[FakeSGLang]:
    with FakeSGLang() as server:
        yield server


@pytest.fixture
async def make_engine() -> AsyncIterator[EngineFactory]:
    """Engines with fast backoff (tests measure retries, not patience), closed after the test."""
    engines: list[SGLangEngine] = []

    def make(url: str, **overrides: Any) -> SGLangEngine:
        settings: dict[str, Any] = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}
        settings.update(overrides)
        engine = SGLangEngine(SGLangConfig(base_url=url, **settings))
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.aclose()


def page(width: int = 640, height: int = 480, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (width, height), "white" if mode != "RGBA" else (0, 0, 0, 0))


def request_for(image: Image.Image | None = None, max_tokens: int = 512) -> EngineRequest:
    return EngineRequest(
        image=image or page(),
        prompt="请按下列JSON格式输出图中信息:\n{}",
        decoding_schema=SCHEMA,
        max_tokens=max_tokens,
    )


def decoded_image(body: dict[str, Any]) -> Image.Image:
    url: str = body["messages"][0]["content"][0]["image_url"]["url"]
    return from_data_url(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def assert_covers(result: EngineResult) -> None:
    """Token offsets are contiguous and cover the UTF-8 text exactly."""
    data = result.text.encode("utf-8")
    assert result.tokens, "no tokens"
    assert result.tokens[0].start == 0
    for before, after in zip(result.tokens, result.tokens[1:], strict=False):
        assert before.end == after.start
    assert all(t.end > t.start for t in result.tokens)
    assert result.tokens[-1].end == len(data)


# -- the request ----------------------------------------------------------------------------------


async def test_request_has_sglang_shape(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    engine = make_engine(fake.url)
    image = page(700, 500)  # large enough to be encoded off the event loop
    result = await engine.generate(request_for(image, max_tokens=777))

    assert len(fake.requests) == 1
    body = fake.requests[0]
    assert set(body) == {
        "model",
        "messages",
        "response_format",
        "temperature",
        "max_tokens",
        "logprobs",
        "stream",
    }
    assert body["model"] == "glm-ocr"
    assert body["temperature"] == 0 and body["max_tokens"] == 777
    assert body["logprobs"] is True and body["stream"] is False
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "extraction", "schema": SCHEMA},
    }
    (message,) = body["messages"]
    assert message["role"] == "user"
    image_part, text_part = message["content"]
    assert image_part["type"] == "image_url" and set(image_part) == {"type", "image_url"}
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert text_part == {"type": "text", "text": request_for().prompt}
    sent = decoded_image(body)
    assert sent.format == "PNG" and sent.size == (700, 500)
    assert fake.headers[0]["content-type"] == "application/json"
    assert "authorization" not in fake.headers[0]

    document = json.loads(result.text)
    assert list(document) == list(SCHEMA["properties"])  # the fake answers in schema order
    assert result.finish_reason == "stop"
    assert result.model == "glm-ocr"
    assert result.usage.prompt_tokens > 700 * 500 // 784
    assert result.usage.completion_tokens == len(result.tokens) + 1  # + the stop token SGLang reports
    assert_covers(result)


async def test_options_jpeg_top_logprobs_api_key(make_engine: EngineFactory) -> None:
    with FakeSGLang(api_key="sk-test") as fake:
        engine = make_engine(fake.url, image_format="jpeg", top_logprobs=3, api_key="sk-test")
        await engine.generate(request_for(page(40, 30)))  # small: encoded inline
        body = fake.requests[0]
        assert body["top_logprobs"] == 3
        assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert decoded_image(body).size == (40, 30)
        assert fake.headers[0]["authorization"] == "Bearer sk-test"

        unauthorised = make_engine(fake.url)
        with pytest.raises(EngineError) as caught:
            await unauthorised.generate(request_for())
        assert (caught.value.category, caught.value.retryable, caught.value.status) == (
            "engine_auth",
            False,
            401,
        )


def from_data_url(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_encode_image_flattens_transparency_onto_white() -> None:
    image = from_data_url(encode_image(page(8, 8, "RGBA"), "png"))
    assert image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)
    assert encode_image(page(8, 8, "L"), "jpeg").startswith("data:image/jpeg;base64,")


def test_encode_image_sends_gray_pages_as_gray_losslessly() -> None:
    gray = Image.radial_gradient("L").resize((64, 48)).convert("RGB")
    sent = from_data_url(encode_image(gray, "png"))
    assert sent.mode == "L" and sent.convert("RGB").tobytes() == gray.tobytes()
    colour = gray.copy()
    colour.putpixel((3, 3), (200, 10, 10))
    sent = from_data_url(encode_image(colour, "png"))
    assert sent.mode == "RGB" and sent.tobytes() == colour.tobytes()


# -- byte offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("byte_mode", ["sglang", "exact"])
async def test_byte_offsets_cover_non_ascii_text(byte_mode: str, make_engine: EngineFactory) -> None:
    with FakeSGLang(byte_mode=byte_mode) as fake:  # type: ignore[arg-type]
        fake.script(respond(NON_ASCII))
        result = await make_engine(fake.url).generate(request_for())
    assert result.text == NON_ASCII
    assert_covers(result)
    data = NON_ASCII.encode("utf-8")
    chunks = split_tokens(NON_ASCII)
    assert any(len(c) == 1 and c[0] >= 0x80 for c in chunks), "the fake must split some characters"
    assert [data[t.start : t.end] for t in result.tokens] == chunks
    assert result.extra["offsets"] == ("estimated" if byte_mode == "sglang" else "exact")
    assert result.extra["skipped_tokens"] == 1 and result.extra["matched_stop"] == 59253
    assert [t.token for t in result.tokens] == [c.decode("utf-8", errors="replace") for c in chunks]


def test_align_lossy_runs_as_rust_decodes_them() -> None:
    """HF tokenizers decode an incomplete sequence to a single U+FFFD (Rust's from_utf8_lossy)."""
    text = '"中a"'
    fffd = list("\ufffd".encode())
    entries = [
        {"token": '"', "bytes": [34], "logprob": -0.1},
        {"token": "\ufffd", "bytes": fffd, "logprob": -0.2},  # e4 b8
        {"token": "\ufffda", "bytes": [*fffd, 97], "logprob": -0.3},  # ad + a
        {"token": '"', "bytes": None, "logprob": None},  # bytes null: the token's own; logprob null: -inf
        {"token": "<|endoftext|>", "bytes": list(b"<|endoftext|>"), "logprob": 0.0},
    ]
    tokens, exact, skipped = align_tokens(text, entries)
    assert [(t.start, t.end) for t in tokens] == [(0, 1), (1, 3), (3, 5), (5, 6)]
    assert not exact and skipped == 1
    assert tokens[-1].logprob == float("-inf")


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ('{"a":1}', [{"token": '{"a":2}', "bytes": list(b'{"a":2}'), "logprob": 0.0}]),
        ('{"a":1}', [{"token": '{"a"', "bytes": list(b'{"a"'), "logprob": 0.0}]),
        (
            '{"a":"中"}',
            [
                {"token": '{"a":"', "logprob": 0},
                {"token": "\ufffd", "logprob": 0},
                {"token": "x", "logprob": 0},
            ],
        ),
        ('{"a":1}', [{"token": '{"a":1}', "bytes": [1000], "logprob": 0.0}]),
    ],
)
def test_align_rejects_tokens_that_do_not_spell_the_text(text: str, entries: list[dict[str, Any]]) -> None:
    with pytest.raises(EngineError) as caught:
        align_tokens(text, entries)
    assert (caught.value.category, caught.value.retryable) == ("engine_protocol", False)


async def test_mismatched_logprobs_are_a_protocol_error(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    completion = fake.completion(
        {"model": "glm-ocr", "messages": [{"role": "user", "content": "x"}], "logprobs": True},
        respond('{"a":"b"}'),
    )
    completion["choices"][0]["message"]["content"] = '{"a":"c"}'
    fake.script(status(200, completion))
    with pytest.raises(EngineError) as caught:
        await make_engine(fake.url).generate(request_for())
    assert (caught.value.category, caught.value.retryable) == ("engine_protocol", False)
    assert len(fake.requests) == 1


# -- finish reasons -------------------------------------------------------------------------------


async def test_length_is_returned_for_the_caller_to_classify(
    fake: FakeSGLang, make_engine: EngineFactory
) -> None:
    engine = make_engine(fake.url)
    fake.script(respond('{"invoice_number":"INV-', finish_reason="length"))
    result = await engine.generate(request_for())
    assert result.finish_reason == "length" and result.text == '{"invoice_number":"INV-'
    assert "matched_stop" not in result.extra
    assert_covers(result)

    truncated = await engine.generate(request_for(max_tokens=5))  # the fake honours max_tokens
    assert truncated.finish_reason == "length"
    assert len(truncated.tokens) <= 5
    assert truncated.usage.completion_tokens == len(truncated.tokens)


# -- retries --------------------------------------------------------------------------------------


async def test_retries_503_then_succeeds(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    fake.script(status(503))
    result = await make_engine(fake.url).generate(request_for())
    assert json.loads(result.text)
    assert [entry[2] for entry in fake.log] == [503, 200]


async def test_honours_retry_after(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    fake.script(status(429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    await make_engine(fake.url).generate(request_for(page(20, 20)))
    assert time.monotonic() - started >= 0.95
    assert len(fake.requests) == 2


async def test_gives_up_after_max_retries(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    fake.script(*(status(503) for _ in range(5)))
    with pytest.raises(EngineError) as caught:
        await make_engine(fake.url, max_retries=2).generate(request_for())
    error = caught.value
    assert (error.category, error.retryable, error.status) == ("engine_unavailable", True, 503)
    assert len(fake.requests) == 3


async def test_retries_a_dropped_connection(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    fake.script(drop())
    result = await make_engine(fake.url).generate(request_for())
    assert json.loads(result.text)
    assert [entry[2] for entry in fake.log] == [None, 200]


async def test_retries_a_timeout(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    fake.script(delay(10.0))
    result = await make_engine(fake.url, timeout_s=0.5).generate(request_for())
    assert json.loads(result.text)
    assert len(fake.requests) == 2
    assert [entry[2] for entry in fake.log] == [200]  # the second attempt's: the first still hangs


async def test_unreachable_server_is_unavailable(make_engine: EngineFactory) -> None:
    engine = make_engine(f"http://127.0.0.1:{free_port()}", max_retries=1)
    with pytest.raises(EngineError) as caught:
        await engine.generate(request_for())
    assert (caught.value.category, caught.value.retryable) == ("engine_unavailable", True)


async def test_grammar_error_is_schema_not_supported_and_not_retried(
    fake: FakeSGLang, make_engine: EngineFactory
) -> None:
    fake.script(grammar_error())
    with pytest.raises(EngineError) as caught:
        await make_engine(fake.url).generate(request_for())
    error = caught.value
    assert (error.category, error.retryable, error.status) == ("schema_not_supported", False, 400)
    assert "Failed to compile json grammar" in str(error)
    assert len(fake.requests) == 1


async def test_other_400_is_rejected_and_not_retried(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    fake.script(
        status(400, error_body("The input (130000 tokens) is longer than the model's context length"))
    )
    with pytest.raises(EngineError) as caught:
        await make_engine(fake.url).generate(request_for())
    error = caught.value
    assert (error.category, error.retryable, error.status) == ("engine_rejected", False, 400)
    assert "context length" in str(error)
    assert len(fake.requests) == 1


# -- in-flight limit ------------------------------------------------------------------------------


async def test_in_flight_limit_holds_across_callers(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    engine = make_engine(fake.url, max_in_flight=2)
    fake.script(*(delay(0.3) for _ in range(6)))
    started = time.monotonic()
    results = await asyncio.gather(*(engine.generate(request_for(page(20, 20))) for _ in range(6)))
    assert len(results) == 6
    assert fake.max_in_flight == 2
    assert time.monotonic() - started >= 0.85  # three waves of two


# -- readiness ------------------------------------------------------------------------------------


async def test_ready_against_glm_ocr(fake: FakeSGLang, make_engine: EngineFactory) -> None:
    details = await make_engine(fake.url).ready()
    assert details["served_models"] == ["glm-ocr"]
    assert details["model_path"] == "zai-org/GLM-OCR" and details["model_type"] == "glm_ocr"


async def test_ready_names_the_mismatch(make_engine: EngineFactory) -> None:
    with (
        FakeSGLang(served_model="qwen2-vl", model_path="Qwen/Qwen2-VL-2B") as fake,
        pytest.raises(EngineError) as caught,
    ):
        await make_engine(fake.url).ready()
    message = str(caught.value)
    assert caught.value.category == "engine_unavailable"
    assert "qwen2-vl" in message and "'glm-ocr'" in message and "--served-model-name glm-ocr" in message


async def test_ready_needs_the_api_key(make_engine: EngineFactory) -> None:
    with FakeSGLang(api_key="sk-test") as fake:
        assert (await make_engine(fake.url, api_key="sk-test").ready())["served_models"] == ["glm-ocr"]
        with pytest.raises(EngineError) as caught:
            await make_engine(fake.url).ready()
    assert (caught.value.category, caught.value.status) == ("engine_auth", 401)


async def test_ready_fails_when_unhealthy_or_unreachable(make_engine: EngineFactory) -> None:
    with FakeSGLang(health_status=503) as fake, pytest.raises(EngineError) as unhealthy:
        await make_engine(fake.url).ready()
    assert unhealthy.value.status == 503 and "/health" in str(unhealthy.value)
    with pytest.raises(EngineError) as unreachable:
        await make_engine(f"http://127.0.0.1:{free_port()}").ready()
    assert (unreachable.value.category, unreachable.value.retryable) == ("engine_unavailable", True)
    assert "unreachable" in str(unreachable.value)


# -- the fake is strict ---------------------------------------------------------------------------


def valid_body() -> dict[str, Any]:
    return {
        "model": "glm-ocr",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": encode_image(page(32, 32))}},
                    {"type": "text", "text": "Text Recognition:"},
                ],
            }
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}},
        "temperature": 0,
        "max_tokens": 64,
        "logprobs": True,
        "top_logprobs": 2,
    }


def with_image_url(url: str) -> dict[str, Any]:
    body = valid_body()
    body["messages"][0]["content"][0]["image_url"]["url"] = url
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({k: v for k, v in valid_body().items() if k != "model"}, "model"),
        (with_image_url("/etc/passwd"), "data:image"),
        (with_image_url("https://example.com/invoice.png"), "data:image"),
        (with_image_url("data:image/png;base64,bm90IGFuIGltYWdl"), "not a readable image"),
        ({**valid_body(), "max_tokens": 0}, "max_tokens"),
        ({**valid_body(), "max_token": 64}, "max_token"),
        ({**valid_body(), "logprobs": "yes"}, "logprobs"),
        (
            {**valid_body(), "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "schema",
        ),
    ],
)
async def test_fake_rejects_malformed_requests(fake: FakeSGLang, body: dict[str, Any], expected: str) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()
    assert set(error) == {"object", "message", "type", "param", "code"}
    assert (error["object"], error["type"], error["param"], error["code"]) == (
        "error",
        "BadRequestError",
        None,
        400,
    )
    assert expected in error["message"]


async def test_fake_answers_in_sglang_shape(fake: FakeSGLang) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        response = await client.post("/v1/chat/completions", json=valid_body())
        health = await client.get("/health")
        info = (await client.get("/model_info")).json()
        models = (await client.get("/v1/models")).json()
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"id", "object", "created", "model", "choices", "usage", "metadata"}
    assert payload["object"] == "chat.completion" and payload["model"] == "glm-ocr"
    (choice,) = payload["choices"]
    assert set(choice) == {"index", "message", "logprobs", "finish_reason", "matched_stop"}
    assert set(choice["message"]) == {"role", "content", "reasoning_content", "tool_calls"}
    entry = choice["logprobs"]["content"][0]
    assert set(entry) == {"token", "bytes", "logprob", "top_logprobs"}
    assert len(entry["top_logprobs"]) == 2 and set(entry["top_logprobs"][0]) == {"token", "bytes", "logprob"}
    assert set(payload["usage"]) >= {
        "prompt_tokens",
        "total_tokens",
        "completion_tokens",
        "prompt_tokens_details",
    }
    assert health.status_code == 200 and health.content == b""
    assert info["model_path"] == "zai-org/GLM-OCR" and "served_model_name" not in info
    assert models["data"][0]["id"] == "glm-ocr"


@pytest.mark.parametrize(
    "schema",
    [
        SCHEMA,
        {
            "$defs": {"money": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5}},
            "type": "object",
            "properties": {
                "total": {"$ref": "#/$defs/money"},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 2},
                "pair": {"type": "array", "prefixItems": [{"type": "integer", "minimum": 7}, {"const": "x"}]},
                "party": {
                    "allOf": [
                        {"type": "object", "properties": {"name": {"type": "string", "minLength": 12}}},
                        {"properties": {"vat_id": {"type": ["null", "string"], "format": "email"}}},
                    ]
                },
            },
        },
    ],
)
def test_fake_generates_valid_documents(schema: dict[str, Any]) -> None:
    jsonschema.validate(instance_for(schema), schema, format_checker=jsonschema.FormatChecker())


async def test_fake_answer_hook(make_engine: EngineFactory) -> None:
    with FakeSGLang(
        answer=lambda body: json.dumps({"prompt": body["messages"][0]["content"][1]["text"]})
    ) as fake:
        result = await make_engine(fake.url).generate(request_for())
    assert json.loads(result.text) == {"prompt": request_for().prompt}
