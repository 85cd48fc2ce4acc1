"""Build the configured layout backend once per process."""

from __future__ import annotations

import importlib.util

from app.lib.settings import ConfigurationError, LayoutSettings
from app.regions.base import LayoutBackend
from app.regions.native import AutoLayout, PdfNativeLayout


def build_region_detector(settings: LayoutSettings) -> LayoutBackend | None:
    """``None`` when layout is off. Fails fast, naming what to set, when the choice cannot work."""
    if settings.backend == "none":
        return None
    if settings.backend == "pymupdf":
        return PdfNativeLayout()
    model = _model_backend(settings) if settings.model else None
    if settings.backend == "ppdoclayout":
        if model is None:
            raise ConfigurationError(
                "DOCEXTRACT_LAYOUT_BACKEND=ppdoclayout needs DOCEXTRACT_LAYOUT_MODEL: a folder with "
                "PP-DocLayoutV3 weights, or a hub id with DOCEXTRACT_LAYOUT_LOCAL_FILES_ONLY=false."
            )
        return model
    return AutoLayout(model)


def _model_backend(settings: LayoutSettings) -> LayoutBackend:
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(
            f"DOCEXTRACT_LAYOUT_MODEL is set but {', '.join(missing)} is not installed: "
            "pip install 'docextract[local]', or unset DOCEXTRACT_LAYOUT_MODEL."
        )
    from app.regions.ppdoclayout import PPDocLayoutConfig, PPDocLayoutV3Backend  # needs the local extra

    assert settings.model is not None
    return PPDocLayoutV3Backend(
        PPDocLayoutConfig(
            model=settings.model,
            device=settings.device,
            batch_size=settings.batch_size,
            local_files_only=settings.local_files_only,
        )
    )
