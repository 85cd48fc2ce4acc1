"""PP-DocLayoutV3 (GLM-OCR's layout model) through Hugging Face transformers.

torch and transformers are imported only when the model loads, so this module imports without the
``local`` extra. The model loads on the first ``detect`` call, once, under a lock. Raw outputs go to
:mod:`app.regions.postprocess`, which mirrors GLM-OCR's post-processing.

The default ``model`` is the transformers-format checkpoint GLM-OCR's SDK loads
(``PaddlePaddle/PP-DocLayoutV3_safetensors``; ``PaddlePaddle/PP-DocLayoutV3`` is a PaddleOCR export
that transformers cannot read). A local folder written by ``save_pretrained`` works too.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.pages import Page, Region
from app.regions.base import LayoutBackend
from app.regions.postprocess import (
    DEFAULT_NMS_IOU_OTHER,
    DEFAULT_NMS_IOU_SAME,
    DEFAULT_SCORE_THRESHOLD,
    PostprocessOptions,
    regions_from_outputs,
)

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "PaddlePaddle/PP-DocLayoutV3_safetensors"
DType = Literal["auto", "float32", "float16", "bfloat16"]


@dataclass(frozen=True, slots=True)
class PPDocLayoutConfig:
    """How to load and run the model; post-processing defaults are GLM-OCR's (threshold 0.3, NMS IoU
    0.6 within a class and 0.98 across classes, nested regions merged into their container)."""

    model: str = DEFAULT_MODEL
    """A local folder with ``config.json``, weights and ``preprocessor_config.json``, or a hub id."""
    device: str = "cpu"
    batch_size: int = 4
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    nms_iou: float = DEFAULT_NMS_IOU_SAME
    nms_iou_other_class: float = DEFAULT_NMS_IOU_OTHER
    merge_contained: bool = True
    class_thresholds: Mapping[str, float] = field(default_factory=dict)
    local_files_only: bool = False
    revision: str | None = None
    dtype: DType = "auto"
    """``auto``: float32 on CPU; float16 on CUDA (the model runs in half precision, and float16 keeps
    three more mantissa bits than bfloat16 for the box coordinates)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for name, value in (
            ("score_threshold", self.score_threshold),
            ("nms_iou", self.nms_iou),
            ("nms_iou_other_class", self.nms_iou_other_class),
            *self.class_thresholds.items(),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")

    def postprocess_options(self) -> PostprocessOptions:
        return PostprocessOptions(
            score_threshold=self.score_threshold,
            class_thresholds=dict(self.class_thresholds),
            nms_iou_same=self.nms_iou,
            nms_iou_other=self.nms_iou_other_class,
            merge_contained=self.merge_contained,
        )


class PPDocLayoutV3Backend(LayoutBackend):
    """Regions from PP-DocLayoutV3: label from the model's ``id2label``, box normalised to the page,
    score, and rank in the reading order predicted by the model's order head."""

    name = "ppdoclayout"

    def __init__(self, config: PPDocLayoutConfig | None = None) -> None:
        self.config = config or PPDocLayoutConfig()
        self._lock = threading.Lock()
        self._model: Any = None
        self._processor: Any = None
        self._id2label: dict[int, str] = {}

    @classmethod
    def from_model(
        cls, model: Any, image_processor: Any, config: PPDocLayoutConfig | None = None
    ) -> PPDocLayoutV3Backend:
        """A backend around an already built ``PPDocLayoutV3ForObjectDetection`` and its image
        processor (tests, or a caller sharing one model); ``config.model`` is then unused. The model is
        moved to ``config.device`` and dtype in place and put in eval mode."""
        backend = cls(config)
        backend._install(model, image_processor)
        return backend

    def _install(self, model: Any, image_processor: Any) -> None:
        import torch  # noqa: PLC0415 - optional extra, imported on use

        device = torch.device(self.config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"layout device {self.config.device!r} requested but CUDA is not available")
        model = model.to(device=device, dtype=_resolve_dtype(self.config.dtype, device))
        model.eval()
        self._id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        self._processor = image_processor
        self._model = model  # last: ``_ensure_loaded`` reads it without the lock

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from transformers import (  # noqa: PLC0415 - optional extra, imported on use
                PPDocLayoutV3ForObjectDetection,
                PPDocLayoutV3ImageProcessor,
            )

            options: dict[str, Any] = {
                "local_files_only": self.config.local_files_only,
                "revision": self.config.revision,
            }
            processor = PPDocLayoutV3ImageProcessor.from_pretrained(self.config.model, **options)
            model = PPDocLayoutV3ForObjectDetection.from_pretrained(self.config.model, **options)
            self._install(model, processor)

    @property
    def id2label(self) -> dict[int, str]:
        """The model's labels (loads the model)."""
        self._ensure_loaded()
        return dict(self._id2label)

    def detect(self, pages: Sequence[Page]) -> list[list[Region]]:
        if not pages:
            return []
        self._ensure_loaded()
        results: list[list[Region]] = []
        step = self.config.batch_size
        for start in range(0, len(pages), step):
            results.extend(self._detect_batch(pages[start : start + step]))
        return results

    def _detect_batch(self, pages: Sequence[Page]) -> list[list[Region]]:
        import torch  # noqa: PLC0415 - optional extra, imported on use

        images = [p.image if p.image.mode == "RGB" else p.image.convert("RGB") for p in pages]
        inputs = self._processor(images=images, return_tensors="pt")
        param = next(self._model.parameters())
        pixel_values: torch.Tensor = inputs["pixel_values"].to(device=param.device, dtype=param.dtype)
        with torch.inference_mode():
            outputs = self._model(pixel_values=pixel_values)
            logits = outputs.logits.float().cpu().numpy()
            boxes = outputs.pred_boxes.float().cpu().numpy()
            order = getattr(outputs, "order_logits", None)
            order_logits = None if order is None else order.float().cpu().numpy()
        options = self.config.postprocess_options()
        return [
            regions_from_outputs(
                logits[i],
                boxes[i],
                None if order_logits is None else order_logits[i],
                id2label=self._id2label,
                page_size=image.size,
                options=options,
            )
            for i, image in enumerate(images)
        ]


def _resolve_dtype(dtype: DType, device: torch.device) -> torch.dtype:
    import torch  # noqa: PLC0415 - optional extra, imported on use

    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    resolved: torch.dtype = getattr(torch, dtype)
    return resolved
