"""The application factory. ``ApplicationCore.on_app_init`` is the one place that lists every
plugin, controller, dependency, middleware, error handler and lifespan step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPluginProtocol
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsPlugin
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.api.batches import batch_router
from app.api.common import DocumentProblems
from app.api.documents import documents_router
from app.api.extract import extraction_router
from app.api.extractions import ExtractionsController
from app.api.jobs import JobController
from app.api.keys import KeyController
from app.api.metrics import MetricsController, prometheus_config
from app.api.schemas import SchemaController
from app.api.senders import SenderController
from app.api.system import SystemController
from app.api.webhooks import WebhookController
from app.auth.middleware import PUBLIC_PATHS, ApiKeyAuthenticationMiddleware
from app.jobs.services import DELIVERER, Services
from app.lib import metrics, tracing
from app.lib.errors import DocextractError
from app.lib.logging import configure_logging
from app.lib.problems import (
    domain_error_handler,
    http_exception_handler,
    problem_response,
    too_deep_handler,
    unexpected_exception_handler,
)
from app.lib.settings import Settings, get_settings
from app.registry.service import SchemaRegistry
from app.registry.validation import schema_limits
from app.review_page.routes import review_router
from app.server.middleware import close_if_body_unread, request_id_middleware, unread_body_middleware
from app.server.openapi_ui import openapi_assets_router, swagger_render_plugin
from app.server.retention import purge_all
from app.server.startup import prepare_app

logger = structlog.get_logger(__name__)


def provide_services(state: State) -> Services:
    """The process's ``Services``, injected into handlers that take a ``services`` parameter."""
    services: Services = state.services
    return services


async def provide_db_session(services: NamedDependency[Services]) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


async def provide_registry(
    db_session: NamedDependency[AsyncSession], services: NamedDependency[Services]
) -> SchemaRegistry:
    return SchemaRegistry(db_session, schema_limits(services.settings))


PURGE_INTERVAL_S = 3600


async def purge_periodically(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Delete what outlived the retention period, hourly (every process does it; it is idempotent).
    The start-up purge runs in ``prepare``; this task sleeps first, so shutdown cancels it asleep."""
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        try:
            async with sessions() as session:
                purged = await purge_all(session)
            if any(purged.values()):
                logger.info("purged", **purged)
        except Exception:
            logger.exception("purge_failed")


class ApplicationCore(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        self._configure_state(app_config)
        self._configure_plugins(app_config)
        self._configure_controllers(app_config)
        self._configure_dependencies(app_config)
        self._configure_middleware(app_config)
        self._configure_error_handlers(app_config)
        self._configure_openapi(app_config)
        self._configure_lifespan(app_config)
        return app_config

    def _configure_state(self, app_config: AppConfig) -> None:
        services = Services.build(self.settings)
        # Handlers get ``services`` injected; middleware cannot, so it reads settings and sessions here.
        app_config.state.update(services=services, settings=self.settings, sessions=services.sessions)
        app_config.debug = False
        app_config.logging_config = None  # configure_logging owns logging; Litestar must not replace it

    def _configure_plugins(self, app_config: AppConfig) -> None:
        app_config.plugins.extend(
            [
                ProblemDetailsPlugin(ProblemDetailsConfig(exception_handler=problem_response)),
                DocumentProblems(PUBLIC_PATHS),
            ]
        )
        if (provider := tracing.provider()) is not None:  # a span per request, the route as its name
            from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin  # noqa: PLC0415

            app_config.plugins.append(
                OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider, exclude=["/health"]))
            )

    def _configure_controllers(self, app_config: AppConfig) -> None:
        app_config.route_handlers.extend(
            [
                SystemController,
                MetricsController,
                SchemaController,
                KeyController,
                WebhookController,
                documents_router(self.settings.ingest.max_bytes),
                extraction_router(self.settings.ingest.max_bytes),
                ExtractionsController,
                JobController,
                batch_router(self.settings),
                SenderController,
                review_router(),
            ]
        )

    def _configure_dependencies(self, app_config: AppConfig) -> None:
        app_config.dependencies.update(
            {
                "services": Provide(provide_services, sync_to_thread=False),
                "db_session": Provide(provide_db_session),
                "registry": Provide(provide_registry),
            }
        )

    def _configure_middleware(self, app_config: AppConfig) -> None:
        app_config.middleware.extend(
            [
                request_id_middleware,
                unread_body_middleware,
                DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude=PUBLIC_PATHS),
                # Innermost: it sees the status of every response a handler gives, errors included;
                # a request the key check refuses never reaches it (outside, it would count as a 200).
                prometheus_config().middleware,
            ]
        )
        # Sees every response, also those of the app-level exception handler (401s, 404 routes).
        app_config.before_send.append(close_if_body_unread)

    def _configure_error_handlers(self, app_config: AppConfig) -> None:
        # Litestar's own errors (routing, body parsing, auth), our domain errors and anything
        # unforeseen also become catalogued problems; the plugin handles our ``Problem`` exceptions.
        app_config.exception_handlers.update(
            {
                HTTPException: http_exception_handler,
                DocextractError: domain_error_handler,
                RecursionError: too_deep_handler,
                Exception: unexpected_exception_handler,
            }
        )

    def _configure_openapi(self, app_config: AppConfig) -> None:
        app_config.openapi_config = OpenAPIConfig(
            title="docextract",
            version=__version__,
            description="Schema-valid JSON from invoices, receipts and forms, with a confidence "
            "and evidence for every field. Errors are RFC 9457 problem+json; see `/problems`.",
            path="/openapi",
            render_plugins=[swagger_render_plugin()],  # its scripts from this app, never a CDN
            components=Components(
                security_schemes={
                    "ApiKey": SecurityScheme(type="http", scheme="bearer", description="`dxk_...` API key"),
                    "ApiKeyHeader": SecurityScheme(
                        type="apiKey", name="X-API-Key", security_scheme_in="header", description="The same"
                    ),
                }
            ),
            security=[{"ApiKey": []}, {"ApiKeyHeader": []}],
        )
        app_config.route_handlers.append(openapi_assets_router())

    def _configure_lifespan(self, app_config: AppConfig) -> None:
        settings = self.settings

        @asynccontextmanager
        async def lifespan(app: Litestar) -> AsyncIterator[None]:
            services: Services = app.state.services
            await prepare_app(settings, services.database, services.sessions)
            services.run_in_background("purge", purge_periodically(services.sessions))
            if settings.jobs.runner == "inprocess":  # with Redis, the workers deliver
                services.run_in_background(DELIVERER, services.deliverer.run(settings.jobs.poll_s))
            await services.runner.start()
            try:
                yield
            finally:
                await services.runner.stop()
                await services.aclose()
                metrics.process_exiting()

        app_config.lifespan.append(lifespan)


def create_app(settings: Settings | None = None, **kwargs: Any) -> Litestar:
    """Build the ASGI app; ``settings`` default to the environment (``DOCEXTRACT_*``)."""
    settings = settings or get_settings()
    configure_logging(settings.app.log_level, settings.app.log_format)
    tracing.setup_tracing(settings.app.tracing)
    # Litestar reads the body limit from its constructor only, not from plugins' app config.
    kwargs.setdefault("request_max_body_size", settings.server.max_request_bytes)
    return Litestar(plugins=[ApplicationCore(settings)], **kwargs)
