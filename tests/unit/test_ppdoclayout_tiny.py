"""A tiny randomly initialised PP-DocLayoutV3 end to end through the backend on CPU: built from a
config at test time (no weights in the repo, nothing downloaded). Random weights say nothing about
layout, so these tests check the contract: shapes, labels, box bounds, order ranks, determinism,
batching and loading from a folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image, ImageDraw  # noqa: E402

from app.pages import Page, Region  # noqa: E402
from app.regions.base import LAYOUT_LABELS  # noqa: E402
from app.regions.ppdoclayout import PPDocLayoutConfig, PPDocLayoutV3Backend  # noqa: E402

WIDTH = 16


def _tiny_model() -> Any:
    """Smallest model the architecture allows, with weights spread wide enough (initializer range
    0.5) that queries get distinct boxes and the order head distinct logits."""
    backbone = {
        "model_type": "hgnet_v2",
        "arch": "L",
        "return_idx": [0, 1, 2, 3],
        "hidden_sizes": [WIDTH] * 4,
        "stem_channels": [3, WIDTH, WIDTH],
        "stage_in_channels": [WIDTH] * 4,
        "stage_mid_channels": [WIDTH] * 4,
        "stage_out_channels": [WIDTH] * 4,
        "stage_num_blocks": [1, 1, 1, 1],
        "stage_numb_of_layers": [1, 1, 1, 1],
        "out_features": ["stage1", "stage2", "stage3", "stage4"],
    }
    config = transformers.PPDocLayoutV3Config(
        backbone_config=backbone,
        encoder_hidden_dim=WIDTH,
        encoder_in_channels=[WIDTH] * 3,
        encoder_ffn_dim=2 * WIDTH,
        encoder_attention_heads=2,
        mask_feature_channels=[WIDTH, WIDTH],
        x4_feat_dim=WIDTH,
        d_model=WIDTH,
        num_prototypes=8,
        num_queries=20,
        decoder_in_channels=[WIDTH] * 3,
        decoder_ffn_dim=WIDTH,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_n_points=2,
        num_denoising=0,
        global_pointer_head_size=8,
        initializer_range=0.5,
        id2label=dict(enumerate(LAYOUT_LABELS)),
    )
    torch.manual_seed(0)
    return transformers.PPDocLayoutV3ForObjectDetection(config).eval()


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    processor = transformers.PPDocLayoutV3ImageProcessor(size={"height": 128, "width": 128})
    return _tiny_model(), processor


def _page(number: int, width: int, height: int) -> Page:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([width // 10, height // 10, width * 9 // 10, height // 5], fill="black")
    draw.rectangle([width // 10, height // 3, width // 2, height * 4 // 5], fill=(90, 90, 90))
    draw.rectangle([width * 6 // 10, height // 3, width * 9 // 10, height // 2], fill=(200, 30, 30))
    return Page(number=number, width=width, height=height, kind="image", image=image, dpi=72)


PAGES = [_page(1, 400, 600), _page(2, 600, 400), _page(3, 500, 500)]


def _backend(tiny: tuple[Any, Any], **options: Any) -> PPDocLayoutV3Backend:
    model, processor = tiny
    return PPDocLayoutV3Backend.from_model(
        model, processor, PPDocLayoutConfig(score_threshold=0.0, **options)
    )


def _same(a: list[list[Region]], b: list[list[Region]]) -> None:
    """Equal labels and orders; boxes and scores equal to float noise (batched kernels differ)."""
    assert [[(r.label, r.order) for r in page] for page in a] == [
        [(r.label, r.order) for r in page] for page in b
    ]
    for page_a, page_b in zip(a, b, strict=True):
        for ra, rb in zip(page_a, page_b, strict=True):
            assert ra.bbox == pytest.approx(rb.bbox, abs=1e-4)
            assert ra.score == pytest.approx(rb.score, abs=1e-4)


def test_analyze_returns_valid_regions_per_page(tiny: tuple[Any, Any]) -> None:
    backend = _backend(tiny)
    assert backend.name == "ppdoclayout"
    results = backend.detect(PAGES)
    assert len(results) == len(PAGES)
    labels = set(tiny[0].config.id2label.values())
    for regions in results:
        assert regions, "threshold 0 must let random outputs through"
        assert [r.order for r in regions] == list(range(len(regions)))
        for r in regions:
            assert r.label in labels
            x0, y0, x1, y1 = r.bbox
            assert 0.0 <= x0 <= x1 <= 1.0
            assert 0.0 <= y0 <= y1 <= 1.0
            assert 0.0 <= r.score <= 1.0


def test_analyze_is_deterministic(tiny: tuple[Any, Any]) -> None:
    backend = _backend(tiny, batch_size=3)
    assert backend.detect(PAGES) == backend.detect(PAGES)


def test_batching_does_not_change_results(tiny: tuple[Any, Any]) -> None:
    _same(_backend(tiny, batch_size=2).detect(PAGES), _backend(tiny, batch_size=1).detect(PAGES))


def test_threshold_applies_to_model_scores(tiny: tuple[Any, Any]) -> None:
    everything = _backend(tiny).detect(PAGES[:1])[0]
    cut = sorted(r.score for r in everything)[len(everything) // 2]
    strict = PPDocLayoutV3Backend.from_model(*tiny, PPDocLayoutConfig(score_threshold=cut)).detect(PAGES[:1])[
        0
    ]
    assert strict
    assert all(r.score >= cut for r in strict)
    assert len(strict) < len(everything)


def test_loads_once_from_a_local_folder(
    tiny: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loads: list[str] = []
    real = transformers.PPDocLayoutV3ForObjectDetection.from_pretrained

    def counting(*args: Any, **kwargs: Any) -> Any:
        loads.append(str(args[0]))
        assert kwargs["local_files_only"] is True
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.PPDocLayoutV3ForObjectDetection, "from_pretrained", counting)
    backend = PPDocLayoutV3Backend(
        PPDocLayoutConfig(model=str(tmp_path), local_files_only=True, score_threshold=0.0)
    )
    assert loads == []  # lazy: nothing loads before the first page

    results: list[list[list[Region]]] = []
    threads = [threading.Thread(target=lambda: results.append(backend.detect(PAGES[:1]))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert loads == [str(tmp_path)]
    assert len(results) == 3
    assert backend.id2label == dict(enumerate(LAYOUT_LABELS))
    expected = _backend(tiny).detect(PAGES[:1])
    for got in results:
        _same(got, expected)


def test_empty_input_loads_nothing() -> None:
    backend = PPDocLayoutV3Backend(PPDocLayoutConfig(model="/nonexistent", local_files_only=True))
    assert backend.detect([]) == []


def test_decoding_matches_transformers_post_processing(tiny: tuple[Any, Any]) -> None:
    """Our numpy decode (top pairs, threshold, order-head ranks) agrees with the image processor's
    ``post_process_object_detection`` on the same outputs, before our NMS and merging."""
    pytest.importorskip("cv2")  # transformers' version also traces mask polygons with OpenCV
    from app.regions.postprocess import decode

    model, processor = tiny
    inputs = processor(images=[p.image for p in PAGES], return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    cut = float(outputs.logits.sigmoid().median())
    theirs = processor.post_process_object_detection(
        outputs, threshold=cut, target_sizes=[(1, 1)] * len(PAGES)
    )
    for i, ref in enumerate(theirs):
        det = decode(
            outputs.logits[i].numpy(), outputs.pred_boxes[i].numpy(), outputs.order_logits[i].numpy(), cut
        )
        assert det.order is not None
        ours = sorted(
            (int(o), int(lab), float(s), *map(float, box))
            for o, lab, s, box in zip(det.order, det.labels, det.scores, det.boxes, strict=True)
        )
        expected = sorted(
            (int(o), int(lab), float(s), *map(float, box))
            for o, lab, s, box in zip(
                ref["order_seq"], ref["labels"], ref["scores"], ref["boxes"], strict=True
            )
        )
        assert ours
        assert [row[:2] for row in ours] == [row[:2] for row in expected]  # (query rank, label) is unique
        flat_ours = [v for row in ours for v in row[2:]]
        assert flat_ours == pytest.approx([v for row in expected for v in row[2:]], abs=1e-5)
