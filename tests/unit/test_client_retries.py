"""``docextract.client`` without a server: retries on 429/503 honour ``Retry-After`` (seconds or an
HTTP date), back off otherwise, give up with the problem, and keep one Idempotency-Key across the
retries of a POST; problems become ``ApiError``."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from docextract import ApiError, Client, Retry
from docextract.client import retry_after

EXTRACTION = {
    "id": "ext_1",
    "status": "succeeded",
    "schema": {"name": "invoice", "version": 1, "sha256": "0" * 64},
    "model": {"engine": "layout", "name": "layout"},
    "data": {"total": 9.7},
    "confidence": 0.99,
    "confidence_calibrated": False,
    "fields": {},
    "checks": [],
    "validation": [],
    "review": {"required": False, "reasons": [], "min_confidence": 0.7},
    "pages": [],
    "timings_ms": {"total": 1.0},
}
BUSY = {
    "type": "/problems/engine-unavailable",
    "status": 503,
    "title": "Engine unavailable",
    "detail": "busy",
}


def scripted(*answers: httpx.Response) -> tuple[Client, list[httpx.Request], list[float]]:
    requests: list[httpx.Request] = []
    sleeps: list[float] = []
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return pending.pop(0)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client("http://dx.test", "dxk_key", http=http, sleep=sleeps.append, retry=Retry(attempts=3))
    return client, requests, sleeps


def test_a_busy_engine_is_retried_after_the_time_the_server_names_with_one_idempotency_key() -> None:
    client, requests, sleeps = scripted(
        httpx.Response(503, json=BUSY, headers={"Retry-After": "2"}),
        httpx.Response(429, json=BUSY, headers={"Retry-After": "1"}),
        httpx.Response(200, json=EXTRACTION),
    )
    result = client.extract(b"%PDF-1.7 ...", "invoice")
    assert result.id == "ext_1" and result.data == {"total": 9.7}
    assert sleeps == [2.0, 1.0]
    keys = {r.headers["Idempotency-Key"] for r in requests}
    assert len(requests) == 3 and len(keys) == 1 and keys.pop().startswith("dx-")
    assert requests[0].headers["Authorization"] == "Bearer dxk_key"
    assert requests[0].url.path == "/extract/invoice"


def test_without_retry_after_it_backs_off_and_then_gives_up_with_the_problem() -> None:
    client, requests, sleeps = scripted(*(httpx.Response(503, json=BUSY) for _ in range(3)))
    with pytest.raises(ApiError) as raised:
        client.job("job_1")
    assert raised.value.status == 503 and raised.value.type.endswith("/engine-unavailable")
    assert raised.value.detail == "busy" and len(requests) == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # doubling, jitter


def test_other_errors_are_not_retried() -> None:
    problem = {"type": "/problems/schema-not-found", "status": 404, "title": "Schema not found"}
    client, requests, sleeps = scripted(httpx.Response(404, json=problem))
    with pytest.raises(ApiError) as raised:
        client.extract(b"%PDF-1.7", "nope")
    assert raised.value.status == 404 and raised.value.detail == "Schema not found"
    assert len(requests) == 1 and sleeps == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("30") == 30.0
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (retry_after(later) or 0) <= 60
    assert retry_after(None) is None and retry_after("soon") is None
