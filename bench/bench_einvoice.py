"""Time per e-invoice, and per UBL/CII export, against reading the same invoice's page.

    .venv/bin/python bench/generate_einvoice_set.py /tmp/einv --count 40 --seed 7
    .venv/bin/python bench/bench_einvoice.py /tmp/einv [--runs 3]

Every document of each folder of the set is extracted with ``Extractor.extract`` against the built-in
``invoice`` schema, one at a time (the median of ``--runs`` passes over the folder, after one warm-up
document), with the ``layout`` engine and OCR off (the pages are born-digital):

- ``page``: the page without XML, read by the layout engine: the baseline;
- ``facturx``: the Factur-X PDF: its XML read, checked against the XSD, mapped, and its page read by
  the layout engine to compare with;
- ``ubl`` / ``cii``: XML uploads (no page);
- ``export ubl`` / ``export cii``: an extraction's data to an XSD-checked document.

Printed: milliseconds per document (median) and the ratio to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.cli.common import schema_from_file
from app.documents.service import DocumentAnalyzer
from app.einvoice.export import export_xml
from app.jobs.services import build_extractor, close_extractor
from app.lib.logging import configure_logging
from app.lib.settings import EngineSettings, OcrSettings, load_settings

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "invoice.json"


def per_document(timings: list[float]) -> float:
    return statistics.median(timings) * 1000


async def measure(documents: list[Path], run: Callable[[bytes], Awaitable[Any]], runs: int) -> float:
    bodies = [path.read_bytes() for path in documents]
    await run(bodies[0])  # warm-up: imports, XSDs, the matcher's vectors
    passes = []
    for _ in range(runs):
        timings = []
        for body in bodies:
            started = time.perf_counter()
            await run(body)
            timings.append(time.perf_counter() - started)
        passes.append(per_document(timings))
    return statistics.median(passes)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="made by bench/generate_einvoice_set.py")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    settings = load_settings(engine=EngineSettings(engine="layout"), ocr=OcrSettings(enabled=False))
    extractor = build_extractor(settings, DocumentAnalyzer(settings))
    version = schema_from_file(settings, SCHEMA)
    results: dict[str, Any] = {}

    async def extract(body: bytes) -> dict[str, Any]:
        result: dict[str, Any] = (await extractor.extract(body, version)).result
        return result

    rows: list[tuple[str, int, float]] = []
    try:
        for folder in ("page", "facturx", "ubl", "cii"):
            documents = sorted(p for p in (args.set / folder).iterdir() if p.suffix in (".pdf", ".xml"))
            rows.append((folder, len(documents), await measure(documents, extract, args.runs)))
        ubl_documents = sorted((args.set / "ubl").glob("*.xml"))
        for body in (p.read_bytes() for p in ubl_documents):
            result = await extract(body)
            results[result["id"]] = result["data"]
        datas = list(results.values())
        for syntax in ("UBL", "CII"):
            timings = []
            for data in datas:
                started = time.perf_counter()
                export_xml(data, version.compiled, syntax)
                timings.append(time.perf_counter() - started)
            rows.append((f"export {syntax.lower()}", len(datas), per_document(timings)))
    finally:
        await close_extractor(extractor)
    baseline = rows[0][2]
    print(f"{'form':<12} {'documents':>9} {'ms/document':>12} {'vs page':>8}")
    for name, count, ms in rows:
        print(f"{name:<12} {count:>9} {ms:>12.1f} {ms / baseline:>7.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
