"""A page's words regrouped the way a reader sees them: rows (words side by side on one line) cut
into segments (runs of words without a wide gap: a label, a value, a table cell).

Built from the text map's words alone (PDF text layer or OCR), in page units so that gaps compare
with the text height; no layout model and no table finder are needed, which keeps a page at a few
milliseconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from statistics import median

from app.lexicon import fold_phrase as fold
from app.pages import Word

Box = tuple[float, float, float, float]
# A gap wider than this many text heights ends a segment (a word space is about 0.3).
SEGMENT_GAP = 1.0
# Words from different lines of the text layer or OCR boxes split at a smaller gap.
LINE_GAP = 0.35


@dataclass
class Segment:
    index: int
    row: int
    words: list[Word]
    box: Box
    """In page units (points or pixels), origin top-left."""
    text: str = ""
    tokens: list[tuple[str, int]] = field(default_factory=list)
    """Folded tokens with the index (within ``words``) of the word each comes from."""

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def folded(self) -> str:
        return " ".join(t for t, _ in self.tokens)


@dataclass
class PageLayout:
    width: float
    height: float
    segments: list[Segment]
    rows: list[list[Segment]]
    line_height: float
    """Median word height: the unit for gaps and distances."""


def _box(word: Word, width: float, height: float) -> Box:
    x0, y0, x1, y1 = word.bbox
    return (x0 * width, y0 * height, x1 * width, y1 * height)


def build_layout(words: list[Word], width: float, height: float) -> PageLayout:
    boxes = [_box(w, width, height) for w in words]
    heights = [b[3] - b[1] for b in boxes if b[3] > b[1]]
    unit = median(heights) if heights else 10.0
    order = sorted(range(len(words)), key=lambda i: ((boxes[i][1] + boxes[i][3]) / 2, boxes[i][0]))
    rows: list[list[int]] = []
    centre = 0.0
    for i in order:
        cy = (boxes[i][1] + boxes[i][3]) / 2
        if rows and abs(cy - centre) <= 0.5 * unit:
            rows[-1].append(i)
            centre = sum((boxes[j][1] + boxes[j][3]) / 2 for j in rows[-1]) / len(rows[-1])
        else:
            rows.append([i])
            centre = cy
    segments: list[Segment] = []
    row_segments: list[list[Segment]] = []
    for row_index, row in enumerate(rows):
        row.sort(key=lambda i: boxes[i][0])
        runs: list[list[int]] = [[row[0]]]
        for previous, current in itertools.pairwise(row):
            gap = boxes[current][0] - boxes[previous][2]
            other_line = words[current].line != words[previous].line
            if gap > SEGMENT_GAP * unit or (other_line and gap > LINE_GAP * unit):
                runs.append([current])
            else:
                runs[-1].append(current)
        row_segments.append([])
        for run in runs:
            segment = _segment(len(segments), row_index, [words[i] for i in run], [boxes[i] for i in run])
            segments.append(segment)
            row_segments[-1].append(segment)
    return PageLayout(width, height, segments, row_segments, unit)


def _segment(index: int, row: int, words: list[Word], boxes: list[Box]) -> Segment:
    box = (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
    tokens = [(token, i) for i, word in enumerate(words) for token in fold(word.text).split()]
    return Segment(index, row, words, box, " ".join(w.text for w in words), tokens)
