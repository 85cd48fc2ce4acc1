"""The layout interface: page images in, regions out. Backends are chosen by settings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from app.pages import Page, Region

# PP-DocLayoutV3's 25 labels (GLM-OCR's layout model); every backend labels regions from this list.
LAYOUT_LABELS: tuple[str, ...] = (
    "abstract",
    "algorithm",
    "aside_text",
    "chart",
    "content",
    "display_formula",
    "doc_title",
    "figure_title",
    "footer",
    "footer_image",
    "footnote",
    "formula_number",
    "header",
    "header_image",
    "image",
    "inline_formula",
    "number",
    "paragraph_title",
    "reference",
    "reference_content",
    "seal",
    "table",
    "text",
    "vertical_text",
    "vision_footnote",
)


class LayoutBackend(ABC):
    """Finds regions on pages. Implementations are synchronous and CPU/GPU bound: callers run them
    off the event loop. ``detect`` takes a batch so model backends can batch inference."""

    name: str

    @abstractmethod
    def detect(self, pages: Sequence[Page]) -> list[list[Region]]:
        """Regions for each page, in reading order (``Region.order`` = 0, 1, ...)."""
