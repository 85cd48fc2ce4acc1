"""PP-DocLayoutV3 post-processing on hand-made model outputs: each test fixes scores, boxes and order
logits so that a wrong threshold, NMS, merge or ordering rule gives a different answer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from app.regions.base import LAYOUT_LABELS
from app.regions.postprocess import (
    Detections,
    FloatArray,
    PostprocessOptions,
    decode,
    drop_contained,
    geometric_order,
    nms,
    order_ranks,
    regions_from_outputs,
)

ID2LABEL = dict(enumerate(LAYOUT_LABELS))
L = {name: i for i, name in ID2LABEL.items()}
NO_MERGE = PostprocessOptions(
    score_threshold=0.5, nms=False, drop_oversized_images=False, merge_contained=False
)

Box = tuple[float, float, float, float]


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def _outputs(
    specs: list[tuple[str, float, Box]], extra: Sequence[tuple[int, str, float]] = ()
) -> tuple[FloatArray, FloatArray]:
    """``logits (Q, 25)`` and ``pred_boxes (Q, 4)`` (centre/size) for one query per spec
    ``(label, score, x0 y0 x1 y1)``; ``extra`` adds ``(query, label, score)`` second labels."""
    logits = np.full((len(specs), len(LAYOUT_LABELS)), -20.0)
    boxes = np.zeros((len(specs), 4))
    for q, (label, score, (x0, y0, x1, y1)) in enumerate(specs):
        logits[q, L[label]] = _logit(score)
        boxes[q] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    for q, label, score in extra:
        logits[q, L[label]] = _logit(score)
    return logits, boxes


def _order_logits(sequence: list[int]) -> FloatArray:
    """Pairwise order logits saying queries read in ``sequence``; the lower triangle is masked with
    -1e4 as the model's global pointer does."""
    q = len(sequence)
    position = {query: k for k, query in enumerate(sequence)}
    out = np.full((q, q), -1e4)
    for i in range(q):
        for j in range(i + 1, q):
            out[i, j] = 8.0 if position[i] < position[j] else -8.0
    return out


def _run(
    specs: list[tuple[str, float, Box]],
    order: list[int] | None = None,
    options: PostprocessOptions = NO_MERGE,
    page: tuple[float, float] = (600, 800),
    extra: Sequence[tuple[int, str, float]] = (),
) -> list[tuple[str, Box]]:
    logits, boxes = _outputs(specs, extra)
    regions = regions_from_outputs(
        logits,
        boxes,
        None if order is None else _order_logits(order),
        id2label=ID2LABEL,
        page_size=page,
        options=options,
    )
    assert [r.order for r in regions] == list(range(len(regions)))
    return [(r.label, _rounded(r.bbox)) for r in regions]


def _rounded(box: Box) -> Box:
    return (round(box[0], 6), round(box[1], 6), round(box[2], 6), round(box[3], 6))


A: Box = (0.1, 0.1, 0.9, 0.2)
B: Box = (0.1, 0.4, 0.9, 0.5)
C: Box = (0.1, 0.7, 0.9, 0.8)


def test_threshold_drops_low_scores() -> None:
    out = _run([("text", 0.9, A), ("text", 0.49, B), ("table", 0.5, C)])
    assert out == [("text", A), ("table", C)]


def test_per_class_threshold_overrides_the_default() -> None:
    opts = PostprocessOptions(
        score_threshold=0.5,
        class_thresholds={"table": 0.2, "text": 0.95},
        nms=False,
        drop_oversized_images=False,
        merge_contained=False,
    )
    out = _run([("text", 0.9, A), ("table", 0.3, B), ("doc_title", 0.6, C)], options=opts)
    assert out == [("table", B), ("doc_title", C)]


def test_decode_keeps_the_top_num_queries_pairs_like_transformers() -> None:
    # Two queries, each confident in two classes: only the top two (query, class) pairs survive.
    logits, boxes = _outputs(
        [("text", 0.9, A), ("table", 0.8, B)], extra=[(0, "table", 0.85), (1, "text", 0.3)]
    )
    det = decode(logits, boxes, None, min_score=0.0)
    assert sorted(zip(det.labels.tolist(), np.round(det.scores, 3).tolist(), strict=True)) == [
        (L["table"], 0.85),
        (L["text"], 0.9),
    ]


def test_nms_removes_same_class_overlap_but_keeps_other_class() -> None:
    big = (0.1, 0.1, 0.9, 0.5)
    shifted = (0.1, 0.15, 0.9, 0.55)  # IoU with big = 0.35 / 0.45 ≈ 0.78
    opts = PostprocessOptions(score_threshold=0.5, drop_oversized_images=False, merge_contained=False)
    same = _run([("text", 0.9, big), ("text", 0.8, shifted), ("table", 0.7, C)], options=opts)
    assert same == [("text", big), ("table", C)]
    other = _run([("text", 0.9, big), ("table", 0.8, shifted)], options=opts)
    assert sorted(other) == sorted([("text", big), ("table", shifted)])


def test_nms_keeps_the_higher_score_whatever_the_query_order() -> None:
    det = Detections(
        scores=np.array([0.6, 0.9]),
        labels=np.array([L["text"], L["text"]]),
        boxes=np.array([[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5]]),
    )
    kept = nms(det)
    assert kept.scores.tolist() == [0.9]


def test_one_query_under_two_labels_becomes_one_region() -> None:
    # Same box, two labels: cross-class IoU 1.0 >= 0.98, the better label stays.
    opts = PostprocessOptions(score_threshold=0.5, drop_oversized_images=False, merge_contained=False)
    out = _run([("text", 0.7, A), ("table", 0.9, C)], extra=[(0, "paragraph_title", 0.8)], options=opts)
    assert out == [("paragraph_title", A), ("table", C)]


def test_order_ranks_follow_pairwise_logits() -> None:
    assert order_ranks(_order_logits([2, 0, 3, 1])).tolist() == [1, 3, 0, 2]
    assert order_ranks(_order_logits([0, 1, 2])).tolist() == [0, 1, 2]


def test_reading_order_follows_the_order_head_not_geometry() -> None:
    # Geometrically A, B, C from the top; the head reads C, then A, then B (e.g. a sidebar first).
    out = _run([("text", 0.9, A), ("text", 0.9, B), ("table", 0.9, C)], order=[2, 0, 1])
    assert out == [("table", C), ("text", A), ("text", B)]


def test_reading_order_falls_back_to_top_to_bottom_left_to_right() -> None:
    right = (0.55, 0.4, 0.9, 0.5)
    left = (0.1, 0.405, 0.45, 0.5)  # same line as ``right``, a hair lower
    out = _run([("text", 0.9, C), ("text", 0.9, right), ("text", 0.9, left), ("doc_title", 0.9, A)])
    assert out == [("doc_title", A), ("text", left), ("text", right), ("text", C)]


def test_geometric_order_ranks() -> None:
    boxes = np.array([[0.5, 0.5, 0.6, 0.6], [0.1, 0.1, 0.2, 0.2], [0.1, 0.5, 0.2, 0.6]])
    assert geometric_order(boxes).tolist() == [2, 0, 1]


def test_boxes_are_normalised_clamped_and_off_page_boxes_dropped() -> None:
    logits, _ = _outputs([("text", 0.9, A), ("table", 0.9, B), ("image", 0.9, C)])
    boxes = np.array(
        [
            [0.05, 0.5, 0.3, 0.2],  # x0 = -0.1: clamped to 0
            [0.9, 0.95, 0.4, 0.2],  # x1 = 1.1, y1 = 1.05: clamped to 1
            [1.3, 0.5, 0.2, 0.2],  # entirely right of the page: dropped
        ]
    )
    regions = regions_from_outputs(
        logits, boxes, None, id2label=ID2LABEL, page_size=(600, 800), options=NO_MERGE
    )
    assert [(r.label, _rounded(r.bbox)) for r in regions] == [
        ("text", (0.0, 0.4, 0.2, 0.6)),
        ("table", (0.7, 0.85, 1.0, 1.0)),
    ]
    for r in regions:
        assert 0.0 <= r.bbox[0] <= r.bbox[2] <= 1.0
        assert 0.0 <= r.bbox[1] <= r.bbox[3] <= 1.0
        assert 0.0 <= r.score <= 1.0


def test_page_sized_image_is_dropped_only_when_something_else_is_there() -> None:
    opts = PostprocessOptions(score_threshold=0.5, merge_contained=False)
    whole: Box = (0.01, 0.01, 0.99, 0.99)  # 96 % of the page
    assert _run([("image", 0.9, whole), ("text", 0.8, A)], options=opts) == [("text", A)]
    assert _run([("image", 0.9, whole)], options=opts) == [("image", whole)]
    # 88 %: too small to be the page in portrait (93 %), but the page in landscape (82 %).
    most: Box = (0.03, 0.03, 0.97, 0.97)
    assert ("image", most) in _run([("image", 0.9, most), ("text", 0.8, A)], options=opts, page=(600, 800))
    assert ("image", most) not in _run(
        [("image", 0.9, most), ("text", 0.8, A)], options=opts, page=(800, 600)
    )


def test_nested_regions_merge_into_their_container() -> None:
    table: Box = (0.1, 0.1, 0.9, 0.6)
    cell: Box = (0.2, 0.2, 0.4, 0.3)
    seal: Box = (0.5, 0.2, 0.7, 0.4)
    opts = PostprocessOptions(score_threshold=0.5)
    out = _run([("table", 0.9, table), ("text", 0.95, cell), ("seal", 0.8, seal)], options=opts)
    assert sorted(out) == sorted([("table", table), ("seal", seal)])  # seals are never merged away


def test_reference_keeps_the_small_region_and_drops_its_container() -> None:
    block: Box = (0.1, 0.1, 0.9, 0.6)
    ref: Box = (0.2, 0.2, 0.8, 0.3)
    opts = PostprocessOptions(score_threshold=0.5)
    assert _run([("text", 0.9, block), ("reference", 0.8, ref)], options=opts) == [("reference", ref)]


def test_mutual_containment_keeps_the_higher_score() -> None:
    det = Detections(
        scores=np.array([0.7, 0.9]),
        labels=np.array([L["text"], L["paragraph_title"]]),
        boxes=np.array([[0.1, 0.1, 0.5, 0.2], [0.1, 0.1, 0.52, 0.21]]),  # IoU ≈ 0.87, below 0.98
    )
    kept = drop_contained(det)
    assert kept.labels.tolist() == [L["paragraph_title"]]


def test_no_detections_give_no_regions() -> None:
    logits, boxes = _outputs([("text", 0.1, A)])
    assert regions_from_outputs(logits, boxes, _order_logits([0]), id2label=ID2LABEL, page_size=(1, 1)) == []


def test_modules_import_without_torch() -> None:
    """Post-processing is numpy only, and the backend imports torch only when it loads a model."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import app.regions.postprocess, app.regions.ppdoclayout\n"
        "b = app.regions.ppdoclayout.PPDocLayoutV3Backend()\n"
        "assert b.detect([]) == []\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)


@pytest.mark.parametrize(
    "bad", [{"score_threshold": 1.5}, {"batch_size": 0}, {"class_thresholds": {"text": -1}}]
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    from app.regions.ppdoclayout import PPDocLayoutConfig

    with pytest.raises(ValueError, match="must be"):
        PPDocLayoutConfig(**bad)  # type: ignore[arg-type]
