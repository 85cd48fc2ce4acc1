"""The production engine: GLM-OCR served by SGLang, one ``/v1/chat/completions`` request per page.

Why it looks the way it does (facts checked against sgl-project/sglang, see DESIGN.md §5):

- The page always travels as a ``data:`` URL built from the PIL image: SGLang opens any path or URL it
  is given, so a client's string must never reach it.
- Many requests are kept in flight (``max_in_flight``) so SGLang's continuous batching stays full; the
  body is encoded and serialised off the event loop once per page and reused by every retry.
- Token offsets are byte offsets, aligned with the text in ``tokens`` (SGLang's bytes are lossy for
  partial characters); the page image is encoded in ``images``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog

from app.engines.base import (
    Engine,
    EngineError,
    EngineRequest,
    EngineResult,
    FinishReason,
    Usage,
)
from app.engines.sglang.images import ImageFormat, encode_image
from app.engines.sglang.tokens import align_tokens, protocol_error
from app.lib import backoff, metrics

logger = structlog.get_logger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_CAP_S = 60.0
"""A server's ``Retry-After`` is honoured up to this; beyond it the caller's own retry is better."""
INLINE_ENCODE_MAX_PIXELS = 256 * 256
"""Smaller images are encoded on the event loop: a thread hop costs more than the encoding."""
READY_TIMEOUT_S = 30.0
"""SGLang's ``/health`` runs a one-token generation and waits up to 20 s for it."""
_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
_GRAMMAR_ERROR = re.compile(
    r"compile\s+(?:the\s+)?(?:json\s+)?grammar|grammar\s+compil|json[\s_-]?schema|xgrammar|llguidance|outlines",
    re.IGNORECASE,
)
"""SGLang's messages for a schema its grammar backend refuses: "Failed to compile json grammar: ...",
"Grammar compilation failed: ...", and backend-specific ones naming the JSON schema."""


@dataclass(frozen=True)
class SGLangConfig:
    base_url: str
    """e.g. ``http://127.0.0.1:30000`` (a worker or the SGLang router)."""
    model: str = "glm-ocr"
    """The served model name (``--served-model-name``); ``ready()`` checks the server agrees."""
    api_key: str | None = None
    """SGLang's ``--api-key``, sent as ``Authorization: Bearer``."""
    max_in_flight: int = 64
    """Requests in flight from this engine, all callers together: enough to keep SGLang's batch full
    (it caps running requests at 48 with speculative decoding), few enough not to queue there."""
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    image_format: ImageFormat = "png"
    top_logprobs: int = 0


class SGLangEngine(Engine):
    """GLM-OCR behind SGLang. One HTTP client and one in-flight limit per engine, shared by all callers."""

    name = "sglang"

    def __init__(self, config: SGLangConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if config.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if config.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.config = config
        self.model = config.model
        self._base_url = config.base_url.rstrip("/")
        self._slots = asyncio.Semaphore(config.max_in_flight)
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            # Room beyond the in-flight limit for ready() probes while every slot is busy.
            limits=httpx.Limits(
                max_connections=config.max_in_flight + 4, max_keepalive_connections=config.max_in_flight
            ),
            transport=transport,
            # An internal inference server: never route it through a proxy from the environment.
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- generation -------------------------------------------------------------------------------

    async def generate(self, request: EngineRequest) -> EngineResult:
        width, height = request.image.size
        if width * height > INLINE_ENCODE_MAX_PIXELS:
            body = await asyncio.to_thread(self._body, request)
        else:
            body = self._body(request)
        payload = await self._post_with_retries(body)
        return self._result(payload)

    def _body(self, request: EngineRequest) -> bytes:
        """The request exactly as SGLang's ``ChatCompletionRequest`` takes it, serialised once."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": encode_image(request.image, self.config.image_format)},
                        },
                        {"type": "text", "text": request.prompt},
                    ],
                }
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "extraction", "schema": request.decoding_schema},
            },
            "temperature": 0,
            "max_tokens": request.max_tokens,
            "logprobs": True,
            "stream": False,
        }
        if self.config.top_logprobs > 0:
            body["top_logprobs"] = self.config.top_logprobs
        return orjson.dumps(body)

    async def _post_with_retries(self, body: bytes) -> dict[str, Any]:
        cfg = self.config
        last: EngineError | None = None
        for attempt in range(cfg.max_retries + 1):
            retry_after: float | None = None
            try:
                async with self._slots:
                    response = await self._client.post(
                        "/v1/chat/completions", content=body, headers=_JSON_HEADERS
                    )
            except httpx.UnsupportedProtocol as exc:
                raise EngineError(
                    f"SGLang base URL {self._base_url!r} is not http(s): {exc}",
                    category="engine_unavailable",
                    retryable=False,
                ) from exc
            except httpx.TimeoutException as exc:
                last = EngineError(
                    f"SGLang at {self._base_url} did not answer in time ({type(exc).__name__})",
                    category="engine_unavailable",
                    retryable=True,
                )
            except httpx.TransportError as exc:
                last = EngineError(
                    f"connection to SGLang at {self._base_url} failed: {type(exc).__name__}: {exc}",
                    category="engine_unavailable",
                    retryable=True,
                )
            else:
                if response.status_code == 200:
                    return _json_object(response)
                error = _status_error(response)
                if response.status_code not in RETRYABLE_STATUS:
                    raise error
                last = error
                retry_after = backoff.parse_retry_after(response.headers.get("retry-after"))
            if attempt == cfg.max_retries:
                break
            delay = backoff.honour_retry_after(
                backoff.full_jitter_s(attempt + 1, cfg.backoff_base_s, cfg.backoff_max_s),
                retry_after,
                RETRY_AFTER_CAP_S,
            )
            metrics.ENGINE_RETRIES.labels(last.category).inc()
            logger.warning(
                "sglang_retry",
                attempt=attempt + 1,
                delay_s=round(delay, 3),
                status=last.status,
                error=str(last),
            )
            await asyncio.sleep(delay)
        assert last is not None  # the loop ran at least once and only leaves early by return or raise
        raise EngineError(
            f"SGLang unavailable after {cfg.max_retries + 1} attempts: {last}",
            category="engine_unavailable",
            retryable=True,
            status=last.status,
        ) from last

    def _result(self, payload: Mapping[str, Any]) -> EngineResult:
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise protocol_error("the response has no choices")
        choice: dict[str, Any] = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise protocol_error("choices[0].message is missing")
        text = message.get("content")
        if text is None:
            text = ""  # SGLang sends null rather than an empty string
        if not isinstance(text, str):
            raise protocol_error("choices[0].message.content is not a string")
        finish_reason = _finish_reason(choice.get("finish_reason"))
        logprobs = choice.get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not isinstance(content, list):
            raise protocol_error("choices[0].logprobs.content is missing although logprobs were requested")
        tokens, exact, skipped = align_tokens(text, content)
        usage = payload.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        model = payload.get("model")
        metadata = payload.get("metadata")
        found = {
            "id": payload.get("id"),
            "matched_stop": choice.get("matched_stop"),
            "weight_version": metadata.get("weight_version") if isinstance(metadata, dict) else None,
            "skipped_tokens": skipped or None,
        }
        extra: dict[str, Any] = {"offsets": "exact" if exact else "estimated"}
        extra.update({key: value for key, value in found.items() if value is not None})
        return EngineResult(
            text=text,
            tokens=tokens,
            finish_reason=finish_reason,
            usage=Usage(
                prompt_tokens=_count(usage.get("prompt_tokens"), 0),
                completion_tokens=_count(usage.get("completion_tokens"), len(content)),
            ),
            model=model if isinstance(model, str) and model else self.config.model,
            extra=extra,
        )

    # -- readiness --------------------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        """``/health`` answers 200, and the server serves ``config.model`` (``/v1/models``, which lists
        ``--served-model-name``; ``/model_info`` has only ``model_path``, used when the former is absent)."""
        details: dict[str, Any] = {
            "engine": self.name,
            "model": self.config.model,
            "base_url": self._base_url,
        }
        health = await self._probe("/health")
        if health.status_code != 200:
            raise EngineError(
                f"SGLang at {self._base_url} is not healthy: /health answered {health.status_code}",
                category="engine_unavailable",
                retryable=True,
                status=health.status_code,
            )
        served: list[str] | None = None
        models = await self._probe("/v1/models")
        if models.status_code in (401, 403):
            raise EngineError(
                f"SGLang at {self._base_url} refused the credentials ({models.status_code}): "
                "set the engine's api_key to the server's --api-key",
                category="engine_auth",
                retryable=False,
                status=models.status_code,
            )
        if models.status_code == 200:
            data = _json_object(models).get("data")
            if isinstance(data, list):
                served = [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        info_response = await self._probe("/model_info")
        if info_response.status_code == 404:  # SGLang before /model_info, or a router that lacks it
            info_response = await self._probe("/get_model_info")
        info = _json_object(info_response) if info_response.status_code == 200 else {}
        for key in ("model_path", "model_type", "weight_version", "has_image_understanding"):
            if info.get(key) is not None:
                details[key] = info[key]
        model_path = info.get("model_path")
        if served is not None:
            details["served_models"] = served
            if self.config.model not in served:
                raise EngineError(
                    f"SGLang at {self._base_url} serves {served} (model_path {model_path!r}), not "
                    f"{self.config.model!r}: start it with --served-model-name {self.config.model} "
                    f"or set the engine's model to one of {served}",
                    category="engine_unavailable",
                    retryable=False,
                )
        elif model_path is None:
            raise EngineError(
                f"SGLang at {self._base_url} answered neither /v1/models nor /model_info: is it SGLang?",
                category="engine_unavailable",
                retryable=False,
            )
        elif model_path != self.config.model:
            raise EngineError(
                f"SGLang at {self._base_url} serves model_path {model_path!r}, not {self.config.model!r}",
                category="engine_unavailable",
                retryable=False,
            )
        if info.get("has_image_understanding") is False:
            raise EngineError(
                f"SGLang at {self._base_url} serves {model_path!r}, which it reports cannot read images",
                category="engine_unavailable",
                retryable=False,
            )
        return details

    async def _probe(self, path: str) -> httpx.Response:
        try:
            return await self._client.get(path, timeout=min(self.config.timeout_s, READY_TIMEOUT_S))
        except httpx.HTTPError as exc:
            raise EngineError(
                f"SGLang at {self._base_url} is unreachable ({path}): {type(exc).__name__}: {exc}",
                category="engine_unavailable",
                retryable=True,
            ) from exc


# -- responses ------------------------------------------------------------------------------------


def _finish_reason(value: Any) -> FinishReason:
    if value in ("stop", "tool_calls", "function_call"):
        return "stop"
    if value == "length":
        return "length"
    if value == "abort":
        raise EngineError(
            "SGLang aborted the generation (finish_reason 'abort')",
            category="engine_unavailable",
            retryable=True,
        )
    if value == "content_filter":
        raise EngineError("SGLang filtered the generation", category="engine_rejected", retryable=False)
    raise protocol_error(f"unexpected finish_reason {value!r}")


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _json_object(response: httpx.Response) -> dict[str, Any]:
    path = response.request.url.path
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise protocol_error(f"{path} answered {response.status_code} with non-JSON") from exc
    if not isinstance(payload, dict):
        raise protocol_error(f"{path} answered {response.status_code} with non-object JSON")
    return payload


def _error_message(response: httpx.Response) -> str:
    """SGLang's ``{"object": "error", "message": ...}``, or the OpenAI/FastAPI shapes, or the raw text."""
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:500] or response.reason_phrase
    if isinstance(payload, dict):
        for candidate in (payload.get("message"), payload.get("error"), payload.get("detail")):
            message = candidate.get("message") if isinstance(candidate, dict) else candidate
            if isinstance(message, str) and message:
                return message[:2000]
    return response.text[:500]


def _status_error(response: httpx.Response) -> EngineError:
    status = response.status_code
    message = _error_message(response)
    if status in RETRYABLE_STATUS:
        return EngineError(
            f"SGLang answered {status}: {message}",
            category="engine_unavailable",
            retryable=True,
            status=status,
        )
    if status in (401, 403):
        return EngineError(
            f"SGLang refused the credentials ({status}): {message}",
            category="engine_auth",
            retryable=False,
            status=status,
        )
    if status == 400 and _GRAMMAR_ERROR.search(message):
        return EngineError(
            f"SGLang cannot compile the decoding schema: {message}",
            category="schema_not_supported",
            retryable=False,
            status=status,
        )
    if 400 <= status < 500:
        return EngineError(
            f"SGLang rejected the request ({status}): {message}",
            category="engine_rejected",
            retryable=False,
            status=status,
        )
    return EngineError(
        f"SGLang answered {status}: {message}", category="engine_unavailable", retryable=True, status=status
    )
