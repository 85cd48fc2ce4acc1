"""Request id and access log, as plain ASGI so it costs one contextvar bind per request; and what
happens to a request body left unread by an early answer."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
logger = structlog.get_logger("docextract.access")
BODY_READ = "docextract.body_read"
"""Scope state flag: the request body was received to its end."""


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Take the caller's ``X-Request-ID`` when it is sane, else make one; echo it; log the request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        except Exception as exc:  # rendered by the exception handlers around us
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                key_id=_key_id(scope),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    return middleware


def unread_body_middleware(app: ASGIApp) -> ASGIApp:
    """Answers that go out before the request body was read to its end (a 401, an unknown schema)
    first read and drop the rest of it while the body stays within the route's limit: clients that
    read the answer only after sending everything (httpx's async client) would otherwise see the
    connection reset instead of the answer. A 413 drops nothing: the body is already past a limit.
    What is still unread then closes the connection (``close_if_body_unread``)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not _announces_body(scope):
            await app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        handler = scope.get("route_handler")
        limit = handler.resolve_request_max_body_size() if isinstance(handler, HTTPRouteHandler) else None
        received = 0

        async def tracked_receive() -> ReceiveMessage:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message["body"])
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                state[BODY_READ] = True
            return message

        async def drain() -> None:
            while not state.get(BODY_READ) and received <= (limit or 0):
                await tracked_receive()

        async def send_after_drain(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 413:
                await drain()
            await send(message)

        try:
            await app(scope, tracked_receive, send_after_drain)
        except Exception as exc:  # answered by the exception handler around us (the auth middleware's 401)
            if getattr(exc, "status_code", None) != 413:
                await drain()
            raise

    return middleware


async def close_if_body_unread(message: Message, scope: Scope) -> None:
    """An answer sent while part of the request body is unread says ``Connection: close``: the
    server then stops reading, where it would otherwise read and discard the rest of the body,
    however large, to keep the connection. (A ``before_send`` hook, so that it also sees the
    answers of the app-level exception handler: 401s, unknown routes.)"""
    if message["type"] != "http.response.start" or scope.get("state", {}).get(BODY_READ):
        return
    if not _announces_body(scope):
        return
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
    message["headers"] = [*headers, (b"connection", b"close")]


def _announces_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or length not in (None, "0")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _key_id(scope: Scope) -> Any:
    user = scope.get("user")
    return getattr(user, "key_id", None)
