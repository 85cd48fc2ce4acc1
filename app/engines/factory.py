"""Build the configured engine once per process; fail fast, naming what to set."""

from __future__ import annotations

import importlib.util

from app.engines.base import Engine
from app.engines.replay import ReplayEngine
from app.lib.settings import ConfigurationError, EngineSettings


def build_engine(settings: EngineSettings) -> Engine | None:
    """``None`` when no engine is configured (extraction then answers 503 engine-unavailable)."""
    if settings.engine == "replay":
        if settings.replay_dir is None:
            raise ConfigurationError(
                "DOCEXTRACT_ENGINE=replay needs DOCEXTRACT_REPLAY_DIR (a folder of <id>.json)"
            )
        return ReplayEngine(settings.replay_dir)
    if settings.engine == "sglang":
        if not settings.sglang_url:
            return None
        from app.engines.sglang import SGLangConfig, SGLangEngine

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
    missing = [m for m in ("torch", "transformers", "llguidance") if importlib.util.find_spec(m) is None]
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
