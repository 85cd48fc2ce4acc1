"""Liveness, readiness and the documentation of every problem type."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy import text

from app import __version__
from app.api.common import problem_responses
from app.db.migrate import DatabaseNewerThanCode, migration_state
from app.engines.unavailable import UnavailableEngine
from app.jobs.services import DELIVERER, Services
from app.lib.problems import CATALOGUE, NOT_FOUND, NOT_READY, Problem


class Health(msgspec.Struct):
    status: str
    version: str


class Readiness(msgspec.Struct):
    status: Literal["ready"]
    checks: Annotated[
        dict[str, str],
        msgspec.Meta(description="`database`, `migrations`, `engine`, `runner`, `webhook_delivery`."),
    ]


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
        summary="Readiness: database reachable, migrations current, engine reachable, jobs and "
        "webhooks running",
        responses=problem_responses(NOT_READY),
    )
    async def ready(self, services: NamedDependency[Services]) -> Readiness:
        """Each check is `ok` (or `current`, `not configured`, `in the workers`) or says what is
        wrong; any wrong one answers 503 with the checks."""
        checks: dict[str, str] = {}
        failing: set[str] = set()
        database = services.database
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
        if checks.get("database") != "ok":
            failing.add("database")
        if checks.get("migrations") != "current":
            failing.add("migrations")
        engine = services.extractor.engine
        if isinstance(engine, UnavailableEngine):
            checks["engine"] = "not configured (extraction answers 503)"
        else:
            try:
                await engine.ready()
                checks["engine"] = "ok"
            except Exception as exc:  # an unreachable engine makes the service not ready
                checks["engine"] = f"unavailable: {exc}"
                failing.add("engine")
        try:
            await services.runner.check()
            checks["runner"] = "ok"
        except Exception as exc:  # jobs would wait forever
            checks["runner"] = f"unavailable: {exc}"
            failing.add("runner")
        delivery = services.background_state(DELIVERER)
        checks["webhook_delivery"] = "in the workers" if delivery is None else delivery
        if delivery not in (None, "ok"):
            failing.add("webhook_delivery")
        if failing:
            raise Problem(NOT_READY, "The service is not ready.", checks=checks)
        return Readiness("ready", checks)

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
