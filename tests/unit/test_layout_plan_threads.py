"""Planning schemas from several threads at once (the layout engine reads pages in worker threads)
gives each schema the plan it gets alone: the matcher's batch collection is not shared between
plans running together."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.engines.layout.embedding import MiniLM
from app.engines.layout.fields import ConceptMatcher, SchemaPlan, plan

WORDS = ["invoice number", "issue date", "total amount", "vendor name", "tax amount", "due date"]


def schema(index: int) -> dict[str, Any]:
    """Distinct schemas (their property texts differ, so each plan has texts of its own to encode)."""
    names = WORDS[index % len(WORDS) :] + WORDS[: index % len(WORDS)]
    return {
        "type": "object",
        "properties": {
            name.replace(" ", "_"): {"type": "string", "description": f"The {name} (variant {index})."}
            for name in names
        },
    }


def concepts(result: SchemaPlan) -> list[tuple[str, str | None]]:
    return [("/".join(f.path), f.concept.key if f.concept else None) for f in result.fields]


def test_plans_made_together_equal_plans_made_alone() -> None:
    schemas = [schema(i) for i in range(8)]
    alone = [concepts(plan(s, ConceptMatcher(MiniLM.bundled()))) for s in schemas]
    assert all(any(key is not None for _, key in found) for found in alone)  # the plans name concepts

    shared = ConceptMatcher(MiniLM.bundled())
    start = threading.Barrier(len(schemas))

    def planned(s: dict[str, Any]) -> list[tuple[str, str | None]]:
        start.wait()
        return concepts(plan(s, shared))

    with ThreadPoolExecutor(len(schemas)) as pool:
        together = list(pool.map(planned, schemas))
    assert together == alone
