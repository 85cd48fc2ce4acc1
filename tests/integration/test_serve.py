"""`docextract serve` as a user runs it: a real server process with two workers, real HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import object_schema

pytestmark = pytest.mark.slow  # starts the API as a subprocess, on both databases


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("the server did not become ready within 60 s")


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A first start (which prints the admin key), a stop, and a second start that prints none."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DOCEXTRACT_DATABASE_URL": database_url,
        "DOCEXTRACT_DATA_DIR": str(tmp_path),
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
    }
    first = _start({**env, "DOCEXTRACT_LOG_LEVEL": "INFO"}, port)
    try:
        _wait_ready(base, first)
    finally:
        first.terminate()
        output = first.communicate(timeout=30)[0]
    key = re.search(r"(dxk_\S+)", output)
    assert key, output
    # Said once, though two workers start: serve prepares before they fork.
    assert output.count("dxk_") == 1 and output.count("shown only now") == 1
    assert output.count('"database_ready"') == 1 and output.count('"builtin_schemas"') == 1, output
    second = _start(env, port)
    try:
        _wait_ready(base, second)
        yield base, key.group(1)
    finally:
        second.terminate()
        assert "dxk_" not in second.communicate(timeout=30)[0]


async def test_served_api_numbers_concurrent_versions_uniquely(server: tuple[str, str]) -> None:
    base, key = server
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        created = await client.post("/schemas", json={"name": "shared", "schema": object_schema()})
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/schemas/shared/versions",
                    json={"schema": object_schema(**{f"f{i}": {"type": "string"}})},
                )
                for i in range(12)
            )
        )
        assert [r.status_code for r in responses] == [201] * 12
        assert sorted(r.json()["version"] for r in responses) == list(range(2, 14))
        listing = (await client.get("/schemas/shared/versions?limit=100")).json()
        assert [v["version"] for v in listing["items"]] == list(range(1, 14))
        assert (await client.get("/schemas/invoice")).json()["source"] == "builtin"
        assert (await client.get("/openapi/openapi.json")).status_code == 200
