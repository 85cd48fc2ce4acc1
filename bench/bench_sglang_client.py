"""SGLang client overhead: what the engine costs per page beyond a bare HTTP post.

    python bench/bench_sglang_client.py [--requests 200] [--concurrency 16] [--dpi 200]

The fake SGLang (tests/fake_sglang.py) runs in another process and answers at once (images not
decoded), so this process's CPU time is the client's alone. A 200-DPI invoice page and an invoice-like
schema (~12 line items, so a few hundred output tokens with logprobs) go through:

- ``bare httpx``: one AsyncClient posting the engine's own request body, built once, and parsing the
  JSON answer: the floor for any client;
- ``engine``: ``SGLangEngine.generate`` per page: encode the page (PNG, off the event loop), serialise,
  post under the in-flight limit, parse, align token byte offsets;
- ``encode only``: the engine's body building alone, to attribute the difference.

Pages/s and CPU ms per request are printed with ratios against ``bare httpx`` from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import orjson
from PIL import Image

from app.engines.base import EngineRequest
from app.engines.sglang import SGLangConfig, SGLangEngine
from tests.documents import invoice_pdf, rasterise

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "issue_date": {"type": "string", "format": "date"},
        "supplier": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "vat_id": {"type": "string"}},
        },
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "line_items": {
            "type": "array",
            "minItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "quantity": {"type": "number"},
                    "unit_price": {"type": "number"},
                    "amount": {"type": "number"},
                },
            },
        },
        "subtotal": {"type": "number"},
        "tax": {"type": "number"},
        "total": {"type": "number"},
    },
}
PROMPT = "请按下列JSON格式输出图中信息:\n{}"


async def run(concurrency: int, requests: int, one: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Pages/s and process CPU ms per request for ``requests`` calls, ``concurrency`` at a time."""
    for _ in range(min(concurrency, 8)):  # warm-up: connections, thread pool, caches
        await one()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return requests / wall, cpu * 1000 / requests


async def bench(url: str, image: Image.Image, requests: int, concurrency: int) -> None:
    request = EngineRequest(image=image, prompt=PROMPT, decoding_schema=SCHEMA, max_tokens=4096)
    engine = SGLangEngine(SGLangConfig(base_url=url, max_in_flight=concurrency))
    body = engine._body(request)  # the exact bytes the engine posts
    sample = await engine.generate(request)
    print(
        f"page {image.width}x{image.height}, request body {len(body) / 1e6:.2f} MB, answer "
        f"{len(sample.text)} chars in {len(sample.tokens)} tokens; "
        f"{requests} requests, concurrency {concurrency}"
    )

    client = httpx.AsyncClient(
        base_url=url, limits=httpx.Limits(max_connections=concurrency), trust_env=False
    )

    async def bare() -> None:
        response = await client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        orjson.loads(response.content)

    async def encode() -> None:
        await asyncio.to_thread(engine._body, request)

    rows = [
        ("bare httpx", await run(concurrency, requests, bare)),
        ("engine", await run(concurrency, requests, lambda: engine.generate(request))),
        ("encode only", await run(concurrency, requests, encode)),
    ]
    await client.aclose()
    await engine.aclose()
    base_rate, base_cpu = rows[0][1]
    print(f"{'':12} {'pages/s':>9} {'x bare':>7} {'CPU ms/req':>11} {'x bare':>7}")
    for name, (rate, cpu) in rows:
        print(f"{name:12} {rate:9.1f} {rate / base_rate:7.2f} {cpu:11.2f} {cpu / base_cpu:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dpi", type=int, default=200)
    args = parser.parse_args()
    image = Image.open(io.BytesIO(rasterise(invoice_pdf()[0], dpi=args.dpi))).convert("RGB")
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_sglang", "--no-check-images"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        asyncio.run(bench(url, image, args.requests, args.concurrency))
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
