"""Ingest speed against bare PyMuPDF rendering, and peak memory on a 300-page PDF.

    python bench/bench_ingest.py [--pages 40] [--dpi 200] [--repeat 3]
    python bench/bench_ingest.py --memory [--pages 300]

Speed: the same generated invoice PDF is (a) rendered with bare PyMuPDF at the same DPI and
(b) ingested by docextract (render, RGB image, text-layer words, scanned-page check), alternately,
best of --repeat. Prints pages/s of both and the ratio (goal: >= 0.8). Also prints the cost of the
PDF's own layout (tables and blocks), which the analyze pipeline adds for born-digital pages.
Memory: runs the whole analyze pipeline (no OCR) over --pages pages and prints the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.documents.analyze import AnalyzeOptions, analyze_document
from app.documents.ingest import IngestLimits, open_document
from app.regions.native import AutoLayout
from tests.documents import INVOICE_LINES, invoice_pdf

# A fuller page than the test invoice: 30 line items.
LINES = INVOICE_LINES + [
    (60, 450 + 12 * i, f"Item {i:02d} steel bolt M{i % 9 + 3} x{i + 1} 0.{i:02d} {i}.50") for i in range(30)
]


def bare(pdf: bytes, dpi: int) -> float:
    started = time.perf_counter()
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    zoom = pymupdf.Matrix(dpi / 72, dpi / 72)
    for page in doc:
        page.get_pixmap(matrix=zoom, colorspace=pymupdf.csRGB, alpha=False)
    doc.close()
    return time.perf_counter() - started


def ours(pdf: bytes, dpi: int, native_layout: bool) -> float:
    started = time.perf_counter()
    with open_document(pdf, IngestLimits(dpi=dpi, max_pages=10_000)) as document:
        for _ in document.pages(native_layout=native_layout):
            pass
    return time.perf_counter() - started


def speed(pdfs: list[bytes], label: str, dpi: int, repeat: int) -> None:
    pages = sum(pymupdf.open(stream=pdf, filetype="pdf").page_count for pdf in pdfs)
    times: dict[str, list[float]] = {"bare": [], "ingest": [], "ingest+layout": []}
    for _ in range(repeat):
        times["bare"].append(sum(bare(pdf, dpi) for pdf in pdfs))
        times["ingest"].append(sum(ours(pdf, dpi, native_layout=False) for pdf in pdfs))
        times["ingest+layout"].append(sum(ours(pdf, dpi, native_layout=True) for pdf in pdfs))
    best = {name: min(values) for name, values in times.items()}
    print(f"{label}: {pages} pages at {dpi} DPI, best of {repeat}")
    for name, seconds in best.items():
        print(f"  {name:<14} {pages / seconds:7.1f} pages/s  ({seconds * 1000 / pages:6.1f} ms/page)")
    print(f"  ratio ingest/bare (pages/s): {best['bare'] / best['ingest']:.2f}  (goal >= 0.8)")
    print(f"  ratio ingest+layout/bare:    {best['bare'] / best['ingest+layout']:.2f}")


def memory(pages: int) -> None:
    pdf, _ = invoice_pdf(pages=pages, lines=LINES)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    analysis = asyncio.run(
        analyze_document(
            pdf,
            AnalyzeOptions(ocr=False),
            limits=IngestLimits(max_pages=10_000),
            layout=AutoLayout(None),
            ocr=None,
        )
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    words = sum(len(p.words) for p in analysis.map.pages)
    print(
        f"{len(analysis.map.pages)} pages analysed ({words} words) in {elapsed:.1f} s; "
        f"peak RSS {peak:.0f} MiB (before the run {before:.0f} MiB; goal < 1024 MiB)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument(
        "--corpus", type=Path, help="also measure every PDF under this folder (e.g. ../shared/corpus)"
    )
    args = parser.parse_args()
    if args.memory:
        memory(args.pages or 300)
    else:
        generated, _ = invoice_pdf(pages=args.pages or 40, lines=LINES)
        speed([generated], "generated invoice", args.dpi, args.repeat)
        if args.corpus:
            real = [path.read_bytes() for path in sorted(args.corpus.rglob("*.pdf"))]
            speed(real, f"{len(real)} PDFs under {args.corpus}", args.dpi, args.repeat)
