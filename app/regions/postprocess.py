"""PP-DocLayoutV3 post-processing as pure numpy functions on one image's raw model outputs.

Kept free of torch so it can be tested on hand-made arrays and reused by any runtime (transformers,
ONNX). The steps and their defaults mirror what GLM-OCR applies to this model:

- ``PPDocLayoutV3ImageProcessor.post_process_object_detection`` in transformers
  (``models/pp_doclayout_v3/image_processing_pp_doclayout_v3.py``): sigmoid class scores, the top
  ``num_queries`` (query, class) pairs, a score threshold, and reading order from the model's
  global-pointer order head (pairwise logits turned into ranks by votes).
- ``glmocr/utils/layout_postprocess_utils.py`` (``apply_layout_postprocess``) and the ``layout``
  section of ``glmocr/config.yaml`` in zai-org/GLM-OCR: threshold 0.3 with optional per-class
  thresholds, class-aware NMS (IoU 0.6 within a class, 0.98 across classes), dropping an ``image``
  region that covers nearly the whole page, dropping regions nested in another region ("large"
  merge mode; "small" for ``reference``), clamping to the page and dropping empty boxes, then
  sorting by the order head's ranks.

Boxes here are normalised ``(x0, y0, x1, y1)``. IoU, containment and area fractions are invariant to
scaling each axis, so working in normalised rather than pixel coordinates changes none of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from app.pages import Region, clamp_box

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# GLM-OCR's defaults (glmocr/config.yaml, layout section; layout_postprocess_utils.py).
DEFAULT_SCORE_THRESHOLD = 0.3
DEFAULT_NMS_IOU_SAME = 0.6
DEFAULT_NMS_IOU_OTHER = 0.98
DEFAULT_CONTAINMENT = 0.8
# A lone "image" covering this much of the page is the page itself, not a picture on it.
OVERSIZED_IMAGE_LANDSCAPE = 0.82
OVERSIZED_IMAGE_PORTRAIT = 0.93
# Labels never dropped for sitting inside another region (a seal on a table is still a seal).
PRESERVED_LABELS = frozenset({"image", "seal", "chart"})
# Labels whose merge mode is "small": the container of such a region goes, the region stays.
KEEP_SMALL_LABELS = frozenset({"reference"})


@dataclass(frozen=True, slots=True)
class PostprocessOptions:
    """Knobs of :func:`regions_from_outputs`; defaults are GLM-OCR's."""

    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    class_thresholds: Mapping[str, float] = field(default_factory=dict)
    """Per-label overrides of ``score_threshold`` (GLM-OCR's ``threshold_by_class``)."""
    nms: bool = True
    nms_iou_same: float = DEFAULT_NMS_IOU_SAME
    nms_iou_other: float = DEFAULT_NMS_IOU_OTHER
    drop_oversized_images: bool = True
    merge_contained: bool = True
    containment: float = DEFAULT_CONTAINMENT


@dataclass(frozen=True, slots=True)
class Detections:
    """Candidate regions of one image: parallel arrays, boxes normalised ``x0, y0, x1, y1``.

    ``order`` is a reading-order key (lower reads first) or ``None`` when the model has no order head.
    """

    scores: FloatArray
    labels: IntArray
    boxes: FloatArray
    order: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> Detections:
        return Detections(
            scores=self.scores[index],
            labels=self.labels[index],
            boxes=self.boxes[index],
            order=None if self.order is None else self.order[index],
        )


def sigmoid(x: NDArray[np.floating]) -> FloatArray:
    """Logistic function without overflow warnings (the order head fills masked cells with -1e4)."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64))), dtype=np.float64)


def cxcywh_to_xyxy(boxes: NDArray[np.floating]) -> FloatArray:
    """The model predicts centre and size; regions are corners."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    half_w, half_h = b[:, 2] / 2.0, b[:, 3] / 2.0
    return np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)


def order_ranks(order_logits: NDArray[np.floating]) -> IntArray:
    """Reading-order rank of every query from the order head's pairwise logits ``(Q, Q)``.

    Cell ``[i, j]`` with ``i < j`` is the logit that query ``i`` reads before query ``j`` (the lower
    triangle is masked). Each query's vote is the expected number of queries read before it; ranks
    sort the votes. Mirrors ``PPDocLayoutV3ImageProcessor._get_order_seqs`` in transformers, with a
    stable sort so ties break by query index.
    """
    p = sigmoid(order_logits)
    before_me = np.triu(p, k=1).sum(axis=0) + np.tril(1.0 - p.T, k=-1).sum(axis=0)
    pointers = np.argsort(before_me, kind="stable")
    ranks = np.empty_like(pointers, dtype=np.int64)
    ranks[pointers] = np.arange(pointers.shape[0], dtype=np.int64)
    return ranks


def decode(
    logits: NDArray[np.floating],
    pred_boxes: NDArray[np.floating],
    order_logits: NDArray[np.floating] | None,
    min_score: float,
) -> Detections:
    """Raw outputs of one image to candidates: the top ``Q`` (query, class) pairs by sigmoid score,
    as transformers' ``post_process_object_detection`` takes them, kept when ``score >= min_score``.

    A query can yield several labels; NMS across classes removes those duplicates later.
    """
    scores_qc = sigmoid(logits)
    num_queries, num_classes = scores_qc.shape
    flat = scores_qc.ravel()
    top = np.argsort(-flat, kind="stable")[:num_queries]
    top = top[flat[top] >= min_score]
    queries = top // num_classes
    order = None if order_logits is None else order_ranks(order_logits)[queries].astype(np.float64)
    return Detections(
        scores=flat[top],
        labels=(top % num_classes).astype(np.int64),
        boxes=cxcywh_to_xyxy(pred_boxes)[queries],
        order=order,
    )


def threshold(det: Detections, default: float, per_class: Mapping[int, float] | None = None) -> Detections:
    """Keep detections scoring at least their class's threshold (``default`` when not listed)."""
    limits = np.full(len(det), default, dtype=np.float64)
    for label_id, limit in (per_class or {}).items():
        limits[det.labels == label_id] = limit
    return det.take(det.scores >= limits)


def _areas(boxes: FloatArray) -> FloatArray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)


def _intersections(boxes: FloatArray) -> FloatArray:
    """Pairwise intersection areas ``(n, n)``."""
    x0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y1 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter: FloatArray = np.clip(x1 - x0, 0.0, None) * np.clip(y1 - y0, 0.0, None)
    return inter


def iou_matrix(boxes: FloatArray) -> FloatArray:
    inter = _intersections(boxes)
    areas = _areas(boxes)
    union = areas[:, None] + areas[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(
    det: Detections, iou_same: float = DEFAULT_NMS_IOU_SAME, iou_other: float = DEFAULT_NMS_IOU_OTHER
) -> Detections:
    """Greedy NMS by score with one IoU limit within a class and a looser one across classes.

    As GLM-OCR's ``nms``: a lower-scored box goes when its IoU with a kept box reaches the limit. The
    cross-class limit (0.98) only removes the same query reported under a second label.
    """
    if len(det) == 0:
        return det
    ious = iou_matrix(det.boxes)
    same = det.labels[:, None] == det.labels[None, :]
    limits = np.where(same, iou_same, iou_other)
    alive = np.ones(len(det), dtype=bool)
    kept: list[int] = []
    for i in np.argsort(-det.scores, kind="stable"):
        if not alive[i]:
            continue
        kept.append(int(i))
        alive &= ious[i] < limits[i]
    return det.take(np.array(sorted(kept), dtype=np.intp))


def drop_oversized_images(
    det: Detections, image_label: int | None, page_width: float, page_height: float
) -> Detections:
    """Drop ``image`` regions covering most of the page (more than 82 % landscape, 93 % portrait)
    when there is something else on it: that "image" is the scan itself. As GLM-OCR; never empties."""
    if image_label is None or len(det) <= 1:
        return det
    limit = OVERSIZED_IMAGE_LANDSCAPE if page_width > page_height else OVERSIZED_IMAGE_PORTRAIT
    area = _areas(np.clip(det.boxes, 0.0, 1.0))
    keep = ~((det.labels == image_label) & (area > limit))
    return det.take(keep) if keep.any() else det


def drop_contained(
    det: Detections,
    preserved: Collection[int] = (),
    keep_small: Collection[int] = (),
    containment: float = DEFAULT_CONTAINMENT,
) -> Detections:
    """Drop regions nested in another region, keeping the container (GLM-OCR's "large" mode).

    Box ``i`` is nested in ``j`` when at least ``containment`` of its area lies inside ``j``.
    ``preserved`` labels are never dropped for being nested. For ``keep_small`` labels the mode is
    GLM-OCR's "small": the container is dropped instead and the nested region kept.

    Two departures from GLM-OCR, which in both cases drops both boxes (losing evidence): of two boxes
    that each hold the other (near-identical boxes of different classes) the higher-scored is kept;
    a ``keep_small`` region nested in a "large" container is kept and its container dropped.
    """
    n = len(det)
    if n <= 1:
        return det
    areas = _areas(det.boxes)
    frac = np.divide(
        _intersections(det.boxes), areas[:, None], out=np.zeros((n, n)), where=areas[:, None] > 0
    )
    nested = frac >= containment  # nested[i, j]: i lies in j
    np.fill_diagonal(nested, val=False)
    mutual = nested & nested.T
    # Of two boxes that hold each other, only the lower-scored (then later) one counts as nested.
    rank = np.argsort(np.argsort(-det.scores, kind="stable"), kind="stable")
    nested &= ~mutual | (rank[:, None] > rank[None, :])
    nested[np.isin(det.labels, list(preserved)), :] = False
    small = np.isin(det.labels, list(keep_small))
    drop = np.any(nested & ~small[:, None] & ~small[None, :], axis=1)  # "large"
    small_in = nested & small[:, None]  # "small": containers of small-mode regions go instead
    drop |= np.any(small_in, axis=0) & ~np.any(small_in, axis=1)
    return det.take(~drop)


def geometric_order(boxes: FloatArray, line_tolerance: float = 0.01) -> IntArray:
    """Fallback reading order: top to bottom, and left to right among boxes whose tops lie within
    ``line_tolerance`` of the first box of their row. Returns ranks (0 reads first)."""
    n = boxes.shape[0]
    by_top = sorted(range(n), key=lambda i: (boxes[i, 1], boxes[i, 0]))
    sequence: list[int] = []
    row: list[int] = []
    for i in by_top:
        if row and boxes[i, 1] - boxes[row[0], 1] > line_tolerance:
            sequence.extend(sorted(row, key=lambda k: boxes[k, 0]))
            row = []
        row.append(i)
    sequence.extend(sorted(row, key=lambda k: boxes[k, 0]))
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.array(sequence, dtype=np.intp)] = np.arange(n, dtype=np.int64)
    return ranks


def reading_sequence(det: Detections) -> NDArray[np.intp]:
    """Indices of ``det`` in reading order: the order head's ranks when present, else geometric.
    Ties (one query under two labels) break geometrically."""
    geo = geometric_order(det.boxes)
    if det.order is None:
        return np.argsort(geo, kind="stable")
    return np.lexsort((geo, det.order))


def regions_from_outputs(
    logits: NDArray[np.floating],
    pred_boxes: NDArray[np.floating],
    order_logits: NDArray[np.floating] | None,
    *,
    id2label: Mapping[int, str],
    page_size: tuple[float, float],
    options: PostprocessOptions | None = None,
) -> list[Region]:
    """One image's raw outputs (``logits (Q, C)``, ``pred_boxes (Q, 4)`` centre/size normalised,
    ``order_logits (Q, Q)`` or ``None``) to regions in reading order, ``order`` 0..n-1.

    ``page_size`` is ``(width, height)`` in any unit; only its aspect matters.
    """
    opts = options or PostprocessOptions()
    label2id = {name: i for i, name in id2label.items()}
    per_class = {label2id[k]: v for k, v in opts.class_thresholds.items() if k in label2id}
    floor = min([opts.score_threshold, *per_class.values()])
    det = threshold(decode(logits, pred_boxes, order_logits, floor), opts.score_threshold, per_class)
    if opts.nms:
        det = nms(det, opts.nms_iou_same, opts.nms_iou_other)
    if opts.drop_oversized_images:
        det = drop_oversized_images(det, label2id.get("image"), *page_size)
    if opts.merge_contained:
        det = drop_contained(
            det,
            preserved=[label2id[k] for k in PRESERVED_LABELS if k in label2id],
            keep_small=[label2id[k] for k in KEEP_SMALL_LABELS if k in label2id],
            containment=opts.containment,
        )
    regions: list[Region] = []
    for i in reading_sequence(det):
        box = clamp_box(*(float(v) for v in det.boxes[i]))
        if box[0] >= box[2] or box[1] >= box[3]:
            continue  # nothing of it on the page
        label_id = int(det.labels[i])
        regions.append(
            Region(
                label=id2label.get(label_id, f"class_{label_id}"),
                bbox=box,
                score=min(max(float(det.scores[i]), 0.0), 1.0),
                order=len(regions),
            )
        )
    return regions
