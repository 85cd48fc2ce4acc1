"""A real HTTP receiver on loopback for webhook tests: answers from a script and records every TCP
connection (not only parsed requests), so a test can prove that nothing ever connected."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0
    """How long the receiver thinks before it answers (a slow or hanging receiver)."""


@dataclass(frozen=True)
class Received:
    at: float
    """``time.monotonic()`` when the request had been read."""
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.receiver.lock:
            self.receiver.connections += 1
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (the 1 KiB cap) are expected: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        received = Received(
            time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        with receiver.lock:
            receiver.requests.append(received)
            reply = receiver.replies.pop(0) if receiver.replies else receiver.default
        time.sleep(reply.delay_s)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(reply.body)

    do_POST = _answer  # noqa: N815 - the name http.server dispatches to
    do_GET = _answer  # noqa: N815


class Receiver:
    """``with Receiver() as r:`` serves on ``r.url()`` in a thread until the block ends."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        replies: list[Reply] | None = None,
        default: Reply | None = None,
    ) -> None:
        self.host = host
        self.replies = list(replies or [])
        self.default = default or Reply()
        self.requests: list[Received] = []
        self.connections = 0
        self.lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_Server", (_Server,), {"address_family": family})
        self.server: _Server = server_class((host, port), _Handler)
        self.server.receiver = self
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        host = host or self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


async def eventually(check: Callable[[], Any], within_s: float = 15.0) -> None:
    """Wait until ``check()`` (or the awaitable it returns) is true: the work happens in other
    tasks and threads."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def main() -> None:
    """``python -m tests.webhook_receiver``: serve on a free loopback port, print its URL, and when
    stdin closes print one JSON line per request received: ``{"wall": unix time, "body": ...}``.
    Benchmarks run it in its own process so its timestamps do not wait for theirs."""
    import json
    import sys

    offset = time.time() - time.monotonic()
    with Receiver() as receiver:
        print(receiver.url(), flush=True)
        sys.stdin.read()
        with receiver.lock:
            received = list(receiver.requests)
    for request in received:
        print(json.dumps({"wall": request.at + offset, "body": request.body.decode()}))


if __name__ == "__main__":
    main()
