"""A strict fake of SGLang's HTTP API on loopback, for tests that cannot run the real server (no GPU).

    with FakeSGLang() as fake:                       # a real HTTP/1.1 server on 127.0.0.1:<free port>
        engine = SGLangEngine(SGLangConfig(base_url=fake.url))
        fake.script(status(503), respond('{"total": 5}'))   # optional: what the next requests get
        ...
        fake.requests[-1]                            # every /v1/chat/completions body, parsed

Without a script each valid request is answered with a deterministic JSON document valid against its
``response_format`` schema (see ``instance_for``), or with ``answer(request)`` when given. Requests are
validated the way SGLang's ``ChatCompletionRequest`` does, and more strictly: unknown fields, image
paths and http URLs are refused with SGLang's 400 error shape, naming the first problem only.

Shapes follow sgl-project/sglang ``python/sglang/srt/entrypoints/openai/protocol.py``
(``ChatCompletionResponse``, ``ChatCompletionTokenLogprob``, ``UsageInfo``, ``ErrorResponse``) and
``http_server.py`` (``/health``, ``/model_info``, ``/v1/models``). Like SGLang, each token's ``bytes`` is
``list(token.encode("utf-8"))`` of the token decoded on its own, so a token holding part of a multi-byte
character reads U+FFFD (``byte_mode="sglang"``); ``byte_mode="exact"`` sends the token's own bytes as
OpenAI does. The matched stop token (``<|user|>``) closes ``logprobs`` but not ``content``, as in SGLang.

A hand-written asyncio server (not uvicorn) so that ``drop()`` can close a connection without any
response, the way a crashing server does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import io
import itertools
import json
import math
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

from PIL import Image

DEFAULT_STRING = "Müller €"
"""Strings in generated documents: non-ASCII on purpose, so byte offsets are always exercised."""
GLM_OCR_STOP_TOKEN_ID = 59253
"""``<|user|>``, GLM-OCR's stop token, reported by SGLang as ``matched_stop``."""
STRUCTURAL = frozenset('{}[]:,"')

ByteMode = Literal["sglang", "exact"]

CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "response_format",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "max_tokens",
        "max_completion_tokens",
        "logprobs",
        "top_logprobs",
        "stream",
        "n",
        "seed",
        "stop",
        "stop_token_ids",
        "repetition_penalty",
        "frequency_penalty",
        "presence_penalty",
        "skip_special_tokens",
        "chat_template_kwargs",
        "rid",
        "user",
        "priority",
    }
)
"""Top-level fields SGLang's ChatCompletionRequest has and this project may send; anything else (a typo
such as ``max_token``) is refused, where SGLang would silently ignore it."""


# -- scripted behaviour ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Respond:
    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Status:
    code: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    seconds: float
    then: Action | None = None


@dataclass(frozen=True)
class Drop:
    pass


Action = Respond | Status | Delay | Drop


def respond(text: str, finish_reason: str = "stop") -> Respond:
    """Answer 200 with exactly this text (tokenised like any generation)."""
    return Respond(text, finish_reason)


def status(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Status:
    """Answer ``code``; ``body`` a dict (JSON), str or bytes, by default SGLang's error shape."""
    return Status(code, body, headers or {})


def delay(seconds: float, then: Action | None = None) -> Delay:
    """Wait, then do ``then`` (by default the usual generation): for timeouts and concurrency."""
    return Delay(seconds, then)


def drop() -> Drop:
    """Close the connection without a response, like a server that dies mid-request."""
    return Drop()


def grammar_error(detail: str = "Unsupported JSON schema keyword 'not'") -> Status:
    """SGLang's answer when its grammar backend cannot compile the schema."""
    return Status(400, error_body(f"Failed to compile json grammar: {detail}"))


def error_body(message: str, code: int = 400, err_type: str = "BadRequestError") -> dict[str, Any]:
    """SGLang's ``ErrorResponse``."""
    return {"object": "error", "message": message, "type": err_type, "param": None, "code": code}


# -- the server -----------------------------------------------------------------------------------

Reply = tuple[int, dict[str, str], bytes]


class FakeSGLang:
    """The fake server, on its own event loop in a daemon thread (safe to drive from any test).

    ``served_model``/``model_path``: what ``/v1/models`` and ``/model_info`` report. ``api_key``: require
    ``Authorization: Bearer`` as ``--api-key`` does (``/health`` stays open). ``byte_mode``: ``"sglang"``
    (U+FFFD bytes for split characters) or ``"exact"`` (OpenAI's). ``end_of_turn``: the stop token that
    ends ``logprobs`` when a generation stops (``None``: not reported). ``string_value``: the strings of
    generated documents. ``answer``: request body -> text, instead of generating from the schema.
    ``health_status``: what ``/health`` answers. ``check_images``: see the attribute.
    """

    def __init__(
        self,
        *,
        served_model: str = "glm-ocr",
        model_path: str = "zai-org/GLM-OCR",
        api_key: str | None = None,
        byte_mode: ByteMode = "sglang",
        end_of_turn: str | None = "<|user|>",
        string_value: str = DEFAULT_STRING,
        answer: Callable[[dict[str, Any]], str] | None = None,
        health_status: int = 200,
        has_image_understanding: bool = True,
        check_images: bool = True,
    ) -> None:
        self.served_model = served_model
        self.model_path = model_path
        self.api_key = api_key
        self.byte_mode: ByteMode = byte_mode
        self.end_of_turn = end_of_turn
        self.string_value = string_value
        self.answer = answer
        self.health_status = health_status
        self.has_image_understanding = has_image_understanding
        self.check_images = check_images
        """``False`` skips decoding images (the prefix is still checked): for client benchmarks, where
        decoding a page in the fake would cost more than the client being measured."""
        self.requests: list[dict[str, Any]] = []
        """Every chat request body that parsed as a JSON object, valid or not, in arrival order."""
        self.headers: list[dict[str, str]] = []
        """The headers of those requests (names lower-cased)."""
        self.log: list[tuple[str, str, int | None]] = []
        """``(method, path, status)`` of every request; status ``None`` when dropped."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most chat requests the server was handling at once."""
        self._script: deque[Action] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *actions: Action) -> None:
        """Queue what the next valid chat requests get, one action each; then back to generating."""
        self._script.extend(actions)

    # lifecycle

    def start(self) -> FakeSGLang:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._connection, "127.0.0.1", 0, limit=1 << 16)
                )
            except BaseException as exc:  # surfaced to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-sglang", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None or self._thread is None:
            return

        async def shutdown() -> None:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()
        self._loop = self._server = self._thread = None

    def __enter__(self) -> FakeSGLang:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # HTTP/1.1 with keep-alive: just enough for httpx and for curl

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its reply; ``False`` closes the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = target.split("?", 1)[0]
        is_chat = method == "POST" and path == "/v1/chat/completions"
        if is_chat:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = await self._dispatch(method, path, headers, body)
        finally:
            if is_chat:
                self.in_flight -= 1
        self.log.append((method, path, None if reply is None else reply[0]))
        if reply is None:
            writer.transport.abort()
            return False
        code, reply_headers, payload = reply
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        lines = [f"HTTP/1.1 {code} {_phrase(code)}", f"content-length: {len(payload)}"]
        lines += [f"{name}: {value}" for name, value in reply_headers.items()]
        lines.append(f"connection: {'keep-alive' if keep_alive else 'close'}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
        return keep_alive

    async def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        authorised = headers.get("authorization") == f"Bearer {self.api_key}"
        if self.api_key is not None and not path.startswith("/health") and not authorised:
            return _json(401, {"error": "Unauthorized"})
        routes: dict[str, tuple[str, Callable[[], Reply]]] = {
            "/health": ("GET", lambda: (self.health_status, {}, b"")),
            "/health_generate": ("GET", lambda: (self.health_status, {}, b"")),
            "/model_info": ("GET", lambda: _json(200, self.model_info())),
            "/get_model_info": ("GET", lambda: _json(200, self.model_info())),
            "/v1/models": ("GET", lambda: _json(200, self.models())),
        }
        if path == "/v1/chat/completions":
            if method != "POST":
                return _json(405, {"detail": "Method Not Allowed"})
            return await self._chat(headers, body)
        if path not in routes:
            return _json(404, {"detail": "Not Found"})
        allowed, handler = routes[path]
        if method != allowed:
            return _json(405, {"detail": "Method Not Allowed"})
        return handler()

    def model_info(self) -> dict[str, Any]:
        """``/model_info`` as SGLang's ``http_server.model_info`` builds it (no served name in it)."""
        return {
            "model_path": self.model_path,
            "tokenizer_path": self.model_path,
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": "default",
            "has_image_understanding": self.has_image_understanding,
            "has_audio_understanding": False,
            "model_type": "glm_ocr",
            "architectures": ["GlmOcrForConditionalGeneration"],
        }

    def models(self) -> dict[str, Any]:
        """``/v1/models``: a ``ModelList`` with one ``ModelCard`` whose id is the served model name."""
        card = {
            "id": self.served_model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "sglang",
            "root": self.served_model,
            "parent": None,
            "max_model_len": 131072,
        }
        return {"object": "list", "data": [card]}

    async def _chat(self, headers: dict[str, str], body: bytes) -> Reply | None:
        if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
            return _json(400, error_body("Unsupported Media Type: Only 'application/json' is allowed"))
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _json(400, error_body(f"JSON decode error: {exc}"))
        if isinstance(request, dict):
            self.requests.append(request)
            self.headers.append(dict(headers))
        problem = validate_chat_request(request, check_images=self.check_images)
        if problem is not None:
            return _json(400, error_body(problem))
        action: Action | None = self._script.popleft() if self._script else None
        while isinstance(action, Delay):
            await asyncio.sleep(action.seconds)
            action = action.then
        if isinstance(action, Drop):
            return None
        if isinstance(action, Status):
            return _status_reply(action)
        return _json(200, self.completion(request, action))

    def completion(self, request: dict[str, Any], scripted: Respond | None = None) -> dict[str, Any]:
        """SGLang's non-streaming ``ChatCompletionResponse`` for a valid request."""
        if scripted is not None:
            text, finish_reason = scripted.text, scripted.finish_reason
        else:
            text, finish_reason = self._generate(request), "stop"
        chunks = split_tokens(text)
        max_tokens = request.get("max_tokens") or request.get("max_completion_tokens")
        if scripted is None and isinstance(max_tokens, int) and len(chunks) > max_tokens:
            chunks, finish_reason = chunks[:max_tokens], "length"
            while chunks and not _decodes(b"".join(chunks)):
                chunks.pop()  # never end inside a character: SGLang holds an incomplete one back
            text = b"".join(chunks).decode("utf-8")
        entries = [self._entry(chunk, request) for chunk in chunks]
        matched_stop: int | None = None
        if finish_reason == "stop" and self.end_of_turn is not None:
            entries.append(self._entry(self.end_of_turn.encode(), request, logprob=-0.0002))
            matched_stop = GLM_OCR_STOP_TOKEN_ID
        prompt_tokens = _prompt_tokens(request, self.check_images)
        return {
            "id": uuid.uuid4().hex,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text or None,
                        "reasoning_content": None,
                        "tool_calls": None,
                    },
                    "logprobs": {"content": entries} if request.get("logprobs") else None,
                    "finish_reason": finish_reason,
                    "matched_stop": matched_stop,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + len(entries),
                "completion_tokens": len(entries),
                "prompt_tokens_details": None,
                "reasoning_tokens": 0,
            },
            "metadata": {"weight_version": "default"},
        }

    def _generate(self, request: dict[str, Any]) -> str:
        if self.answer is not None:
            return self.answer(request)
        response_format = request.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema")
        document = instance_for(schema, string_value=self.string_value) if schema is not None else {}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    def _entry(self, chunk: bytes, request: dict[str, Any], logprob: float | None = None) -> dict[str, Any]:
        token = chunk.decode("utf-8", errors="replace")
        if logprob is None:
            logprob = -0.01 if token and set(token) <= STRUCTURAL else -0.3
        raw = list(chunk) if self.byte_mode == "exact" else list(token.encode("utf-8"))
        top = int(request.get("top_logprobs") or 0)
        alternatives = [{"token": token, "bytes": raw, "logprob": logprob}]
        alternatives += [
            {"token": alt, "bytes": list(alt.encode()), "logprob": logprob - 2.0 * (k + 1)}
            for k, alt in zip(range(top - 1), itertools.cycle([" ", "0", "a", "\n"]), strict=False)
        ]
        return {"token": token, "bytes": raw, "logprob": logprob, "top_logprobs": alternatives[:top]}


# -- request validation ---------------------------------------------------------------------------


def validate_chat_request(request: Any, *, check_images: bool = True) -> str | None:
    """The first problem with a chat request, in SGLang's words where it has them; ``None`` if valid."""
    return next(_request_problems(request, check_images), None)


def _request_problems(request: Any, check_images: bool) -> Iterator[str]:
    """Every problem, in the order SGLang would meet them; checks further down assume earlier ones pass."""
    if not isinstance(request, dict):
        yield "Input should be a valid dictionary or object to extract fields from"
        return
    unknown = sorted(set(request) - CHAT_FIELDS)
    if unknown:
        yield f"{unknown[0]}: Extra inputs are not permitted"
    if "model" not in request:
        yield "model: Field required"
    elif not isinstance(request["model"], str) or not request["model"]:
        yield "model: Input should be a non-empty string"
    yield from _message_problems(request.get("messages"), check_images)
    yield from _response_format_problems(request.get("response_format"))
    yield from _sampling_problems(request)


def _sampling_problems(request: dict[str, Any]) -> Iterator[str]:
    for name in (
        "temperature",
        "top_p",
        "min_p",
        "repetition_penalty",
        "frequency_penalty",
        "presence_penalty",
    ):
        if request.get(name) is not None and not _is_number(request[name]):
            yield f"{name}: Input should be a valid number"
    if _is_number(request.get("temperature")) and request["temperature"] < 0:
        yield "temperature must be non-negative"
    for name in ("max_tokens", "max_completion_tokens"):
        value = request.get(name)
        if value is not None and not _is_int(value):
            yield f"{name}: Input should be a valid integer"
        elif value is not None and value <= 0:
            yield f"{name} must be positive"
    for name in ("logprobs", "stream", "skip_special_tokens"):
        if name in request and not isinstance(request[name], bool):
            yield f"{name}: Input should be a valid boolean"
    top = request.get("top_logprobs")
    if top is not None and (not _is_int(top) or not 0 <= top <= 20):
        yield "top_logprobs: Input should be an integer between 0 and 20"
    if request.get("stream"):
        yield "stream: the fake SGLang answers non-streaming requests only"
    if request.get("n", 1) != 1:
        yield "n: the fake SGLang generates one choice only"


def _message_problems(messages: Any, check_images: bool) -> Iterator[str]:
    if messages is None:
        yield "messages: Field required"
    elif not isinstance(messages, list) or not messages:
        yield "messages: Input should be a non-empty list"
    else:
        for i, message in enumerate(messages):
            yield from _one_message_problems(message, f"messages.{i}", check_images)


def _one_message_problems(message: Any, where: str, check_images: bool) -> Iterator[str]:
    if not isinstance(message, dict):
        yield f"{where}: Input should be an object"
        return
    yield from _extra_fields(message, {"role", "content", "name"}, where)
    if message.get("role") not in ("system", "user", "assistant"):
        yield f"{where}.role: Input should be 'system', 'user' or 'assistant'"
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not content:
        yield f"{where}.content: Input should be a string or a non-empty list of parts"
        return
    for j, part in enumerate(content):
        yield from _part_problems(part, f"{where}.content.{j}", check_images)


def _part_problems(part: Any, where: str, check_images: bool) -> Iterator[str]:
    if not isinstance(part, dict):
        yield f"{where}: Input should be an object"
    elif part.get("type") == "text":
        yield from _extra_fields(part, {"type", "text"}, where)
        if not isinstance(part.get("text"), str):
            yield f"{where}.text: Input should be a valid string"
    elif part.get("type") != "image_url":
        yield f"{where}.type: Input should be 'text' or 'image_url'"
    else:
        yield from _extra_fields(part, {"type", "image_url", "modalities"}, where)
        image_url = part.get("image_url")
        if not isinstance(image_url, dict) or not isinstance(image_url.get("url"), str):
            yield f"{where}.image_url.url: Field required"
            return
        allowed = {"url", "detail", "max_dynamic_patch", "min_dynamic_patch"}
        yield from _extra_fields(image_url, allowed, f"{where}.image_url")
        yield from _data_url_problems(image_url["url"], f"{where}.image_url.url", check_images)


def _data_url_problems(url: str, where: str, check_images: bool) -> Iterator[str]:
    """Only a base64 PNG or JPEG data URL: the real server would open a path or fetch a URL."""
    prefix = next(
        (p for p in ("data:image/png;base64,", "data:image/jpeg;base64,") if url.startswith(p)), None
    )
    if prefix is None:
        yield (
            f"{where}: must be a data:image/(png|jpeg);base64 URL, not {url[:40]!r} "
            "(the server would read a path or fetch a URL)"
        )
        return
    if not check_images:
        return
    expected = "PNG" if "png" in prefix else "JPEG"
    try:
        raw = base64.b64decode(url[len(prefix) :], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            found = image.format
    except (binascii.Error, ValueError, OSError) as exc:
        yield f"{where}: the data URL is not a readable image ({type(exc).__name__}: {exc})"
        return
    if found != expected:
        yield f"{where}: the data URL says {expected} but holds {found}"


def _response_format_problems(response_format: Any) -> Iterator[str]:
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        yield "response_format: Input should be an object"
        return
    if response_format.get("type") != "json_schema":
        yield "response_format.type: the fake SGLang supports 'json_schema' only"
    yield from _extra_fields(response_format, {"type", "json_schema"}, "response_format")
    json_schema = response_format.get("json_schema")
    if not isinstance(json_schema, dict):
        yield "response_format.json_schema: Field required"
        return
    allowed = {"name", "description", "schema", "strict"}
    yield from _extra_fields(json_schema, allowed, "response_format.json_schema")
    if not isinstance(json_schema.get("name"), str):
        yield "response_format.json_schema.name: Field required"
    if not isinstance(json_schema.get("schema"), dict):
        yield "response_format.json_schema.schema: Input should be a valid dictionary"


def _extra_fields(value: dict[str, Any], allowed: set[str], where: str) -> Iterator[str]:
    extra = sorted(set(value) - allowed)
    if extra:
        yield f"{where}.{extra[0]}: Extra inputs are not permitted"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- generation -----------------------------------------------------------------------------------


def instance_for(schema: Any, *, string_value: str = DEFAULT_STRING, root: Any = None, depth: int = 0) -> Any:
    """A deterministic instance of ``schema``: every property in schema order, one item per array,
    first enum value or anyOf/oneOf branch (skipping null), the non-null type of a nullable type."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 32:
        return None

    def sub(s: Any) -> Any:
        return instance_for(s, string_value=string_value, root=root, depth=depth + 1)

    if isinstance(schema.get("$ref"), str):
        return sub(_resolve(root, schema["$ref"]))
    if "const" in schema or (isinstance(schema.get("enum"), list) and schema["enum"]):
        return schema["const"] if "const" in schema else schema["enum"][0]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list):
        non_null = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        return sub((non_null or branches)[0])
    if isinstance(schema.get("allOf"), list):
        return sub(_merge_all_of(schema))
    return _instance_of_type(schema, sub, string_value)


def _instance_of_type(schema: dict[str, Any], sub: Callable[[Any], Any], string_value: str) -> Any:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return {name: sub(prop) for name, prop in (schema.get("properties") or {}).items()}
    if kind == "array":
        prefix = schema.get("prefixItems") or []
        count = max(1, int(schema.get("minItems", 1)), len(prefix))
        count = min(count, int(schema.get("maxItems", count)))
        return [sub(prefix[i]) if i < len(prefix) else sub(schema.get("items", {})) for i in range(count)]
    scalars: dict[str, Callable[[], Any]] = {
        "string": lambda: _string_for(schema, string_value),
        "integer": lambda: int(_clamp(schema, 1)),
        "number": lambda: _clamp(schema, 1.5),
        "boolean": lambda: True,
    }
    return scalars.get(kind, lambda: None)()


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if isinstance(part, dict):
            properties = {**merged.get("properties", {}), **part.get("properties", {})}
            merged = {**merged, **part, "properties": properties}
    if not merged.get("properties"):
        merged.pop("properties", None)
    return merged


def _resolve(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    node = root
    for part in filter(None, ref[1:].split("/")):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _string_for(schema: dict[str, Any], default: str) -> str:
    formats = {
        "date": "2024-01-31",
        "date-time": "2024-01-31T12:00:00Z",
        "time": "12:00:00",
        "email": "billing@example.com",
        "uri": "https://example.com/",
    }
    value = formats.get(schema.get("format", ""), default)
    minimum, maximum = schema.get("minLength"), schema.get("maxLength")
    if isinstance(minimum, int) and len(value) < minimum:
        value += "x" * (minimum - len(value))
    if isinstance(maximum, int):
        value = value[:maximum]
    return value


def _clamp(schema: dict[str, Any], value: float) -> float:
    for key, exclusive, direction in (
        ("minimum", "exclusiveMinimum", 1),
        ("maximum", "exclusiveMaximum", -1),
    ):
        bound: Any = schema.get(key)
        step = 0
        if not _is_number(bound):
            bound, step = schema.get(exclusive), direction
        if _is_number(bound) and ((value - bound) * direction < 0 or (step and value == bound)):
            value = bound + step
    return value


def split_tokens(text: str) -> list[bytes]:
    """Deterministic byte-level tokens: ASCII in runs of 1-4 characters, and every other non-ASCII
    character (the first included) split after its first byte, as a byte-level BPE does for a character
    missing from its vocabulary."""
    tokens: list[bytes] = []
    sizes: Iterator[int] = itertools.cycle((1, 3, 2, 4))
    non_ascii = 0
    i = 0
    while i < len(text):
        char = text[i]
        if ord(char) >= 0x80:
            raw = char.encode("utf-8")
            tokens.extend([raw[:1], raw[1:]] if non_ascii % 2 == 0 else [raw])
            non_ascii += 1
            i += 1
            continue
        end = i
        size = next(sizes)
        while end < len(text) and end - i < size and ord(text[end]) < 0x80:
            end += 1
        tokens.append(text[i:end].encode("ascii"))
        i = end
    return tokens


# -- helpers --------------------------------------------------------------------------------------


def _prompt_tokens(request: dict[str, Any], decode_images: bool = True) -> int:
    """About what GLM-OCR counts: an image token per 28x28 pixels (an A4 page at 200 DPI when the
    image is not decoded) plus the text."""
    count = 8
    for message in request["messages"]:
        content = message["content"]
        parts: list[dict[str, Any]] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else content
        )
        for part in parts:
            if part["type"] == "text":
                count += len(part["text"]) // 3 + 1
            elif not decode_images:
                count += 4900
            else:
                data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as image:
                    count += math.ceil(image.width * image.height / 784) + 2
    return count


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _status_reply(action: Status) -> Reply:
    body = action.body
    if body is None:
        body = error_body(_phrase(action.code), action.code, _phrase(action.code).replace(" ", "") + "Error")
    if isinstance(body, dict | list):
        code, headers, payload = _json(action.code, body)
        return code, {**headers, **action.headers}, payload
    payload = body.encode() if isinstance(body, str) else bytes(body)
    return action.code, {"content-type": "text/plain; charset=utf-8", **action.headers}, payload


def _json(code: int, body: Any) -> Reply:
    return code, {"content-type": "application/json"}, json.dumps(body, ensure_ascii=False).encode("utf-8")


def _phrase(code: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(code).phrase
    return "Unknown"


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def main() -> None:
    """Serve the fake until stdin closes, printing its URL first: for benchmarks and manual curl."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--served-model", default="glm-ocr")
    parser.add_argument("--no-check-images", action="store_true", help="do not decode images (faster)")
    args = parser.parse_args()
    with FakeSGLang(served_model=args.served_model, check_images=not args.no_check_images) as fake:
        print(fake.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
