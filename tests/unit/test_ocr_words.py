"""OCR without its models: word splitting, reading order, the engine's input and pickling, and
the pool's lifecycle. RapidOCR itself runs in tests/integration/test_ocr.py (slow)."""

from __future__ import annotations

import itertools
import pickle
import sys
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.ocr.engine import OcrLine, RapidOcrEngine, lines_to_words, sort_reading_order
from app.ocr.pool import OcrPool

# ---------------------------------------------------------------------------------------------------
# Without OCR models
# ---------------------------------------------------------------------------------------------------


def test_words_partition_their_line_in_proportion_to_characters() -> None:
    line = OcrLine(text="ab cd efgh", bbox=(0.1, 0.2, 0.6, 0.25), confidence=0.9)
    words = lines_to_words([line])
    assert [w.text for w in words] == ["ab", "cd", "efgh"]
    # 10 characters over 0.5 of the page: boundaries in the middle of each space (2.5 and 5.5 chars).
    assert words[0].bbox == pytest.approx((0.1, 0.2, 0.225, 0.25))
    assert words[1].bbox == pytest.approx((0.225, 0.2, 0.375, 0.25))
    assert words[2].bbox == pytest.approx((0.375, 0.2, 0.6, 0.25))
    # A partition: exact shared edges, first and last on the line's edges, nothing outside.
    assert words[0].bbox[0] == 0.1
    assert words[-1].bbox[2] == 0.6
    for left, right in itertools.pairwise(words):
        assert left.bbox[2] == right.bbox[0]
    assert all(w.bbox[1] == 0.2 and w.bbox[3] == 0.25 for w in words)
    assert all(w.source == "ocr" and w.confidence == 0.9 and w.line == 0 for w in words)


def test_lines_are_numbered_in_order_and_empty_lines_take_no_number() -> None:
    lines = [
        OcrLine("Invoice No.:INV-2024-0042", (0.5, 0.1, 0.9, 0.12), 0.97),
        OcrLine("   ", (0.1, 0.15, 0.2, 0.17), 0.6),
        OcrLine("Total  due\tEUR", (0.5, 0.4, 0.8, 0.42), 0.95),
    ]
    words = lines_to_words(lines, first_line_index=7)
    assert [(w.text, w.line) for w in words] == [
        ("Invoice", 7),
        ("No.:INV-2024-0042", 7),
        ("Total", 8),
        ("due", 8),
        ("EUR", 8),
    ]
    assert [w.confidence for w in words] == [0.97, 0.97, 0.95, 0.95, 0.95]
    assert lines_to_words([]) == []


def test_reading_order_groups_rows_by_vertical_centre() -> None:
    def line(text: str, x0: float, y0: float, height: float = 0.02) -> OcrLine:
        return OcrLine(text, (x0, y0, x0 + 0.1, y0 + height), 1.0)

    amount = line("950.00", 0.8, 0.304)  # slightly lower than its label: same row
    label = line("Consulting", 0.1, 0.300)
    qty = line("10", 0.5, 0.296)
    title = line("INVOICE", 0.7, 0.05, height=0.04)  # tall, right: still the first row
    seller = line("ACME", 0.1, 0.06)
    next_row = line("Subtotal", 0.1, 0.330)  # more than half a line below
    ordered = sort_reading_order([amount, next_row, label, title, qty, seller])
    assert [ln.text for ln in ordered] == ["ACME", "INVOICE", "Consulting", "10", "950.00", "Subtotal"]


class _FakeRapidOcr:
    """Stands in for ``RapidOCR``: records the array it gets and returns a canned result."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.seen: list[np.ndarray[Any, Any]] = []

    def __call__(self, pixels: np.ndarray[Any, Any]) -> tuple[Any, Any]:
        self.seen.append(pixels)
        return self.result, [0.0]


def test_engine_sends_bgr_and_normalises_quadrilaterals() -> None:
    quad_a = [[20.0, 10.0], [60.0, 12.0], [60.0, 30.0], [18.0, 28.0]]
    quad_b = [[-5.0, 60.0], [250.0, 60.0], [250.0, 80.0], [-5.0, 80.0]]  # spills off the image
    fake = _FakeRapidOcr([[quad_b, "below", 0.8], [quad_a, " above ", 0.99], [quad_a, "  ", 0.9]])
    engine = RapidOcrEngine()
    engine._ocr = fake
    red = Image.new("RGBA", (200, 100), (255, 0, 0, 255))
    lines = engine.recognize(red)

    (pixels,) = fake.seen
    assert pixels.shape == (100, 200, 3)
    assert pixels.flags["C_CONTIGUOUS"]
    assert tuple(pixels[0, 0]) == (0, 0, 255)  # red in OpenCV's BGR order
    assert lines == [
        OcrLine("above", (0.09, 0.1, 0.3, 0.3), 0.99),
        OcrLine("below", (0.0, 0.6, 1.0, 0.8), 0.8),
    ]
    engine._ocr = _FakeRapidOcr(None)  # what RapidOCR returns for a blank page
    assert engine.recognize(Image.new("L", (50, 50), 255)) == []


def test_engine_pickles_its_settings_not_its_sessions() -> None:
    engine = RapidOcrEngine(threads=1, use_angle_cls=False, options={"det_limit_side_len": 960})
    engine._ocr = object()
    clone = pickle.loads(pickle.dumps(engine))  # noqa: S301 - our own bytes
    assert clone._ocr is None
    assert (clone.threads, clone.use_angle_cls, clone.options) == (1, False, {"det_limit_side_len": 960})


def test_missing_rapidocr_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # makes the import fail
    with pytest.raises(RuntimeError, match=r"pip install 'docextract\[ocr\]'"):
        RapidOcrEngine().recognize(Image.new("RGB", (10, 10)))


def test_pool_starts_nothing_until_used_and_refuses_after_close() -> None:
    pool = OcrPool(RapidOcrEngine(), executor="thread")
    assert pool._executor is None
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool._ensure_executor()
    with pytest.raises(ValueError, match="max_workers"):
        OcrPool(max_workers=0)
