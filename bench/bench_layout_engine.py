"""Pages per second of the layout engine, end to end (ingest, OCR for scans, engine, trust layer),
against ingest alone in the same run.

    .venv/bin/python bench/bench_layout_engine.py                        # generated born-digital pages
    .venv/bin/python bench/bench_layout_engine.py --corpus ../shared/corpus --limit 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pymupdf

from app.documents.analyze import AnalyzeOptions
from app.documents.service import DocumentAnalyzer
from app.engines.layout import LayoutEngine
from app.extraction.service import Extractor
from app.lib.settings import OcrSettings, load_settings
from app.registry.service import SchemaVersion
from app.trust.evaluate import documents_in

SCHEMA = Path(__file__).parents[1] / "schemas" / "invoice.json"


def generated(pages: int) -> bytes:
    """A born-digital invoice: header, an item table on every page, totals."""
    doc = pymupdf.open()
    for number in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((50, 60), "Northwind Traders Ltd", fontsize=12)
        page.insert_text((350, 60), f"Invoice No.: NW-{number:04d}   Date: 14/03/2024", fontsize=9)
        for column, (x, title) in enumerate(
            ((50, "Description"), (300, "Qty"), (380, "Price"), (480, "Amount"))
        ):
            page.insert_text((x, 150), title, fontsize=9)
            for row in range(30):
                text = f"Item {row}" if column == 0 else f"{row + column}.00"
                page.insert_text((x, 168 + 16 * row), text, fontsize=9)
        page.insert_text((380, 680), "Total EUR 1234.50", fontsize=9)
    return bytes(doc.tobytes())


def version(schema_path: Path) -> SchemaVersion:
    schema = json.loads(schema_path.read_text())
    return SchemaVersion("bench", 1, None, schema, "0" * 64, "file", datetime.now(UTC), None, 1)


async def run(documents: list[bytes], schema: SchemaVersion, label: str) -> None:
    # Every pass really reads: the ratios compare work, not the OCR cache.
    settings = load_settings(ocr=OcrSettings(cache_pages=0))
    analyzer = DocumentAnalyzer(settings)
    extractor = Extractor(LayoutEngine(), analyzer, max_tokens=4096, page_concurrency=4)
    await extractor.extract(documents[0], schema)  # warm: the embedding model, OCR sessions
    started, pages = time.perf_counter(), 0
    for data in documents:
        pages += len((await extractor.extract(data, schema)).result["pages"])
    total = time.perf_counter() - started
    started = time.perf_counter()
    for data in documents:
        await analyzer.analyze(data, AnalyzeOptions(layout=False))
    ingest = time.perf_counter() - started
    analyzer.close()
    print(
        f"{label}: {pages} pages, {pages / total:.1f} pages/s end to end "
        f"(ingest + OCR alone: {pages / ingest:.1f} pages/s; "
        f"engine + trust {1000 * (total - ingest) / pages:.1f} ms/page)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    schema = version(SCHEMA)
    asyncio.run(run([generated(args.pages)], schema, "generated born-digital"))
    if args.corpus:
        for folder, name in (("invoice2data", "born-digital PDFs"), ("sroie", "scans (OCR)")):
            paths = documents_in(args.corpus / folder)[: args.limit]
            if paths:
                asyncio.run(run([p.read_bytes() for p in paths], schema, f"{folder} {name}"))


if __name__ == "__main__":
    main()
