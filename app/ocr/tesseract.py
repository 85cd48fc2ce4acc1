"""Tesseract 5 (LSTM) through its command line: Debian's ``tesseract-ocr`` with language packs.

Tesseract reports words with their own boxes and confidences, so nothing is estimated; lines are
its (block, paragraph, line) groups. It is slower than PP-OCR on a small CPU and needs a system
package, so it is an alternative for installations that already trust it, not the default.
"""

from __future__ import annotations

import importlib
import shutil
from itertools import groupby
from typing import Any

from PIL import Image

from app.ocr.engine import INSTALL_HINT, OcrEngine, OcrLine, OcrWord, sort_reading_order, to_rgb
from app.pages import clamp_box, union_box

DEFAULT_LANGUAGES = "eng+deu+fra+spa+ita+nld"


class TesseractEngine(OcrEngine):
    """``languages``: Tesseract's ``-l`` (each needs its ``tesseract-ocr-<lang>`` package)."""

    name = "tesseract"

    def __init__(self, *, threads: int = 1, languages: str = DEFAULT_LANGUAGES, min_confidence: float = 0.3):
        self.threads = threads
        self.languages = languages
        self.min_confidence = min_confidence

    def recognize(self, image: Image.Image) -> list[OcrLine]:
        width, height = image.size
        if width == 0 or height == 0:
            return []
        if shutil.which("tesseract") is None:
            raise RuntimeError(
                "the tesseract engine needs Debian's tesseract-ocr package (apt install tesseract-ocr)"
            )
        try:
            pytesseract: Any = importlib.import_module("pytesseract")
        except ImportError as exc:
            raise RuntimeError(f"the tesseract engine needs pytesseract: {INSTALL_HINT}") from exc
        data = pytesseract.image_to_data(
            to_rgb(image),
            lang=self.languages,
            config="--oem 1 --psm 3",
            output_type=pytesseract.Output.DICT,
        )
        found = [
            (
                (data["block_num"][i], data["par_num"][i], data["line_num"][i]),
                OcrWord(
                    text=data["text"][i].strip(),
                    bbox=clamp_box(
                        data["left"][i] / width,
                        data["top"][i] / height,
                        (data["left"][i] + data["width"][i]) / width,
                        (data["top"][i] + data["height"][i]) / height,
                    ),
                    confidence=max(float(data["conf"][i]), 0.0) / 100,
                ),
            )
            for i in range(len(data["text"]))
            if data["text"][i].strip() and float(data["conf"][i]) / 100 >= self.min_confidence
        ]
        lines = []
        for _, group in groupby(found, key=lambda item: item[0]):
            words = tuple(word for _, word in group)
            lines.append(
                OcrLine(
                    text=" ".join(w.text for w in words),
                    bbox=union_box([w.bbox for w in words]),
                    confidence=min(w.confidence for w in words),
                    words=words,
                )
            )
        return sort_reading_order(lines)
