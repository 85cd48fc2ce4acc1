"""The OCR pool reads each page content once: a counting engine in the pool's threads."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from app.ocr.engine import OcrEngine, OcrLine
from app.ocr.pool import OcrPool
from app.pages import Page


class CountingEngine(OcrEngine):
    """Reads one line naming the image's size and first pixel, and counts its reads."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, int]:
        return {"calls": self.calls}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.calls = state["calls"]
        self._lock = threading.Lock()

    def recognize(self, image: Image.Image) -> list[OcrLine]:
        with self._lock:
            self.calls += 1
        text = f"{image.mode} {image.size[0]}x{image.size[1]} {image.getpixel((0, 0))}"
        return [OcrLine(text, (0.1, 0.1, 0.9, 0.2), 0.9)]


def _page(colour: int | tuple[int, int, int], size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Page:
    return Page(
        number=1, width=size[0], height=size[1], kind="image", image=Image.new(mode, size, colour), dpi=None
    )


def _pool(engine: CountingEngine, cache_pages: int = 256) -> OcrPool:
    return OcrPool(engine, executor="thread", cache_pages=cache_pages)


async def test_the_same_page_content_is_read_once() -> None:
    engine = CountingEngine()
    async with _pool(engine) as pool:
        first = await pool.lines(_page((200, 10, 10)))
        again = await pool.lines(_page((200, 10, 10)))  # another Page, the same pixels
        assert engine.calls == 1
        assert again == first
        assert first[0].text == "RGB 40x30 (200, 10, 10)"
        # Grey pixels are read as the RGB image they convert to: the same content.
        await pool.lines(_page(128, mode="L"))
        await pool.lines(_page((128, 128, 128)))
        assert engine.calls == 2


async def test_another_page_is_read_again() -> None:
    engine = CountingEngine()
    async with _pool(engine) as pool:
        red = await pool.lines(_page((255, 0, 0)))
        blue = await pool.lines(_page((0, 0, 255)))
        assert engine.calls == 2
        assert red != blue
        # The same bytes in another shape (40x30 and 30x40 of one colour) are another page.
        await pool.lines(_page((0, 0, 255), size=(30, 40)))
        assert engine.calls == 3


async def test_more_pages_than_the_cache_holds_evict_the_least_recently_used() -> None:
    engine = CountingEngine()
    a, b, c = _page((1, 1, 1)), _page((2, 2, 2)), _page((3, 3, 3))
    async with _pool(engine, cache_pages=2) as pool:
        for page in (a, b, c):
            await pool.lines(page)
        assert engine.calls == 3
        await pool.lines(c)
        await pool.lines(b)  # b is now the most recently used, c the least
        assert engine.calls == 3  # the two most recent were kept
        await pool.lines(a)
        assert engine.calls == 4  # a, the oldest, was dropped; reading it again drops c, not b
        await pool.lines(b)
        assert engine.calls == 4
        await pool.lines(c)
        assert engine.calls == 5


async def test_a_closed_pool_refuses_even_a_page_it_remembers() -> None:
    engine = CountingEngine()
    page = _page((9, 9, 9))
    pool = _pool(engine)
    await pool.lines(page)
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.lines(page)
    with pytest.raises(RuntimeError, match="closed"):
        await pool.words(page)
    assert engine.calls == 1


async def test_a_pool_without_a_cache_reads_every_time() -> None:
    engine = CountingEngine()
    async with _pool(engine, cache_pages=0) as pool:  # what bench/bench_ocr_pool.py times
        for _ in range(3):
            await pool.lines(_page((5, 5, 5)))
    assert engine.calls == 3


async def test_changing_a_returned_list_does_not_change_what_the_pool_remembers() -> None:
    engine = CountingEngine()
    page = _page((7, 7, 7))
    async with _pool(engine) as pool:
        first = await pool.lines(page)
        expected = list(first)
        first.clear()
        second = await pool.lines(page)
        second.append(OcrLine("added", (0.0, 0.0, 0.1, 0.1), 1.0))
        assert await pool.lines(page) == expected
        assert engine.calls == 1
