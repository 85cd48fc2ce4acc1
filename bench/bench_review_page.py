"""How long the review page takes to open a document, in a real headless Chromium.

The app runs under uvicorn (SQLite, the layout engine); a reviewer signs in, then the page opens
an extraction by link (``/review#ext_...``) and the clock stops when the first page's image is
drawn with its evidence boxes, its clickable words and the field list. Baseline in the same run:
a one-page document. Each document is opened cold (its page never rendered: the document is
opened and, for a scan, OCRed) and then warm (the page cache answers).

    python bench/bench_review_page.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn
from playwright.sync_api import Page, sync_playwright
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.keys import ApiKeys, Scope
from app.lib.settings import AppSettings, DatabaseSettings, EngineSettings, load_settings
from app.server.core import create_app
from tests.documents import INVOICE_LINES, invoice_pdf, scanned_pdf

CHROMIUM = "/usr/bin/chromium"
READY = """() => {
  const image = document.getElementById('page-image');
  return image && image.complete && image.naturalWidth > 0
    && document.querySelectorAll('.word').length > 0
    && document.querySelectorAll('.field').length > 0
    && document.querySelectorAll('.box').length > 0;
}"""


async def keys(url: str) -> tuple[str, str]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            erp = await ApiKeys(session).create("erp", [Scope.EXTRACT], team="bench")
            reviewer = await ApiKeys(session).create("reviewer", [Scope.REVIEW], team="bench")
            return erp.key, reviewer.key
    finally:
        await engine.dispose()


def invoice(pages: int, run: int) -> bytes:
    """Another document each run (one more line), so the first opening renders it afresh."""
    pdf, _ = invoice_pdf(pages, [*INVOICE_LINES, (60, 800, f"Reference {run:04d}")])
    return pdf


def open_ms(page: Page, base: str, extraction_id: str) -> float:
    page.goto(f"{base}/review")
    page.wait_for_selector("#queue-rows, #signin", state="attached")
    started = time.perf_counter()
    page.evaluate(f"() => {{ location.hash = '#{extraction_id}'; }}")
    page.wait_for_function(READY, polling="raf", timeout=120_000)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    folder = Path(tempfile.mkdtemp(prefix="bench-review-"))
    url = f"sqlite+aiosqlite:///{folder / 'db.sqlite'}"
    settings = load_settings(
        app=AppSettings(data_dir=folder / "data", log_level="WARNING"),
        database=DatabaseSettings(url=url),
        engine=EngineSettings(engine="layout"),
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    erp, reviewer = asyncio.run(keys(url))
    documents: dict[str, Callable[[int], bytes]] = {
        "1 page, born-digital": lambda run: invoice(1, run),
        "10 pages, born-digital": lambda run: invoice(10, run),
        "1 page, scanned": lambda run: scanned_pdf(invoice(1, run)),
        "10 pages, scanned": lambda run: scanned_pdf(invoice(10, run)),
    }
    timings: dict[str, tuple[list[float], list[float]]] = {}
    with httpx.Client(base_url=base, timeout=600) as api, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        signed_in = context.request.post(f"{base}/review/session", data={"api_key": reviewer})
        assert signed_in.ok, signed_in.text()
        page = context.new_page()
        for name, make in documents.items():
            cold: list[float] = []
            warm: list[float] = []
            for run in range(runs):
                extracted = api.post("/extract/invoice", content=make(run), headers={"X-API-Key": erp})
                assert extracted.status_code == 200, extracted.text
                extraction_id = extracted.json()["id"]
                cold.append(open_ms(page, base, extraction_id))
                warm.append(open_ms(page, base, extraction_id))
            timings[name] = (cold, warm)
        browser.close()
    server.should_exit = True
    base_cold = statistics.median(timings["1 page, born-digital"][0])
    print(f"review page: open a document until page 1 is drawn with boxes and words (median of {runs})")
    print(f"{'document':<26}{'cold ms':>9}{'warm ms':>9}{'cold / 1-page born-digital':>28}")
    for name, (cold, warm) in timings.items():
        print(
            f"{name:<26}{statistics.median(cold):>9.0f}{statistics.median(warm):>9.0f}"
            f"{statistics.median(cold) / base_cold:>28.2f}"
        )


if __name__ == "__main__":
    main()
