"""Concurrent OCR requests against one pool: does concurrency cost more than serial work?

Reads ``--count`` receipt images (or generated pages when ``--images`` is not given) through an
:class:`~app.ocr.pool.OcrPool` in worker processes, first one after another, then all at once (as
that many API requests would), for each pool shape ``workers x threads`` given. Prints the serial
total, the concurrent wall time and their ratio (goal: concurrent within 2x serial), and the p50/p95
latency of one request under concurrency. The pool is warmed (models loaded) before timing, and its
content cache is off so every request really runs.

    python -m bench.bench_ocr_pool --images ../shared/corpus/sroie --count 10 --shapes 1x2,2x1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from PIL import Image

from app.ocr.engines import build_ocr_engine
from app.ocr.pool import OcrPool
from app.pages import Page
from bench.bench_ocr import render_page


def load_pages(images: Path | None, count: int) -> list[Page]:
    if images is None:
        pictures = [render_page(i, 200) for i in range(count)]
    else:
        paths = sorted(images.glob("*.jpg"))[:count]
        pictures = [Image.open(p).convert("RGB") for p in paths]
    return [
        Page(number=1, width=img.width, height=img.height, kind="image", dpi=None, image=img)
        for img in pictures
    ]


async def run_shape(engine_name: str, workers: int, threads: int, pages: list[Page]) -> dict[str, float]:
    engine = build_ocr_engine(engine_name, threads=threads)
    async with OcrPool(engine, executor="process", max_workers=workers, cache_pages=0) as pool:
        await asyncio.gather(*(pool.lines(pages[0]) for _ in range(workers)))  # load models in each worker
        started = time.perf_counter()
        for page in pages:
            await pool.lines(page)
        serial = time.perf_counter() - started

        async def timed(page: Page) -> float:
            t0 = time.perf_counter()
            await pool.lines(page)
            return time.perf_counter() - t0

        started = time.perf_counter()
        latencies = sorted(await asyncio.gather(*(timed(p) for p in pages)))
        concurrent = time.perf_counter() - started
    return {
        "serial_s": serial,
        "concurrent_s": concurrent,
        "ratio": concurrent / serial,
        "pages_per_s": len(pages) / concurrent,
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=Path, help="folder of .jpg pages (default: generated A4 pages)")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--engine", default="ppocr-v6")
    parser.add_argument("--shapes", default="1x2,2x1", help="workers x threads, comma separated")
    args = parser.parse_args()
    pages = load_pages(args.images, args.count)
    print(f"{len(pages)} pages, engine {args.engine}")
    print("| workers x threads | serial s | concurrent s | ratio | pages/s | p50 s | p95 s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes.split(","):
        workers, threads = (int(v) for v in shape.split("x"))
        r = asyncio.run(run_shape(args.engine, workers, threads, pages))
        print(
            f"| {workers} x {threads} | {r['serial_s']:.2f} | {r['concurrent_s']:.2f} | {r['ratio']:.2f} "
            f"| {r['pages_per_s']:.2f} | {r['p50_s']:.2f} | {r['p95_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
