"""Pages of stored documents for the review page: rendered once, then answered from the cache."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PIL import Image

from app.documents.analyze import Analysis, AnalyzeOptions
from app.documents.page_images import PageImages
from app.documents.textmap import DocumentMap
from app.lib.errors import DocumentError, RequestError
from app.lib.problems import INVALID_PAGE_SELECTION, PAGE_NOT_FOUND
from app.pages import Page, Word


class CountingAnalyzer:
    """Stands in for the DocumentAnalyzer: one page of 600x800 pixels, a word, and a count."""

    def __init__(self) -> None:
        self.calls = 0

    async def analyze(self, data: bytes, options: AnalyzeOptions, on_page: Any = None) -> Analysis:
        self.calls += 1
        await asyncio.sleep(0.01)  # long enough for concurrent requests to overlap
        if options.pages != "1":
            raise DocumentError(INVALID_PAGE_SELECTION, "no such page")
        page = Page(
            number=1,
            width=300.0,
            height=400.0,
            kind="scanned",
            image=Image.new("RGB", (600, 800), "white"),
            dpi=144,
            words=[Word("Total", (0.1, 0.2, 0.3, 0.25), 0.99, "ocr", 0)],
        )
        on_page(page, [])
        return Analysis(DocumentMap(page_count=1), "pdf")


async def test_a_page_is_rendered_once_for_concurrent_and_later_requests() -> None:
    analyzer, images = CountingAnalyzer(), PageImages()
    first, second = await asyncio.gather(
        images.page(analyzer, "sha", b"pdf", 1),  # type: ignore[arg-type]
        images.page(analyzer, "sha", b"pdf", 1),  # type: ignore[arg-type]
    )
    assert first is second and analyzer.calls == 1
    assert [w.text for w in first.words] == ["Total"] and first.page_count == 1
    png = await images.image(analyzer, "sha", b"pdf", 1, 300, "png")  # type: ignore[arg-type]
    again = await images.image(analyzer, "sha", b"pdf", 1, 300, "png")  # type: ignore[arg-type]
    assert png is again and analyzer.calls == 1
    with Image.open(__import__("io").BytesIO(png)) as decoded:
        assert decoded.size == (300, 400)
    await images.page(analyzer, "other", b"pdf", 1)  # type: ignore[arg-type]
    assert analyzer.calls == 2  # another document is rendered on its own


async def test_a_missing_page_is_page_not_found_and_not_cached() -> None:
    analyzer, images = CountingAnalyzer(), PageImages()
    for _ in range(2):
        with pytest.raises(RequestError) as raised:
            await images.page(analyzer, "sha", b"pdf", 2)  # type: ignore[arg-type]
        assert raised.value.kind is PAGE_NOT_FOUND
    assert analyzer.calls == 2
