"""OCR for pages without a text layer: image in, lines with boxes out, then words for the text map.

The engine returns *lines* because that is what detection + recognition models produce; the rest of
the system works with :class:`~app.pages.Word`, so :func:`lines_to_words` splits lines into
words with estimated boxes. RapidOCR (PP-OCRv4 ONNX models shipped inside the wheel) is the default
engine: it needs no download at run time and no GPU.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from app.pages import BBox, Page, Word, clamp_box, union_box

INSTALL_HINT = "pip install 'docextract[ocr]'"
_WHITESPACE = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class OcrWord:
    """A word as the recogniser placed it: its box from the character positions it decoded (not
    estimated from character counts) and its own confidence, so one blurred digit lowers the word
    it is in, not the whole line."""

    text: str
    bbox: BBox
    confidence: float


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised text line. ``bbox`` is normalised (0..1, origin top-left) and axis-aligned
    around the detected quadrilateral; ``confidence`` is the recogniser's score in 0..1. ``words``
    are the recogniser's own words when it reports them (empty: :func:`lines_to_words` estimates
    them)."""

    text: str
    bbox: BBox
    confidence: float
    words: tuple[OcrWord, ...] = ()


class OcrEngine(ABC):
    """Reads text lines from a page image. Implementations are synchronous and CPU bound: callers
    run them off the event loop (see :class:`app.ocr.pool.OcrPool`)."""

    name: str

    @abstractmethod
    def recognize(self, image: Image.Image) -> list[OcrLine]:
        """Lines found on ``image``, in reading order (see :func:`sort_reading_order`)."""


class LazyModelEngine(OcrEngine):
    """An engine whose models load on first use, once, under a lock (concurrent first calls build
    one), which keeps construction free; pickling sends only its settings (every attribute but the
    models), so each worker process loads its own."""

    def __init__(self) -> None:
        self._ocr: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_ocr", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._ocr = None
        self._lock = threading.Lock()

    def _engine(self) -> Any:
        if self._ocr is None:
            with self._lock:
                if self._ocr is None:
                    self._ocr = self._build()
        return self._ocr

    @abstractmethod
    def _build(self) -> Any:
        """Load the models."""


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the host's count, in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class RapidOcrEngine(LazyModelEngine):
    """``rapidocr_onnxruntime.RapidOCR`` behind the :class:`OcrEngine` interface.

    Models load lazily (:class:`LazyModelEngine`). ``threads`` is onnxruntime's intra-op thread count
    (default: every CPU we may use; inter-op is 1 since the models run one after another).
    ``options`` are passed to ``RapidOCR`` as they are, for tuning (e.g. ``det_limit_side_len``).

    Recognising from several threads at once is safe: onnxruntime sessions allow concurrent runs,
    we never pass RapidOCR's per-call options (it stores those on itself), and the one attribute
    it sets per call, the detector's resize step, is the same for every image under the default
    ``det_limit_type="min"``.
    """

    name = "rapidocr-v4"

    def __init__(
        self,
        *,
        threads: int | None = None,
        use_angle_cls: bool = True,
        min_confidence: float = 0.5,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.threads = threads if threads is not None else available_cpus()
        self.use_angle_cls = use_angle_cls
        self.min_confidence = min_confidence
        self.options = dict(options or {})
        super().__init__()

    def _build(self) -> Any:
        try:
            module = importlib.import_module("rapidocr_onnxruntime")
        except ImportError as exc:
            raise RuntimeError(
                f"OCR needs rapidocr-onnxruntime, which is not installed: {INSTALL_HINT}"
            ) from exc
        kwargs: dict[str, Any] = {
            "intra_op_num_threads": self.threads,
            "inter_op_num_threads": 1,
            "use_cls": self.use_angle_cls,
            "text_score": self.min_confidence,
            "print_verbose": False,
        }
        kwargs.update(self.options)
        return module.RapidOCR(**kwargs)

    def recognize(self, image: Image.Image) -> list[OcrLine]:
        width, height = image.size
        if width == 0 or height == 0:
            return []
        # RapidOCR passes ndarrays through unconverted and its models expect OpenCV's BGR order
        # (it converts PIL input RGB->BGR itself); we convert once here, with alpha flattened on white.
        pixels = np.ascontiguousarray(np.asarray(to_rgb(image))[:, :, ::-1])
        result, _elapsed = self._engine()(pixels)
        if not result:
            return []
        lines: list[OcrLine] = []
        for item in result:
            quad, text, score = item[0], item[1], item[2]
            text = str(text).strip()
            if not text:
                continue
            xs = [float(p[0]) for p in quad]
            ys = [float(p[1]) for p in quad]
            bbox = clamp_box(min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)
            lines.append(OcrLine(text=text, bbox=bbox, confidence=min(max(float(score), 0.0), 1.0)))
        return sort_reading_order(lines)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any PIL mode; transparent areas become white (paper), not black."""
    if image.mode == "RGB":
        return image
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def sort_reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Top-to-bottom rows, left-to-right within a row (see :func:`rows`)."""
    return [line for row in rows(lines) for line in row]


def rows(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    """Lines grouped into printed rows, top to bottom, each row left to right.

    A box joins the current row when its vertical centre is within half a line height of the row's
    mean centre (line height: the mean of the box's and the row's mean height). Comparing with the
    row's mean rather than its last box keeps a slightly skewed page from chaining rows together.
    """
    grouped: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (_centre_y(ln), ln.bbox[0])):
        if grouped:
            row = grouped[-1]
            row_centre = sum(_centre_y(m) for m in row) / len(row)
            row_height = sum(m.bbox[3] - m.bbox[1] for m in row) / len(row)
            line_height = (row_height + (line.bbox[3] - line.bbox[1])) / 2
            if abs(_centre_y(line) - row_centre) <= line_height / 2:
                row.append(line)
                continue
        grouped.append([line])
    return [sorted(row, key=lambda ln: (ln.bbox[0], ln.bbox[1])) for row in grouped]


PHRASE_GAP = 0.8
"""Two detections in a row closer than this many line heights are one phrase the detector cut
("SAM" | "SAM TRADING"); table columns and label/value pairs are further apart."""


def join_row_fragments(lines: Sequence[OcrLine], aspect: float) -> list[OcrLine]:
    """Lines in reading order, with detections of one phrase joined into one line.

    ``aspect`` is the image's width / height: boxes are normalised per axis, so a gap in x is
    compared with a height in y through it. Only lines with the recogniser's words are joined (their
    words keep their own boxes)."""
    joined: list[OcrLine] = []
    for row in rows(lines):
        current = row[0]
        for line in row[1:]:
            height = max(current.bbox[3] - current.bbox[1], line.bbox[3] - line.bbox[1])
            gap = (line.bbox[0] - current.bbox[2]) * aspect
            if current.words and line.words and gap < PHRASE_GAP * height:
                current = OcrLine(
                    text=f"{current.text} {line.text}",
                    bbox=union_box([current.bbox, line.bbox]),
                    confidence=min(current.confidence, line.confidence),
                    words=current.words + line.words,
                )
            else:
                joined.append(current)
                current = line
        joined.append(current)
    return joined


def _centre_y(line: OcrLine) -> float:
    return (line.bbox[1] + line.bbox[3]) / 2


def lines_to_words(lines: Sequence[OcrLine], first_line_index: int = 0) -> list[Word]:
    """Words of ``lines`` (taken as already in reading order), numbered ``first_line_index``, ...

    Each line is split on whitespace; empty lines are dropped and take no number. A word's box is an
    *estimate*: the line box sliced horizontally in proportion to character counts, as if every
    character were equally wide, with each boundary in the middle of the whitespace between two
    words, so the words' boxes partition the line box. The OCR model does not report word
    positions, and proportional fonts make the estimate a little off; grounding only needs roughly
    the right part of the line. Words get their line's confidence.

    A line that carries the recogniser's ``words`` uses them as they are: boxes from character
    positions and a confidence per word.
    """
    words: list[Word] = []
    line_no = first_line_index
    for line in lines:
        if line.words:
            words.extend(
                Word(text=w.text, bbox=w.bbox, confidence=w.confidence, source="ocr", line=line_no)
                for w in line.words
            )
            line_no += 1
            continue
        text = line.text.strip()
        spans = [(m.start(), m.end(), m.group()) for m in _WHITESPACE.finditer(text)]
        if not spans:
            continue
        x0, y0, x1, y1 = line.bbox
        per_char = (x1 - x0) / len(text)
        last = len(spans) - 1
        for i, (start, end, token) in enumerate(spans):
            # Neighbours compute their shared boundary from the same expression, so boxes meet exactly.
            left = x0 if i == 0 else x0 + per_char * (spans[i - 1][1] + start) / 2
            right = x1 if i == last else x0 + per_char * (end + spans[i + 1][0]) / 2
            bbox = clamp_box(left, y0, right, y1)
            words.append(Word(text=token, bbox=bbox, confidence=line.confidence, source="ocr", line=line_no))
        line_no += 1
    return words


def ocr_page(page: Page, engine: OcrEngine) -> list[Word]:
    """OCR words for one page, from its rendered image."""
    return lines_to_words(engine.recognize(page.image))
