"""Pieces every controller shares: the problem model for OpenAPI, pagination, the JSON-body guard."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import ResponseSpec

from app.lib.problems import UNSUPPORTED_MEDIA_TYPE, Problem, ProblemType


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


def problem_responses(*kinds: ProblemType) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problems a route can answer (grouped by status)."""
    by_status: dict[int, list[ProblemType]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: ResponseSpec(
            data_container=ProblemOut,
            media_type="application/problem+json",
            description="; ".join(f"`{k.uri}`: {k.title}" for k in group),
            generate_examples=False,
        )
        for status, group in by_status.items()
    }


def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the body must be declared as JSON (``application/json`` or ``*/*+json``)."""
    media_type = connection.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(
            UNSUPPORTED_MEDIA_TYPE,
            f"Expected Content-Type application/json, got {media_type or 'none'!r}.",
        )
