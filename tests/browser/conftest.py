"""What the browser tests share: Debian's Chromium (skipped, or failed in CI, when it cannot run),
the app served by uvicorn on a free loopback port, and screenshots in ``$DOCEXTRACT_TEST_ARTIFACTS``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import IN_CI

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path(os.environ.get("DOCEXTRACT_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("DOCEXTRACT_TEST_ARTIFACTS", "test-artifacts"))


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where the browser tests must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser test may not be skipped)")
    pytest.skip(reason)


@pytest.fixture
def chromium() -> Path:
    """The browser, checked before any server starts: skip (fail in CI) when the test cannot run."""
    if importlib.util.find_spec("playwright") is None:
        unavailable("playwright is not installed (pip install -r requirements-dev.lock)")
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set DOCEXTRACT_TEST_CHROMIUM)")
    return CHROMIUM


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
