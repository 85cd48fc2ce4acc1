"""Build the configured engine once per process; fail fast, naming what to set.

``auto`` picks the best engine this machine can run, so that the first command works anywhere:
SGLang when its URL is set and answers; else GLM-OCR in process when its weights are on disk (or
may be downloaded); else the ``layout`` engine, with a one-line notice saying how to get GLM-OCR.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import structlog

from app.engines.base import Engine
from app.engines.replay import ReplayEngine
from app.engines.unavailable import UnavailableEngine
from app.lib.settings import ConfigurationError, EngineSettings

logger = structlog.get_logger(__name__)
PROBE_TIMEOUT_S = 2.0
LOCAL_PACKAGES = ("torch", "transformers", "llguidance")
GLM_OCR_HINT = (
    "for GLM-OCR set DOCEXTRACT_SGLANG_URL to an SGLang server, or pip install 'docextract[local]' "
    "with the weights in DOCEXTRACT_MODEL (or DOCEXTRACT_MODEL_LOCAL_FILES_ONLY=false to download them)"
)


def build_engine(settings: EngineSettings) -> Engine:
    """An ``UnavailableEngine`` when none is configured (extraction then answers 503
    engine-unavailable)."""
    engine = _configured(settings)
    if isinstance(engine, UnavailableEngine):
        return engine
    if settings.engine_fallback == "layout" and engine.name != "layout":
        from app.engines.fallback import FallbackEngine

        return FallbackEngine(engine, _layout())
    return engine


def _configured(settings: EngineSettings) -> Engine:
    if settings.engine == "auto":
        return _auto(settings)
    if settings.engine == "layout":
        return _layout()
    if settings.engine == "replay":
        if settings.replay_dir is None:
            raise ConfigurationError(
                "DOCEXTRACT_ENGINE=replay needs DOCEXTRACT_REPLAY_DIR (a folder of <id>.json)"
            )
        return ReplayEngine(settings.replay_dir)
    if settings.engine == "sglang":
        return _sglang(settings) if settings.sglang_url else UnavailableEngine()
    return _transformers(settings)


def _auto(settings: EngineSettings) -> Engine:
    if settings.sglang_url:
        # A configured server is what the operator wants, even while it is still loading its model:
        # falling back for good at start-up would quietly degrade every extraction of this process.
        if not sglang_reachable(settings.sglang_url):
            logger.warning(
                "engine_sglang_unreachable",
                url=settings.sglang_url,
                notice="extraction answers 503 (async jobs wait and retry) until it is reachable; "
                "DOCEXTRACT_ENGINE_FALLBACK=layout reads pages with the layout engine meanwhile",
            )
        return _sglang(settings)
    if not _missing_local() and glm_ocr_available(settings.model, settings.model_local_files_only):
        logger.info("engine_selected", engine="transformers", model=settings.model)
        return _transformers(settings)
    engine = _layout()
    logger.warning(
        "engine_selected",
        engine="layout",
        notice=f"extracting with the layout engine (no GPU, no model); {GLM_OCR_HINT}",
    )
    return engine


def sglang_reachable(url: str) -> bool:
    """Whether an SGLang server answers at ``url`` (its cheap ``/model_info``), within 2 s."""
    try:
        response = httpx.get(url.rstrip("/") + "/model_info", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def glm_ocr_available(model: str, local_files_only: bool) -> bool:
    """GLM-OCR weights in a local folder or the hub cache, or a download the user allowed."""
    if Path(model).is_dir():
        return (Path(model) / "config.json").is_file()
    if not local_files_only:
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except (ImportError, ValueError):
        return False
    return isinstance(cached, str)


def _missing_local() -> list[str]:
    return [m for m in LOCAL_PACKAGES if importlib.util.find_spec(m) is None]


def _layout() -> Engine:
    from app.engines.layout import LayoutEngine

    return LayoutEngine()


def _sglang(settings: EngineSettings) -> Engine:
    from app.engines.sglang import SGLangConfig, SGLangEngine

    assert settings.sglang_url is not None
    return SGLangEngine(
        SGLangConfig(
            base_url=settings.sglang_url,
            model=settings.sglang_model,
            api_key=settings.sglang_api_key,
            max_in_flight=settings.max_in_flight,
            timeout_s=settings.engine_timeout_s,
            max_retries=settings.engine_retries,
        )
    )


def _transformers(settings: EngineSettings) -> Engine:
    missing = _missing_local()
    if missing:
        raise ConfigurationError(
            f"DOCEXTRACT_ENGINE=transformers needs {', '.join(missing)}: pip install 'docextract[local]'"
        )
    from app.engines.transformers_engine import TransformersConfig, TransformersEngine

    return TransformersEngine(
        TransformersConfig(
            model=settings.model,
            device=settings.model_device,
            local_files_only=settings.model_local_files_only,
        )
    )
