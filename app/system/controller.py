"""Liveness, readiness and the documentation of every problem type."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import Parameter
from sqlalchemy import text

from app import __version__
from app.db.migrate import DatabaseNewerThanCode, migration_state
from app.lib.api import problem_responses
from app.lib.problems import CATALOGUE, NOT_FOUND, NOT_READY, Problem


class Health(msgspec.Struct):
    status: str
    version: str


class ProblemTypeOut(msgspec.Struct):
    type: str
    status: int
    title: str
    description: str


class SystemController(Controller):
    tags = ["operations"]
    security = [{}]

    @get("/health", summary="Liveness: the process serves requests")
    async def health(self) -> Health:
        return Health("ok", __version__)

    @get(
        "/ready",
        summary="Readiness: database reachable, migrations current, engine reachable",
        responses=problem_responses(NOT_READY),
    )
    async def ready(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        checks: dict[str, str] = {}
        database = request.app.state.engine
        try:
            async with database.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            state = await migration_state(database)
            checks["migrations"] = "current" if state.is_current else f"at {state.current}, need {state.head}"
        except DatabaseNewerThanCode as exc:
            checks["migrations"] = str(exc)
        except Exception as exc:  # any driver failure means "not ready", never a 500
            checks.setdefault("database", f"unreachable: {type(exc).__name__}")
        engine = request.app.state.extractor.engine
        if engine is None:
            checks["engine"] = "not configured (extraction answers 503)"
        else:
            try:
                await engine.ready()
                checks["engine"] = "ok"
            except Exception as exc:  # an unreachable engine makes the service not ready
                checks["engine"] = f"unavailable: {exc}"
        if (
            checks.get("database") != "ok"
            or checks.get("migrations") != "current"
            or checks["engine"].startswith("unavailable")
        ):
            raise Problem(NOT_READY, "The service is not ready.", checks=checks)
        return {"status": "ready", "checks": checks}

    @get("/problems", summary="Every problem type the API answers with")
    async def problem_types(self) -> list[ProblemTypeOut]:
        return [ProblemTypeOut(k.uri, k.status, k.title, k.description) for k in CATALOGUE.values()]

    @get("/problems/{slug:str}", summary="One problem type", responses=problem_responses(NOT_FOUND))
    async def problem_type(
        self, slug: Annotated[str, Parameter(description="Problem type slug.")]
    ) -> ProblemTypeOut:
        kind = CATALOGUE.get(slug)
        if kind is None:
            raise Problem(NOT_FOUND, f"No problem type is named {slug!r}.")
        return ProblemTypeOut(kind.uri, kind.status, kind.title, kind.description)
