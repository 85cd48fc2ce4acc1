"""How long ``/health`` takes while extractions with a pathological schema pattern run, against
``/health`` on the idle server, in one run on one real server process (``docextract serve``).

    python bench/bench_event_loop.py [--seconds 15] [--concurrency 4] [--digits 40]

The schema's ``invoice_number`` has ``"pattern": "^(\\d+)+$"`` and the document prints
``Invoice number 111...1x`` (``--digits`` ones): Python's ``re`` needs about 2**digits steps to refuse
that value, which used to stall the server's event loop (issue 11: 14.5 s per extraction, /health
waiting 13.9 s). While ``--concurrency`` extractions are kept in flight, ``/health`` is probed every
50 ms. Goal: /health p99 under load < 100 ms. For scale, the same match with the standard library's
``re`` is timed here too, on fewer digits (each extra digit doubles it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.documents import invoice_pdf

PATTERN = r"^(\d+)+$"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: str, port: int) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "DOCEXTRACT_DATA_DIR": data_dir,
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
        "DOCEXTRACT_ENGINE": "layout",
    }
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    deadline = time.monotonic() + 120
    key = None
    while key is None and time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            raise SystemExit("the server exited before printing its admin key")
        if found := re.search(r"(dxk_\S+)", line):
            key = found.group(1)
    if key is None:
        raise SystemExit("no admin key printed within 120 s")
    base = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return server, key
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready within 120 s")


async def probe(client: httpx.AsyncClient, until: float) -> list[float]:
    latencies = []
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await client.get("/health")
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        await asyncio.sleep(0.05)
    return latencies


async def extract_loop(
    client: httpx.AsyncClient, pdf: bytes, headers: dict[str, str], until: float
) -> list[float]:
    durations = []
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await client.post("/extract/hostile", content=pdf, headers=headers)
        assert response.status_code == 200, response.text
        durations.append(time.perf_counter() - started)
    return durations


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"n={len(values)} p50={statistics.median(values):.1f} p99={p99:.1f} max={max(values):.1f}"


def stdlib_seconds(digits: int) -> float:
    started = time.perf_counter()
    re.search(PATTERN, "1" * digits + "x")
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--digits", type=int, default=40)
    args = parser.parse_args()

    value = "1" * args.digits + "x"
    pdf, _ = invoice_pdf(lines=[(60, 70, "ACME Supplies GmbH"), (60, 120, f"Invoice number {value}")])
    with tempfile.TemporaryDirectory() as data_dir:
        server, key = start_server(data_dir, port := free_port())
        try:
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                schema = {
                    "type": "object",
                    "properties": {"invoice_number": {"type": "string", "pattern": PATTERN}},
                }
                created = await client.post(
                    "/schemas", json={"name": "hostile", "schema": schema}, headers=headers
                )
                assert created.status_code == 201, created.text
                first = await client.post("/extract/hostile", content=pdf, headers=headers)  # warm-up
                assert first.status_code == 200, first.text
                read = first.json()["fields"]["/invoice_number"]["raw_text"]
                print(f"value read: {read!r}; findings: {[f['keyword'] for f in first.json()['validation']]}")

                idle = await probe(client, time.monotonic() + 3)
                until = time.monotonic() + args.seconds
                loaded, *durations = await asyncio.gather(
                    probe(client, until),
                    *(extract_loop(client, pdf, headers, until) for _ in range(args.concurrency)),
                )
        finally:
            server.terminate()
            server.wait(30)

    extractions = [d for each in durations for d in each]
    print(f"/health idle (ms):   {summary(idle)}")
    print(f"/health loaded (ms): {summary(loaded)}")
    print(f"ratio p50 loaded/idle: {statistics.median(loaded) / statistics.median(idle):.2f}")
    median_s = statistics.median(extractions)
    print(f"extractions in flight: {args.concurrency}; done {len(extractions)}, p50 {median_s:.2f} s")
    print("standard library re on the same pattern (the engine before issue 11), fewer digits:")
    for digits in (18, 20, 22):
        seconds = stdlib_seconds(digits)
        at_full = 2 ** (args.digits - digits) * seconds
        print(f"  {digits} digits: {seconds:.2f} s (so at {args.digits} digits: ~{at_full:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
