"""A typed Python client for the docextract API, sync (``Client``) and async (``AsyncClient``), on httpx.

    from docextract import Client

    with Client("https://dx.example.com", api_key="dxk_...") as dx:
        result = dx.extract("invoice.pdf", schema="invoice")          # ExtractionResult
        print(result.status, result.data["total"], result.fields["/total"].confidence)
        job = dx.extract("big.pdf", schema="invoice", wait=False, callback_url="https://erp/hooks/dx")
        ubl = dx.export(result.id, "ubl")                                # bytes, XSD-checked UBL 2.1

Results are the API's own typed models (``app.extraction.models.ExtractionResult``,
``app.jobs.models.JobView`` / ``BatchView``: msgspec structs, what the OpenAPI spec describes). A 429
or 503 is retried with exponential backoff and jitter, honouring ``Retry-After``; every POST carries
an ``Idempotency-Key`` (made here unless given) so a retried extraction never runs twice. Errors are
``ApiError`` with the RFC 9457 problem (``type``, ``status``, ``detail``, ``errors``).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import httpx
import msgspec

from app.extraction.models import ExtractionResult
from app.jobs.models import BatchView, JobView
from app.webhooks.signing import InvalidSignature, verify

__all__ = [
    "ApiError",
    "AsyncClient",
    "BatchView",
    "Client",
    "ExtractionResult",
    "InvalidSignature",
    "JobView",
    "verify_webhook",
]

Document = bytes | str | Path
"""A document's bytes, or the path of its file."""
ExportFormat = Literal["ubl", "cii", "json"]
T = TypeVar("T")
RETRIED_STATUSES = frozenset({429, 503})
FINISHED = frozenset({"succeeded", "needs_review", "failed", "cancelled"})
MAX_RETRY_AFTER_S = 300.0


class ApiError(Exception):
    """The API answered with a problem (RFC 9457): ``problem`` holds all of it."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type", ""))
        self.detail: str = str(problem.get("detail") or problem.get("title") or "")
        super().__init__(f"{status} {self.type}: {self.detail}")


@dataclass(frozen=True)
class Retry:
    """How 429 and 503 answers are retried: up to ``attempts`` requests in all, waiting
    ``Retry-After`` when the server says, else ``base_s`` doubling (with jitter) up to ``max_s``."""

    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, response: httpx.Response) -> float:
        told = retry_after(response.headers.get("retry-after"))
        if told is not None:
            return min(told, MAX_RETRY_AFTER_S)
        backoff: float = min(self.max_s, self.base_s * 2**attempt)
        return backoff * random.uniform(0.5, 1.0)  # noqa: S311


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110); None when absent or bad."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def verify_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: int = 300
) -> dict[str, Any]:
    """What an ERP's webhook receiver does first: check the Standard Webhooks signature (with the
    endpoint's or the callback secret, ``whsec_...``) and the timestamp's age, then return the event
    (``{"type": "extraction.completed", "data": {"extraction_id": ..., ...}}``). Raises
    ``InvalidSignature`` for anything not signed by the service."""
    verify(secret, headers, body, tolerance_s=tolerance_s)
    event: dict[str, Any] = msgspec.json.decode(body)
    return event


@dataclass
class _Call:
    """One API call, built without I/O so that the sync and async clients share everything but
    the sending."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    json: Any = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


def _read(document: Document) -> tuple[bytes, str | None]:
    if isinstance(document, bytes):
        return document, None
    path = Path(document)
    return path.read_bytes(), path.name


def _idempotent(call: _Call, key: str | None) -> _Call:
    call.headers["Idempotency-Key"] = key or f"dx-{uuid.uuid4().hex}"
    return call


def _extract_call(
    document: Document,
    schema: str,
    *,
    pages: str | None,
    filename: str | None,
    password: str | None,
    run_async: bool,
    callback_url: str | None,
    idempotency_key: str | None,
) -> _Call:
    data, name = _read(document)
    params: dict[str, Any] = {"pages": pages, "filename": filename or name, "callback_url": callback_url}
    if run_async:
        params["async"] = "true"
    headers = {"Content-Type": "application/octet-stream"}
    if password:
        headers["X-Document-Password"] = password
    call = _Call("POST", f"/extract/{schema}", _present(params), headers, content=data)
    return _idempotent(call, idempotency_key)


def _batch_call(
    documents: Iterable[Document | tuple[str, bytes]], schema: str, callback_url: str | None, key: str | None
) -> _Call:
    files = []
    for index, document in enumerate(documents):
        name, data = document if isinstance(document, tuple) else (None, None)
        if data is None:
            data, name = _read(document)  # type: ignore[arg-type]
        files.append(("file", (name or f"document-{index + 1}", data, "application/octet-stream")))
    params = _present({"schema": schema, "callback_url": callback_url})
    return _idempotent(_Call("POST", "/batches", params, files=files), key)


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _decode(response: httpx.Response, kind: type[T]) -> T:
    return msgspec.json.decode(response.content, type=kind)


def _problem(response: httpx.Response) -> ApiError:
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    return ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})


def _extraction_or_job(response: httpx.Response) -> ExtractionResult | JobView:
    return _decode(response, JobView) if response.status_code == 202 else _decode(response, ExtractionResult)


class _Base:
    def __init__(self, base_url: str, api_key: str, retry: Retry | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "docextract-client"}
        self.retry = retry or Retry()

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: _Call) -> httpx.Request:
        return http.build_request(
            call.method,
            f"{self.base_url}{call.path}",
            params=call.params,
            headers={**self.headers, **call.headers},
            content=call.content,
            json=call.json,
            files=call.files,
        )


class Client(_Base):
    """The synchronous client. ``http``: an httpx.Client of your own (proxies, TLS, a test client)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 300.0,
        retry: Retry | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, api_key, retry)
        self.http = http or httpx.Client(timeout=timeout_s)
        self._owns_http = http is None
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def _send(self, call: _Call) -> httpx.Response:
        for attempt in range(self.retry.attempts):
            response = self.http.send(self._request(self.http, call))
            if response.status_code not in RETRIED_STATUSES or attempt + 1 == self.retry.attempts:
                break
            self._sleep(self.retry.delay(attempt, response))
        if response.status_code >= 400:
            raise _problem(response)
        return response

    @overload
    def extract(
        self,
        document: Document,
        schema: str,
        *,
        wait: Literal[True] = ...,
        pages: str | None = ...,
        filename: str | None = ...,
        password: str | None = ...,
        callback_url: str | None = ...,
        idempotency_key: str | None = ...,
        poll_s: float = ...,
        timeout_s: float = ...,
    ) -> ExtractionResult: ...

    @overload
    def extract(
        self,
        document: Document,
        schema: str,
        *,
        wait: Literal[False],
        pages: str | None = ...,
        filename: str | None = ...,
        password: str | None = ...,
        callback_url: str | None = ...,
        idempotency_key: str | None = ...,
        poll_s: float = ...,
        timeout_s: float = ...,
    ) -> JobView: ...

    def extract(
        self,
        document: Document,
        schema: str,
        *,
        wait: bool = True,
        pages: str | None = None,
        filename: str | None = None,
        password: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        poll_s: float = 1.0,
        timeout_s: float = 3600.0,
    ) -> ExtractionResult | JobView:
        """``wait=True``: the result (a job the server queued anyway, e.g. with ``callback_url``, is
        waited for); ``wait=False``: the queued job at once (``JobView``), for ``wait_for`` or a webhook."""
        call = _extract_call(
            document,
            schema,
            pages=pages,
            filename=filename,
            password=password,
            run_async=not wait,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
        )
        answer = _extraction_or_job(self._send(call))
        if wait and isinstance(answer, JobView):
            return self.wait_for(answer.id, poll_s=poll_s, timeout_s=timeout_s)
        return answer

    def job(self, job_id: str) -> JobView:
        return _decode(self._send(_Call("GET", f"/jobs/{job_id}")), JobView)

    def wait_for(self, job_id: str, *, poll_s: float = 1.0, timeout_s: float = 3600.0) -> ExtractionResult:
        """Poll the job until it has finished; its result (``ApiError`` when it failed)."""
        deadline = time.monotonic() + timeout_s
        while self.job(job_id).status not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job_id} did not finish within {timeout_s} s")
            self._sleep(poll_s)
        return _decode(self._send(_Call("GET", f"/jobs/{job_id}/result")), ExtractionResult)

    def extraction(self, extraction_id: str) -> ExtractionResult:
        return _decode(self._send(_Call("GET", f"/extractions/{extraction_id}")), ExtractionResult)

    def export(self, extraction_id: str, format: ExportFormat = "ubl") -> bytes:
        """The extraction as UBL 2.1, CII (Factur-X EN 16931) or its data as JSON."""
        call = _Call("GET", f"/extractions/{extraction_id}/export", {"format": format})
        return self._send(call).content

    def schemas(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._send(_Call("GET", "/schemas")).json()["items"]
        return items

    def schema(self, ref: str) -> dict[str, Any]:
        """``name`` (latest) or ``name@version``."""
        found: dict[str, Any] = self._send(_Call("GET", f"/schemas/{ref}")).json()
        return found

    def create_schema(
        self, name: str, schema: dict[str, Any], description: str | None = None
    ) -> dict[str, Any]:
        body = _present({"name": name, "schema": schema, "description": description})
        created: dict[str, Any] = self._send(_idempotent(_Call("POST", "/schemas", json=body), None)).json()
        return created

    def submit_batch(
        self,
        documents: Iterable[Document | tuple[str, bytes]],
        schema: str,
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> BatchView:
        """Documents (paths, bytes, or ``(name, bytes)``) as one batch of jobs."""
        call = _batch_call(documents, schema, callback_url, idempotency_key)
        return _decode(self._send(call), BatchView)

    def batch(self, batch_id: str) -> BatchView:
        return _decode(self._send(_Call("GET", f"/batches/{batch_id}")), BatchView)

    def export_batch(self, batch_id: str, format: Literal["csv", "jsonl"] = "csv", **options: str) -> bytes:
        """``GET /batches/{id}/export``; ``options``: ``rows``, ``decimal``, ``delimiter``,
        ``date_format``, ``bom``."""
        call = _Call("GET", f"/batches/{batch_id}/export", {"format": format, **options})
        return self._send(call).content


class AsyncClient(_Base):
    """The asynchronous client: the same methods, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 300.0,
        retry: Retry | None = None,
        http: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, api_key, retry)
        self.http = http or httpx.AsyncClient(timeout=timeout_s)
        self._owns_http = http is None
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        for attempt in range(self.retry.attempts):
            response = await self.http.send(self._request(self.http, call))
            if response.status_code not in RETRIED_STATUSES or attempt + 1 == self.retry.attempts:
                break
            await self._sleep(self.retry.delay(attempt, response))
        if response.status_code >= 400:
            raise _problem(response)
        return response

    @overload
    async def extract(
        self,
        document: Document,
        schema: str,
        *,
        wait: Literal[True] = ...,
        pages: str | None = ...,
        filename: str | None = ...,
        password: str | None = ...,
        callback_url: str | None = ...,
        idempotency_key: str | None = ...,
        poll_s: float = ...,
        timeout_s: float = ...,
    ) -> ExtractionResult: ...

    @overload
    async def extract(
        self,
        document: Document,
        schema: str,
        *,
        wait: Literal[False],
        pages: str | None = ...,
        filename: str | None = ...,
        password: str | None = ...,
        callback_url: str | None = ...,
        idempotency_key: str | None = ...,
        poll_s: float = ...,
        timeout_s: float = ...,
    ) -> JobView: ...

    async def extract(
        self,
        document: Document,
        schema: str,
        *,
        wait: bool = True,
        pages: str | None = None,
        filename: str | None = None,
        password: str | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        poll_s: float = 1.0,
        timeout_s: float = 3600.0,
    ) -> ExtractionResult | JobView:
        call = _extract_call(
            document,
            schema,
            pages=pages,
            filename=filename,
            password=password,
            run_async=not wait,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
        )
        answer = _extraction_or_job(await self._send(call))
        if wait and isinstance(answer, JobView):
            return await self.wait_for(answer.id, poll_s=poll_s, timeout_s=timeout_s)
        return answer

    async def job(self, job_id: str) -> JobView:
        return _decode(await self._send(_Call("GET", f"/jobs/{job_id}")), JobView)

    async def wait_for(
        self, job_id: str, *, poll_s: float = 1.0, timeout_s: float = 3600.0
    ) -> ExtractionResult:
        deadline = time.monotonic() + timeout_s
        while (await self.job(job_id)).status not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job_id} did not finish within {timeout_s} s")
            await self._sleep(poll_s)
        return _decode(await self._send(_Call("GET", f"/jobs/{job_id}/result")), ExtractionResult)

    async def extraction(self, extraction_id: str) -> ExtractionResult:
        return _decode(await self._send(_Call("GET", f"/extractions/{extraction_id}")), ExtractionResult)

    async def export(self, extraction_id: str, format: ExportFormat = "ubl") -> bytes:
        call = _Call("GET", f"/extractions/{extraction_id}/export", {"format": format})
        return (await self._send(call)).content

    async def submit_batch(
        self,
        documents: Iterable[Document | tuple[str, bytes]],
        schema: str,
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> BatchView:
        call = _batch_call(documents, schema, callback_url, idempotency_key)
        return _decode(await self._send(call), BatchView)

    async def batch(self, batch_id: str) -> BatchView:
        return _decode(await self._send(_Call("GET", f"/batches/{batch_id}")), BatchView)

    async def export_batch(
        self, batch_id: str, format: Literal["csv", "jsonl"] = "csv", **options: str
    ) -> bytes:
        call = _Call("GET", f"/batches/{batch_id}/export", {"format": format, **options})
        return (await self._send(call)).content
