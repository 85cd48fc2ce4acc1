"""A stored document's pages as a reviewer sees them: an image at the width the browser asks for,
and the words of the text map (what a click on the page fills a field with).

Rendering a page means opening the document and, for a scan, its OCR (remembered by the OCR pool
by content): the results are kept in small LRU caches, so paging through a document and back, or
two reviewers on one document, cost one rendering per page.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from app.documents.analyze import AnalyzeOptions
from app.documents.detect import detect_type
from app.documents.service import DocumentAnalyzer
from app.lib.errors import DocumentError, RequestError
from app.lib.problems import INVALID_PAGE_SELECTION, PAGE_NOT_FOUND
from app.pages import Page, Word

ImageFormat = Literal["png", "webp"]
MEDIA_TYPES: dict[ImageFormat, str] = {"png": "image/png", "webp": "image/webp"}
MAX_RENDERED_PAGES = 16
MAX_IMAGE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class RenderedPage:
    number: int
    page_count: int
    width: float
    """In PDF points (pixels for an image document), as the text map gives it."""
    height: float
    image: Image.Image
    words: list[Word]


class PageImages:
    """Renders and remembers pages by (document SHA-256, page number)."""

    def __init__(self) -> None:
        self._pages: OrderedDict[tuple[str, int], RenderedPage] = OrderedDict()
        self._images: OrderedDict[tuple[str, int, int, str], bytes] = OrderedDict()
        self._image_bytes = 0
        self._lock = threading.Lock()
        self._rendering: dict[tuple[str, int], asyncio.Future[RenderedPage]] = {}

    async def page(self, analyzer: DocumentAnalyzer, sha256: str, data: bytes, number: int) -> RenderedPage:
        """The page with its image and words; a 404 problem for a page the document lacks."""
        key = (sha256, number)
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        running = self._rendering.get(key)
        if running is not None:  # another request renders it right now: wait for that one
            return await asyncio.shield(running)
        future: asyncio.Future[RenderedPage] = asyncio.get_running_loop().create_future()
        self._rendering[key] = future
        try:
            page = await _render(analyzer, data, number)
            future.set_result(page)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting requests re-raise it, nobody logs it as lost
            raise
        finally:
            del self._rendering[key]
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > MAX_RENDERED_PAGES:
                self._pages.popitem(last=False)
        return page

    async def image(
        self, analyzer: DocumentAnalyzer, sha256: str, data: bytes, number: int, width: int, fmt: ImageFormat
    ) -> bytes:
        """The page as PNG or WebP, ``width`` pixels wide (never enlarged past its rendering)."""
        key = (sha256, number, width, fmt)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        page = await self.page(analyzer, sha256, data, number)
        encoded = await asyncio.to_thread(_encode, page.image, width, fmt)
        with self._lock:
            if key not in self._images:
                self._images[key] = encoded
                self._image_bytes += len(encoded)
            while self._image_bytes > MAX_IMAGE_BYTES and len(self._images) > 1:
                _, dropped = self._images.popitem(last=False)
                self._image_bytes -= len(dropped)
        return encoded


async def _render(analyzer: DocumentAnalyzer, data: bytes, number: int) -> RenderedPage:
    seen: list[Page] = []
    if detect_type(data[:1024]) == "xml":  # an e-invoice upload: the XML is all there is
        raise RequestError(PAGE_NOT_FOUND, "The document is an XML e-invoice; it has no pages.")

    def keep(page: Page, _: object) -> None:
        page.image.load()  # converted now, while the page is ours
        seen.append(page)

    try:
        analysis = await analyzer.analyze(
            data, AnalyzeOptions(pages=str(number), ocr=True, layout=False), on_page=keep
        )
    except DocumentError as exc:
        if exc.kind is INVALID_PAGE_SELECTION:
            raise RequestError(PAGE_NOT_FOUND, f"The document has no page {number}.") from exc
        raise
    [page] = seen
    return RenderedPage(
        number=number,
        page_count=analysis.map.page_count,
        width=page.width,
        height=page.height,
        image=page.image,
        words=list(page.words),
    )


def _encode(image: Image.Image, width: int, fmt: ImageFormat) -> bytes:
    if width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if fmt == "webp":
        image.save(buffer, "WEBP", quality=85, method=4)
    else:
        image.save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
