"""OCR throughput on generated invoice-like pages: how many scanned pages a CPU box turns into words.

Renders ``--pages`` Letter pages with PyMuPDF at ``--dpi``, loads each engine's models once (timed
apart), then times ``recognize`` page by page; the last engine is the baseline. Rendering is not
timed. ``bench/bench_ocr_engines.py`` compares accuracy too.

    python bench/bench_ocr.py --pages 5 --dpi 200 --engines ppocr-v6,ppocr-v6-tiny,rapidocr-v4
"""

from __future__ import annotations

import argparse
import random
import time

import pymupdf
from PIL import Image

from app.ocr.engine import available_cpus
from app.ocr.engines import DEFAULT_OCR_ENGINE, build_ocr_engine

ITEMS = [
    "Widget blue large",
    "Consulting services",
    "Shipping and handling",
    "Annual support plan",
    "Steel bolts M8 x 40",
    "Printer paper A4",
    "Training workshop",
    "Cloud hosting June",
    "Replacement filter",
    "Installation labour",
]


def render_page(index: int, dpi: int) -> Image.Image:
    """One invoice-like page (header, parties, a table of items, totals, terms); ``index`` seeds it."""
    rng = random.Random(index)
    doc = pymupdf.open()
    try:
        page = doc.new_page(width=612, height=792)

        def text(x: float, y: float, value: str, size: float = 10) -> None:
            page.insert_text((x, y), value, fontname="helv", fontsize=size)

        text(50, 60, "ACME Supplies Ltd", 16)
        text(400, 60, "INVOICE", 18)
        text(50, 80, "221 Baker Street, London NW1 6XE")
        text(400, 90, f"Invoice No.: INV-2024-{rng.randint(1, 9999):04d}")
        text(400, 105, f"Date: 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        text(50, 140, "Bill to: Northwind Traders", 11)
        text(50, 155, "42 Harbour Road, Bristol BS1 5TT")
        for x, label in ((50, "Description"), (300, "Qty"), (360, "Unit price"), (480, "Amount")):
            text(x, 200, label, 11)
        y, subtotal = 220.0, 0.0
        for name in rng.sample(ITEMS, k=rng.randint(4, 8)):
            qty, price = rng.randint(1, 20), rng.randint(100, 99999) / 100
            subtotal += qty * price
            text(50, y, name)
            text(300, y, str(qty))
            text(360, y, f"{price:.2f}")
            text(480, y, f"{qty * price:.2f}")
            y += 16
        y += 24
        vat = round(subtotal * 0.2, 2)
        for label, amount in (("Subtotal", subtotal), ("VAT 20%", vat), ("Total due EUR", subtotal + vat)):
            text(360, y, label, 11)
            text(480, y, f"{amount:.2f}", 11)
            y += 16
        text(50, y + 60, "Payment terms: net 30 days. Please quote the invoice number.")
        text(50, y + 75, "Bank transfer to IBAN GB29 NWBK 6016 1331 9268 19")
        pix = page.get_pixmap(dpi=dpi)
        return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    finally:
        doc.close()


def pages_per_second(name: str, images: list[Image.Image], threads: int) -> tuple[float, float]:
    """(pages/s, model load s) of engine ``name`` over ``images``, one after another."""
    engine = build_ocr_engine(name, threads=threads)
    start = time.perf_counter()
    engine.recognize(images[0].crop((0, 0, 400, 200)))  # loads the models
    load = time.perf_counter() - start
    start = time.perf_counter()
    for image in images:
        engine.recognize(image)
    return len(images) / (time.perf_counter() - start), load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=5, help="pages to OCR (default 5)")
    parser.add_argument("--dpi", type=int, default=200, help="rendering resolution (default 200)")
    parser.add_argument("--threads", type=int, default=available_cpus(), help="threads (default: all CPUs)")
    parser.add_argument(
        "--engines",
        default=f"{DEFAULT_OCR_ENGINE},rapidocr-v4",
        help="engines to time; the last is the baseline the others are compared with",
    )
    args = parser.parse_args()

    images = [render_page(i, args.dpi) for i in range(args.pages)]
    width, height = images[0].size
    print(f"{args.pages} pages at {args.dpi} DPI ({width}x{height} px), {args.threads} threads")
    names = args.engines.split(",")
    results = {name: pages_per_second(name, images, args.threads) for name in names}
    baseline = results[names[-1]][0]
    for name, (rate, load) in results.items():
        print(f"{name}: {rate:.2f} pages/s ({rate / baseline:.2f}x {names[-1]}), model load {load:.2f} s")


if __name__ == "__main__":
    main()
