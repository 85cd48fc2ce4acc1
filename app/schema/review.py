"""``x-review``: when a person should look at an extraction, as the schema declares it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.lib.jsonpointer import escape
from app.schema.tree import SchemaTree

DEFAULT_MIN_CONFIDENCE = 0.7


@dataclass(frozen=True)
class ReviewPolicy:
    """``x-review`` in the schema, overridable per request: the confidence below which a field
    needs review, the fields that must be present and grounded, the checks that must pass."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    require: tuple[str, ...] = ()
    checks: tuple[str, ...] | None = None
    """None: every declared check must pass."""

    @classmethod
    def of(
        cls,
        schema: dict[str, Any],
        min_confidence: float | None = None,
        require: list[str] | None = None,
        checks: list[str] | None = None,
        *,
        tree: SchemaTree | None = None,
    ) -> ReviewPolicy:
        """The schema's ``x-review``, with what a request overrides (``tree``: the schema's
        resolver when the caller has one)."""
        review = schema.get("x-review")
        declared: dict[str, Any] = review if isinstance(review, dict) else {}
        threshold = min_confidence if min_confidence is not None else declared.get("min_confidence")
        if require is not None:
            required: list[str] = require
        elif "require" in declared:
            required = declared["require"]
        else:
            required = _required_not_nullable(tree or SchemaTree(schema))
        must_pass = checks if checks is not None else declared.get("checks")
        return cls(
            min_confidence=float(threshold) if threshold is not None else DEFAULT_MIN_CONFIDENCE,
            require=tuple(required),
            checks=tuple(must_pass) if must_pass is not None else None,
        )


def _required_not_nullable(tree: SchemaTree) -> list[str]:
    """By default a field must be present when the schema requires it and does not admit null."""
    properties = tree.root.get("properties", {})
    return [
        f"/{escape(name)}"
        for name in tree.root.get("required", [])
        if not tree.admits_null(properties.get(name, {}))
    ]
