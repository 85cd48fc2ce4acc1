"""Layout backends that need no model: the PDF's own structure, and the combination ``auto``."""

from __future__ import annotations

from collections.abc import Sequence

from app.pages import Page, Region
from app.regions.base import LayoutBackend


class PdfNativeLayout(LayoutBackend):
    """Regions PyMuPDF read from born-digital pages at ingest (``Page.native_regions``); none for
    scans and images."""

    name = "pymupdf"

    def detect(self, pages: Sequence[Page]) -> list[list[Region]]:
        return [list(page.native_regions or []) for page in pages]


class AutoLayout(LayoutBackend):
    """The PDF's own layout where the page has one, the model for scans and images (when a model
    is configured; otherwise those pages get no regions)."""

    name = "auto"

    def __init__(self, model: LayoutBackend | None) -> None:
        self.native = PdfNativeLayout()
        self.model = model

    def detect(self, pages: Sequence[Page]) -> list[list[Region]]:
        results: list[list[Region]] = [[] for _ in pages]
        need_model = [i for i, page in enumerate(pages) if page.native_regions is None]
        for i, page in enumerate(pages):
            if page.native_regions is not None:
                results[i] = list(page.native_regions)
        if self.model is not None and need_model:
            for i, regions in zip(need_model, self.model.detect([pages[i] for i in need_model]), strict=True):
                results[i] = regions
        return results
