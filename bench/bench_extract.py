"""Service overhead of ``POST /extract``: pages/s and CPU per page outside the engine.

    python bench/bench_extract.py [--documents 8] [--pages 10] [--concurrency 16]

The fake SGLang (tests/fake_sglang.py) runs in another process and answers at once, so this
process's CPU time is the service's. Two runs on the same pages:

- ``engine only``: ``SGLangEngine.generate`` on pages rendered beforehand (encode, post, parse);
- ``POST /extract``: the whole service: upload, ingest and render, prompt and decoding schema,
  engine, merge, validation, storage of document and result (SQLite), JSON response.

CPU per page of the service outside the engine = (service CPU - engine-only CPU) / pages. Goal: under
50 ms, so one API host can feed a GPU at 10+ pages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litestar.testing import AsyncTestClient

from app.auth.keys import ApiKeys, Scope
from app.documents.ingest import IngestLimits, open_document
from app.engines.base import EngineRequest
from app.engines.sglang import SGLangConfig, SGLangEngine
from app.extraction.prompt import extraction_prompt
from app.lib.settings import EngineSettings, IngestSettings, OcrSettings
from app.registry.builtins import default_builtin_dir, read_builtin_schemas
from app.schema.decoding import decoding_schema
from app.server.core import create_app
from tests.conftest import make_settings
from tests.documents import invoice_pdf


async def engine_only(url: str, pdf: bytes, documents: int, concurrency: int) -> tuple[float, float, int]:
    schema = read_builtin_schemas(default_builtin_dir())["invoice"]
    prompt, grammar = extraction_prompt(schema), decoding_schema(schema)
    with open_document(pdf, IngestLimits()) as document:
        images = [page.image for page in document.pages()]
    engine = SGLangEngine(SGLangConfig(base_url=url, max_in_flight=concurrency))
    slots = asyncio.Semaphore(concurrency)

    async def one(image: object) -> None:
        async with slots:
            await engine.generate(EngineRequest(image, prompt, grammar))  # type: ignore[arg-type]

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(image) for _ in range(documents) for image in images))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await engine.aclose()
    return cpu, wall, documents * len(images)


async def service(url: str, pdf: bytes, documents: int, concurrency: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(
            Path(tmp),
            f"sqlite+aiosqlite:///{tmp}/bench.db",
            engine=EngineSettings(sglang_url=url, page_concurrency=concurrency, max_in_flight=concurrency),
            ingest=IngestSettings(),
            ocr=OcrSettings(enabled=False),
        )
        app = create_app(settings)
        async with AsyncTestClient(app, timeout=600) as client:
            async with app.state.sessions() as session:
                key = (await ApiKeys(session).create("bench", [Scope.EXTRACT])).key
            headers = {"X-API-Key": key, "Content-Type": "application/pdf"}
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(documents):  # one document at a time, its pages concurrently
                response = await client.post("/extract/invoice", content=pdf, headers=headers)
                assert response.status_code == 200, response.text
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    pages = documents * len(response.json()["pages"])
    return cpu, wall, pages


async def main(args: argparse.Namespace) -> None:
    pdf, _ = invoice_pdf(pages=args.pages)
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_sglang", "--no-check-images"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        base_cpu, base_wall, base_pages = await engine_only(url, pdf, args.documents, args.concurrency)
        cpu, wall, pages = await service(url, pdf, args.documents, args.concurrency)
    finally:
        fake.terminate()
    engine_rate, service_rate = base_pages / base_wall, pages / wall
    engine_cpu, service_cpu = base_cpu * 1000 / base_pages, cpu * 1000 / pages
    print(f"{args.documents} documents x {args.pages} pages, concurrency {args.concurrency}, instant fake")
    print(f"  engine only     {engine_rate:6.1f} pages/s  {engine_cpu:6.1f} ms CPU/page")
    print(f"  POST /extract   {service_rate:6.1f} pages/s  {service_cpu:6.1f} ms CPU/page")
    print(f"  ratio service/engine-only pages/s: {service_rate / engine_rate:.2f}")
    print(f"  service CPU outside the engine: {service_cpu - engine_cpu:.1f} ms/page (goal < 50)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
