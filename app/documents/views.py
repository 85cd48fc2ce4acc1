"""The text map as ``POST /documents/analyze`` returns it, typed so the OpenAPI spec describes it."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.documents.analyze import Analysis
from app.pages import PageKind, WordSource

Box = Annotated[list[float], msgspec.Meta(description="x0, y0, x1, y1, normalised to the page (0-1).")]


class WordView(msgspec.Struct):
    text: str
    bbox: Box
    confidence: Annotated[float, msgspec.Meta(description="Recogniser confidence; 1.0 for a text layer.")]
    source: WordSource
    line: Annotated[int, msgspec.Meta(description="Words with the same number share a printed line.")]


class RegionView(msgspec.Struct):
    label: Annotated[str, msgspec.Meta(description="`table`, `text`, `title`, `picture`, ...")]
    bbox: Box
    score: float
    order: Annotated[int, msgspec.Meta(description="Reading order of the region on its page.")]


class PageView(msgspec.Struct):
    number: Annotated[int, msgspec.Meta(description="1-based.")]
    width: Annotated[float, msgspec.Meta(description="In PDF points (1/72 inch).")]
    height: float
    kind: PageKind
    regions: list[RegionView]
    words: Annotated[list[WordView], msgspec.Meta(description="In reading order.")]


class DocumentInfo(msgspec.Struct):
    type: Annotated[str, msgspec.Meta(description="The recognised media type.")]
    page_count: Annotated[int, msgspec.Meta(description="Pages in the document (not only those read).")]


class AnalysisWarning(msgspec.Struct):
    code: Literal["ocr_unavailable", "ocr_disabled"]
    pages: list[int]
    detail: str


class AnalysisView(msgspec.Struct):
    document: DocumentInfo
    page_count: int
    pages: Annotated[list[PageView], msgspec.Meta(description="The selected pages, in order.")]
    warnings: list[AnalysisWarning]
    timings_ms: Annotated[dict[str, float], msgspec.Meta(description="Time per phase, milliseconds.")]

    @classmethod
    def of(cls, analysis: Analysis, *, ocr_requested: bool) -> AnalysisView:
        warnings = []
        if analysis.ocr_skipped_pages:
            warnings.append(
                AnalysisWarning(
                    code="ocr_unavailable" if ocr_requested else "ocr_disabled",
                    pages=analysis.ocr_skipped_pages,
                    detail="These pages have no usable text layer and were not OCRed: they have no words.",
                )
            )
        text_map = analysis.map
        return cls(
            document=DocumentInfo(type=analysis.document_type, page_count=text_map.page_count),
            page_count=text_map.page_count,
            pages=msgspec.convert(text_map.to_dict()["pages"], list[PageView]),
            warnings=warnings,
            timings_ms=analysis.timings_ms,
        )
