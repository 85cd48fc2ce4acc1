"""Upload limits against a real uvicorn server. A body past its limit is refused after at most one
more chunk (unread when its Content-Length says so), chunked or not, and the connection then closes
so that the server reads no more of it. An early answer to a body within the route's limit (a 401)
reads the rest first, so that clients which only read after sending everything still get it.

The app is wrapped to count the body bytes it received; the client counts the bytes the server
pulled from it (what it read plus what the kernel buffers hold: a few MiB, far below the body)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import Receive, ReceiveMessage, Scope, Send

from app.api.documents import MULTIPART_OVERHEAD
from app.auth.keys import Scope as KeyScope
from app.lib.settings import IngestSettings, JobSettings
from app.server.core import create_app
from tests.conftest import make_settings
from tests.documents import invoice_pdf
from tests.helpers import assert_problem, key_for
from tests.helpers import served as serving

DOCUMENT_LIMIT = 256 * 1024
BATCH_LIMIT = 16 * 1024 * 1024
ONE_CHUNK = 1024 * 1024
"""What the app may read past a limit: one ASGI message (uvicorn's buffer plus one socket read)."""
UPLOAD = 64 * 1024 * 1024
CHUNK = 64 * 1024
BOUNDARY = "limit-test-boundary"
FILE_PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
    "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
).encode()
ROUTES = [
    ("/documents/analyze", "document-too-large", DOCUMENT_LIMIT),
    ("/extract/invoice", "document-too-large", DOCUMENT_LIMIT),
    ("/batches?schema=invoice", "batch-too-large", DOCUMENT_LIMIT),  # a file past the document limit
]


class CountingApp:
    """The app, counting the request body bytes it received."""

    def __init__(self, app: Litestar) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted if scope["type"] == ScopeType.HTTP else receive, send)


@dataclass
class Served:
    base: str
    key: str
    app: CountingApp


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("limits")
    url = f"sqlite+aiosqlite:///{tmp / 'db.sqlite'}"
    settings = make_settings(
        tmp,
        url,
        ingest=IngestSettings(max_bytes=DOCUMENT_LIMIT),
        jobs=JobSettings(max_batch_bytes=BATCH_LIMIT),
    )
    app = CountingApp(create_app(settings))
    with serving(app) as base:
        yield Served(base, key_for(url, KeyScope.EXTRACT), app)


@dataclass
class Sent:
    response: httpx.Response
    pulled: int  # bytes the server took from the client before answering
    received: int  # bytes the app read


def upload(
    served: Served,
    path: str,
    prefix: bytes,
    content_type: str,
    *,
    total: int = UPLOAD,
    key: bool = True,
    content_length: int | None = None,
) -> Sent:
    """``prefix`` then filler up to ``total`` bytes, chunked unless ``content_length`` is given.
    httpx's sync client reads an answer that comes while it is still sending (its async client
    only after sending everything, so a server that stops reading can only reset it)."""
    pulled = 0

    def body() -> Iterator[bytes]:
        nonlocal pulled
        pulled += len(prefix)
        yield prefix
        while pulled < total:
            size = min(CHUNK, total - pulled)
            pulled += size
            yield b"%" * size

    headers = {"Content-Type": content_type}
    if key:
        headers["X-API-Key"] = served.key
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    served.app.received = 0
    with httpx.Client(base_url=served.base, timeout=60) as client:
        response = client.post(path, content=body(), headers=headers)
    return Sent(response, pulled, served.app.received)


def assert_closed_after(sent: Sent, limit: int) -> None:
    """The app read at most one chunk past ``limit``, and the server then closed the connection
    rather than draining the rest of the body."""
    assert sent.received <= limit + ONE_CHUNK, sent.received
    assert sent.response.headers.get("connection") == "close"
    assert sent.pulled < UPLOAD // 2, sent.pulled


@pytest.mark.parametrize(("path", "slug", "limit"), ROUTES)
@pytest.mark.parametrize("form", [False, True], ids=["raw", "multipart"])
def test_a_chunked_upload_stops_at_the_limit(
    served: Served, path: str, slug: str, limit: int, form: bool
) -> None:
    if form:
        sent = upload(served, path, FILE_PART, f"multipart/form-data; boundary={BOUNDARY}")
    else:
        sent = upload(served, path, b"%PDF-1.7\n", "application/pdf")
    body = assert_problem(sent.response, 413, slug)
    assert body["limit_bytes"] == limit
    assert_closed_after(sent, limit)


@pytest.mark.parametrize(
    ("path", "slug", "announced"),
    [
        ("/documents/analyze", "document-too-large", DOCUMENT_LIMIT + 1),
        ("/extract/invoice", "document-too-large", DOCUMENT_LIMIT + 1),
        ("/documents/analyze", "document-too-large", UPLOAD),
        ("/batches?schema=invoice", "batch-too-large", UPLOAD),  # past the batch limit
    ],
)
def test_an_announced_body_past_the_limit_is_refused_unread(
    served: Served, path: str, slug: str, announced: int
) -> None:
    sent = upload(served, path, b"%PDF-1.7\n", "application/pdf", total=announced, content_length=announced)
    assert_problem(sent.response, 413, slug)
    assert sent.received == 0
    assert_closed_after(sent, 0)


def test_a_zip_may_be_as_large_as_the_batch_but_no_larger(served: Served) -> None:
    sent = upload(served, "/batches?schema=invoice", b"PK\x03\x04", "application/zip")
    body = assert_problem(sent.response, 413, "batch-too-large")
    assert body["limit_bytes"] == BATCH_LIMIT
    assert sent.received > BATCH_LIMIT
    assert_closed_after(sent, BATCH_LIMIT)


def test_an_early_answer_reads_the_rest_only_up_to_the_route_limit(served: Served) -> None:
    sent = upload(served, "/extract/invoice", b"%PDF-1.7\n", "application/pdf", key=False)
    assert_problem(sent.response, 401, "unauthenticated")
    assert_closed_after(sent, DOCUMENT_LIMIT + MULTIPART_OVERHEAD)


async def test_an_early_answer_to_a_body_within_the_limit_reaches_an_async_client(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=60) as client:
        for _ in range(3):  # a reset is a race: try a few times
            unauthenticated = await client.post(
                "/extract/invoice",
                content=b"%" * (DOCUMENT_LIMIT // 2),
                headers={"Content-Type": "application/pdf"},
            )
            assert_problem(unauthenticated, 401, "unauthenticated")
            assert "connection" not in unauthenticated.headers  # the body was read: the connection stays


async def test_a_request_read_to_its_end_keeps_the_connection(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=60) as client:
        response = await client.post(
            "/documents/analyze",
            content=b"just some text",
            headers={"X-API-Key": served.key, "Content-Type": "application/octet-stream"},
        )
    assert_problem(response, 415, "unsupported-document-type")
    assert "connection" not in response.headers


@pytest.mark.parametrize("path", ["/documents/analyze", "/extract/invoice"])
async def test_a_second_file_part_is_refused(served: Served, path: str) -> None:
    pdf = invoice_pdf()[0]
    files = [("file", ("one.pdf", pdf, "application/pdf")), ("file", ("two.pdf", pdf, "application/pdf"))]
    async with httpx.AsyncClient(base_url=served.base, timeout=60) as client:
        response = await client.post(path, files=files, headers={"X-API-Key": served.key})
    body = assert_problem(response, 400, "bad-request")
    assert body["errors"] == [{"pointer": "/file", "detail": "more than one `file` part"}]
    assert "connection" not in response.headers  # the small rest of the form was read
