"""The API reference (``/openapi``) in a real browser, offline: Chromium driven by Playwright against
the app served by uvicorn. Every request the page makes is routed through the test: those to the
app's own origin go on, any other is recorded and blocked, as on a machine without internet. The
Swagger UI must still render the operations, and nothing may have left the app's origin.

Skips when Playwright or Chromium is missing, unless CI=true: then it fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from app.lib.settings import EngineSettings
from app.server.core import create_app
from tests.browser.conftest import screenshot, unavailable
from tests.conftest import make_settings
from tests.helpers import served

if TYPE_CHECKING:
    from playwright.sync_api import Route

pytestmark = pytest.mark.slow  # a browser and a server: a few seconds


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    """The app on a free loopback port (SQLite, the layout engine)."""
    settings = make_settings(
        tmp_path / "data",
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        engine=EngineSettings(engine="layout"),
    )
    with served(create_app(settings)) as url:
        yield url


def test_the_html_names_no_other_origin(base: str) -> None:
    """Scripts, stylesheet and favicon are this app's files, cached by the browser (a versioned URL)."""
    page = httpx.get(f"{base}/openapi")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    head = page.text.split("<body>", 1)[0]  # the body embeds the spec, whose examples hold URLs
    assets = re.findall(r'(?:src|href)="([^"]*)"', head)
    assert len(assets) == 4, assets  # favicon, stylesheet, Swagger UI, its standalone preset
    assert all(url.startswith("/openapi-assets/") for url in assets), assets
    assert re.findall(r"https?://", head) == []
    for url in assets:
        asset = httpx.get(base + url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "max-age=31536000, public, immutable"


def test_swagger_ui_renders_the_operations_offline(chromium: Path, base: str) -> None:
    """``chromium`` comes first: the browser is checked before the server starts."""
    from playwright.sync_api import Error, sync_playwright

    origin = urlsplit(base)[:2]
    requested: list[str] = []
    blocked: list[str] = []

    def route(route: Route) -> None:
        """Only the app's own origin is reachable, as without internet."""
        url = route.request.url
        requested.append(url)
        if urlsplit(url)[:2] == origin:
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(chromium), headless=True)
        except Error as exc:
            unavailable(f"Chromium at {chromium} does not start: {exc}")
            raise
        context = browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        context.set_default_timeout(20_000)
        context.route("**/*", route)
        errors: list[str] = []
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base}/openapi")
            extract = page.locator('.opblock-post .opblock-summary-path[data-path="/extract/{schema}"]')
            extract.wait_for()
            assert page.locator(".opblock").count() > 20  # every route, not just the first
            assert "docextract" in page.locator(".info .title").inner_text()
            extract.click()  # the operation opens: its parameters are rendered too
            page.locator(".opblock-post.is-open .parameters").first.wait_for()
            screenshot(page, "openapi.png")
        finally:
            context.close()
            browser.close()

    assert errors == []
    assert blocked == [], blocked
    assert any(url.startswith(f"{base}/openapi-assets/swagger-ui-bundle.js") for url in requested), requested
