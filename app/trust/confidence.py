"""One probability per field from its evidence, and its calibration.

Components (each 0..1): ``token_prob`` (the least certain token of the value, after the grammar
mask), ``grounded`` (the search score of where it is printed; 0 when it is printed nowhere),
``normalized`` (1 when the value parsed as its kind, 0.3 when it did not), ``checks`` (1 when every
declared check on it passed or none applies, 0.3 when one failed), ``ocr`` (the lowest OCR confidence
among the matched words, each its least sure character's; 1 for a PDF text layer).

Default mapping (uncalibrated): ``sqrt(token_prob) * (0.2 + 0.8 * grounded) * normalized * checks
* (0.6 + 0.4 * ocr)``, and for a value ``corroborated`` by independent evidence
(:mod:`app.trust.corroboration`) ``1 - 0.3 * (1 - that)``. A value the model was unsure of, or that
appears nowhere, ends low; a grounded, corroborated value with certain tokens ends near 1.
``docextract calibrate`` fits a monotone (isotonic) map from this score to the observed accuracy
per engine; when one is stored for the engine, confidence is that map applied to the score and the
result says it is calibrated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

UNPARSED = 0.3
CHECK_FAILED = 0.3
CORROBORATED_DOUBT = 0.3
"""The share of the remaining doubt a corroborated value keeps: independent evidence agreeing is
what makes a value right (on every development family, none of them was wrong)."""


@dataclass(frozen=True, slots=True)
class Components:
    token_prob: float
    grounded: float
    normalized: float
    checks: float
    ocr: float
    corroborated: bool = False

    def score(self) -> float:
        value = (
            math.sqrt(max(self.token_prob, 0.0))
            * (0.2 + 0.8 * self.grounded)
            * self.normalized
            * self.checks
            * (0.6 + 0.4 * self.ocr)
        )
        value = min(max(value, 0.0), 1.0)
        return 1 - (1 - value) * CORROBORATED_DOUBT if self.corroborated else value


@dataclass(frozen=True)
class Calibration:
    """A monotone step map from score to probability (pool-adjacent-violators fit)."""

    engine: str
    x: list[float]
    y: list[float]

    def __call__(self, score: float) -> float:
        if not self.x:
            return score
        if score <= self.x[0]:
            return self.y[0]
        for x0, x1, y0, y1 in zip(self.x, self.x[1:], self.y, self.y[1:], strict=False):
            if score <= x1:
                return y0 + (y1 - y0) * (score - x0) / (x1 - x0) if x1 > x0 else y1
        return self.y[-1]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"engine": self.engine, "x": self.x, "y": self.y}))

    @classmethod
    def load(cls, path: Path) -> Calibration | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(str(data["engine"]), [float(v) for v in data["x"]], [float(v) for v in data["y"]])


class Calibrations:
    """An engine's calibrations on disk: one per schema (``<engine>.<schema>.json``, fitted from
    reviews) before the engine's own (``<engine>.json``, fitted from an eval report). A file
    written while the service runs (``docextract calibrate``) is read on the next extraction."""

    def __init__(self, directory: Path | None, engine: str) -> None:
        self.directory = directory
        self.engine = engine
        self._loaded: dict[Path, tuple[float, Calibration | None]] = {}

    @staticmethod
    def file_name(engine: str, schema: str | None = None) -> str:
        return f"{engine}.{schema}.json" if schema else f"{engine}.json"

    def for_schema(self, schema: str) -> Calibration | None:
        if self.directory is None:
            return None
        for name in (self.file_name(self.engine, schema), self.file_name(self.engine)):
            calibration = self._load(self.directory / name)
            if calibration is not None:
                return calibration
        return None

    def _load(self, path: Path) -> Calibration | None:
        try:
            changed = path.stat().st_mtime
        except FileNotFoundError:
            return None
        cached = self._loaded.get(path)
        if cached is None or cached[0] != changed:
            cached = (changed, Calibration.load(path))
            self._loaded[path] = cached
        return cached[1]


def fit_isotonic(scores: Sequence[float], correct: Sequence[bool], engine: str) -> Calibration:
    """Pool adjacent violators: the non-decreasing map that best fits (score, correct) pairs.
    Equal scores start as one block: the map gives one value per score (ties are common: a
    text-layer value grounded exactly often scores the same), never the first tie's alone."""
    pairs = sorted(zip(scores, correct, strict=True))
    blocks: list[list[float]] = []  # [sum_correct, count, min_score, max_score]
    for score, ok in pairs:
        if blocks and blocks[-1][3] == score:
            blocks[-1][0] += float(ok)
            blocks[-1][1] += 1.0
        else:
            blocks.append([float(ok), 1.0, score, score])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][3] = last[3]
    x: list[float] = []
    y: list[float] = []
    for total, count, low, high in blocks:
        for point in (low, high) if high > low else (low,):
            x.append(point)
            y.append(total / count)
    return Calibration(engine, x, y)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE: the accuracy-weighted gap between confidence and accuracy over equal-width bins."""
    if not confidences:
        return 0.0
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [
            (c, ok)
            for c, ok in zip(confidences, correct, strict=True)
            if low <= c < high or (b == bins - 1 and c == 1.0)
        ]
        if members:
            accuracy = sum(ok for _, ok in members) / len(members)
            mean = sum(c for c, _ in members) / len(members)
            total += len(members) / len(confidences) * abs(accuracy - mean)
    return total
