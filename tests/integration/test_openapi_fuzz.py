"""The served OpenAPI spec is what the server does: schemathesis drives the whole API (on SQLite,
with an admin key) through its examples, boundary-value coverage, random fuzzing and stateful
phases, and every response must be documented (status, media type, schema, headers), never a 5xx.

Bounded and deterministic: a fixed number of generated examples per operation, derandomized, so a
failure reproduces in CI and locally. The run reports every finding at once, with a curl line each.
Nothing is excluded: the documentation pages (``/openapi*``) are not in the spec; extraction runs
the layout engine (no model), so ``POST /extract`` with random bodies must answer documented 4xx.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.keys import ApiKeys, Scope
from app.server.core import create_app
from tests.conftest import issue_key, make_settings

SPEC = "/openapi/openapi.json"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
MAX_EXAMPLES = 25
"""Generated cases per operation and generation mode in the fuzzing phase."""
MAX_STATEFUL_STEPS = 20


def fuzz_config(key: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"stateful": {"max-steps": MAX_STATEFUL_STEPS}},
        }
    )


def run(schema: Any) -> tuple[list[str], Counter[str], Counter[int]]:
    """Every distinct failure (operation, check, reproduction), the cases sent per phase and the
    statuses answered."""
    failures: dict[tuple[str, str], str] = {}
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            cases[str(getattr(event, "phase", "fuzz"))] += len(recorder.cases)
            statuses.update(i.response.status_code for i in recorder.interactions.values() if i.response)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        info = check.failure_info
                        operation = recorder.cases[case_id].value.operation.label
                        failures.setdefault(
                            (operation, f"{check.name}: {info.failure.title}"),
                            f"{info.failure.message}\n    {info.code_sample}",
                        )
        elif isinstance(event, events.NonFatalError):
            failures.setdefault((event.label, "error"), repr(event.value))
        elif isinstance(event, events.FatalError):
            failures.setdefault(("run", "fatal"), repr(event.exception))
    return [f"{op} -- {what}\n    {detail}" for (op, what), detail in failures.items()], cases, statuses


async def _admin_key(database_url: str) -> str:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        return await issue_key(async_sessionmaker(engine), Scope.ADMIN, name="fuzz")
    finally:
        await engine.dispose()


async def _still_valid(database_url: str, key: str) -> bool:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine)() as session:
            return await ApiKeys(session).authenticate(key) is not None
    finally:
        await engine.dispose()


@pytest.mark.slow
def test_every_response_is_documented_in_the_served_spec(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}")
    app = create_app(settings)
    try:
        # Loading the spec starts the app (its lifespan migrates the database); then a key exists.
        schemathesis.openapi.from_asgi(SPEC, app)
        key = asyncio.run(_admin_key(settings.database_url))
        schema = schemathesis.openapi.from_asgi(SPEC, app, config=fuzz_config(key))
        key_id = key.split("_")[1]

        @schema.hook
        def filter_case(context: Any, case: Any) -> bool:
            """Revoking its own key would turn the rest of the run into 401s."""
            return not (case.method == "DELETE" and (case.path_parameters or {}).get("key_id") == key_id)

        operations = sum(1 for _ in schema.get_all_operations())
        started = time.monotonic()
        failures, cases, statuses = run(schema)
        elapsed = time.monotonic() - started
        print(f"schemathesis: {operations} operations, {dict(cases)} cases, {elapsed:.1f} s")
        print(f"schemathesis: statuses {dict(sorted(statuses.items()))}")

        assert not failures, f"{len(failures)} findings:\n\n" + "\n\n".join(failures)
        assert operations >= 30 and cases["fuzzing"] >= operations * MAX_EXAMPLES // 2, cases
        assert asyncio.run(_still_valid(settings.database_url, key))  # else the run proved little
    finally:
        shutdown_lifespans()
