"""Pieces every controller shares: the problem model for OpenAPI, pagination, the JSON-body guard,
and the plugin that documents the problems every route can answer."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.constants import RESERVED_KWARGS
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from app.lib.problems import (
    BAD_REQUEST,
    FORBIDDEN,
    REQUEST_TOO_LARGE,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    Problem,
    ProblemType,
)

MAX_OFFSET = 2**63 - 1
"""The largest OFFSET SQLite and PostgreSQL take (signed 64 bits): past it, a 400, not a driver error."""
Offset = Annotated[int, Parameter(ge=0, le=MAX_OFFSET, description="Items to skip.")]
PAGES_PATTERN = r"^ *[0-9]+ *(- *[0-9]+ *)?(, *[0-9]+ *(- *[0-9]+ *)?)*$"
"""A page selection as the spec documents it (``1-3,7``); the server reads the same and answers 422
invalid-page-selection for anything else or for pages the document does not have."""


def pages_parameter(description: str) -> Any:
    """The ``pages`` query parameter of every route that reads documents, with its syntax in the
    spec (omit it for every page)."""
    return Parameter(description=description, schema_extra={"pattern": PAGES_PATTERN})


class ProblemError(msgspec.Struct):
    pointer: str
    detail: str


class ProblemOut(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[ProblemError] | None = None


def _entry(kind: ProblemType) -> str:
    return f"`{kind.uri}`: {kind.title}"


def problem_responses(*kinds: ProblemType) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problems a route can answer (grouped by status)."""
    by_status: dict[int, list[ProblemType]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: ResponseSpec(
            data_container=ProblemOut,
            media_type="application/problem+json",
            description="; ".join(_entry(k) for k in group),
            generate_examples=False,
        )
        for status, group in by_status.items()
    }


def with_problems(
    responses: Mapping[int, ResponseSpec] | None, kinds: Iterable[ProblemType]
) -> dict[int, ResponseSpec]:
    """``responses`` with ``kinds`` added: a new status gets its entry, a documented one a longer
    description (its schema is already the problem's)."""
    merged = dict(responses or {})
    for kind in kinds:
        have = merged.get(kind.status)
        if have is None:
            merged.update(problem_responses(kind))
        elif _entry(kind) not in have.description:
            merged[kind.status] = dataclasses.replace(have, description=f"{have.description}; {_entry(kind)}")
    return merged


class DocumentProblems(ReceiveRoutePlugin):
    """Adds to every route's OpenAPI responses the problems that come from outside its handler, so
    a new route is documented without repeating them: 401 where the API key is checked (every path
    but ``public_paths``), 403 where a scope guard (:func:`requires`, marked by ``scope``) applies,
    400 problem+json wherever parameters or a body are validated (instead of Litestar's own
    ``application/json`` shape, which the server never sends), and 415 and 413 on JSON-body routes."""

    def __init__(self, public_paths: Iterable[str]) -> None:
        self.public = [re.compile(p) for p in public_paths]

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            handler.responses = with_problems(handler.responses, self._kinds(route, handler))

    def _kinds(self, route: HTTPRoute, handler: HTTPRouteHandler) -> list[ProblemType]:
        kinds: list[ProblemType] = []
        guards = [guard for layer in handler.ownership_layers for guard in layer.guards or []]
        if not any(p.search(route.path) for p in self.public):
            kinds.append(UNAUTHENTICATED)
        if any(hasattr(guard, "scope") for guard in guards):
            kinds.append(FORBIDDEN)
        inputs = set(handler.parsed_fn_signature.parameters) - set(handler.resolve_dependencies())
        if route.path_parameters or "data" in inputs or inputs - RESERVED_KWARGS:
            kinds.append(BAD_REQUEST)
        if json_body in guards:
            kinds += [UNSUPPORTED_MEDIA_TYPE, REQUEST_TOO_LARGE]
        return kinds


def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the body must be declared as JSON (``application/json`` or ``*/*+json``)."""
    media_type = connection.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            f"Expected Content-Type application/json, got {media_type or 'none'!r}.",
        )
