"""The browsable API reference at ``/openapi``: Swagger UI from the files the ``swagger-ui-bundle-v2``
package installs, served by this app at ``/openapi-assets/``. The service is self-hosted, often
without internet, so the page loads nothing from a CDN (Litestar's plugins default to jsDelivr)."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed; one Path

ASSETS_PATH = "/openapi-assets"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
SWAGGER_UI_VERSION = SWAGGER_UI_DIR.name.removeprefix("swagger-ui-")
"""The bundled release (e.g. ``5.31.0``), put in every asset URL: a new release is a new URL, so
browsers may keep the files for a year (``immutable``)."""


def asset_url(name: str) -> str:
    return f"{ASSETS_PATH}/{name}?v={SWAGGER_UI_VERSION}"


def openapi_assets_router() -> Router:
    """Swagger UI's scripts, styles and favicon (public, like ``/openapi``: no data)."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[SWAGGER_UI_DIR],
        name="openapi-assets",
        cache_control=CacheControlHeader(public=True, max_age=365 * 24 * 3600, immutable=True),
        include_in_schema=False,
    )


def swagger_render_plugin() -> SwaggerRenderPlugin:
    """Litestar's Swagger UI page with every URL pointing here (scripts, stylesheet and favicon)."""
    return SwaggerRenderPlugin(
        js_url=asset_url("swagger-ui-bundle.js"),
        css_url=asset_url("swagger-ui.css"),
        standalone_preset_js_url=asset_url("swagger-ui-standalone-preset.js"),
        favicon=f'<link rel="icon" type="image/png" href="{asset_url("favicon-32x32.png")}">',
    )
