"""A schema version compiled once: everything extraction, the trust layer and the engines derive
from a registered schema, built on first use and cached by the schema's canonical SHA-256, so no
request re-derives (or re-parses) any of it.

It holds the reference resolver and validator, the parsed checks, the review policy, the prompt
skeleton, the decoding schema, and the leaves with their kinds and label aliases.

Recursive schemas (a ``$ref`` cycle; the registry refuses them, older versions may hold one) have
no skeleton or decoding schema: those expand every reference. Check :attr:`CompiledSchema.ref_cycle`
before asking for them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from app.lib.canonical import NotCanonicalizable, canonical_sha256
from app.schema.checks import Check, CheckError, parse_checks
from app.schema.decoding import decoding_schema
from app.schema.kinds import Kind, Leaf, kind_for, leaves
from app.schema.review import ReviewPolicy
from app.schema.skeleton import skeleton
from app.schema.tree import SchemaTree
from app.schema.walk import Path, ref_cycle

CACHE_SIZE = 128


class RecursiveSchemaError(ValueError):
    """The schema's references form a cycle, so it cannot be expanded (``cycle``: where)."""

    def __init__(self, cycle: Path) -> None:
        super().__init__(f"the schema is recursive at /{'/'.join(cycle)}")
        self.cycle = cycle


@dataclass(frozen=True, eq=False)
class CompiledSchema:
    schema: dict[str, Any]
    sha256: str | None
    """Canonical SHA-256 of ``schema`` (None when it has no canonical form: not cached)."""
    tree: SchemaTree = field(repr=False)
    ref_cycle: Path | None
    """Where the references loop (a recursive schema), or None."""
    checks: list[Check]
    """The parsed ``x-checks`` (empty when they are invalid: see ``check_error``)."""
    check_error: CheckError | None

    @property
    def validator(self) -> Any:
        """Draft 2020-12 with bounded-time patterns and format checks."""
        return self.tree.validator

    @cached_property
    def review(self) -> ReviewPolicy:
        """The schema's own ``x-review`` (a request may override it)."""
        return ReviewPolicy.of(self.schema, tree=self.tree)

    @cached_property
    def skeleton(self) -> Any:
        """The prompt skeleton: every key, empty values, in schema order."""
        self._expandable()
        return skeleton(self.schema, self.tree)

    @cached_property
    def decoding_schema(self) -> dict[str, Any]:
        """What constrained decoding enforces (see :mod:`app.schema.decoding`)."""
        self._expandable()
        return decoding_schema(self.schema, self.tree)

    @cached_property
    def leaves(self) -> dict[tuple[str, ...], Leaf]:
        """Every scalar place of the schema (path with ``*`` for array items) with its kind and
        label aliases, decided once per schema version."""
        return {} if self.ref_cycle is not None else leaves(self.tree)

    def kind_of(self, path: tuple[str, ...], name: str, node: dict[str, Any]) -> Kind:
        """The kind of the value at ``path``; for a place the schema does not describe as a scalar
        (data that breaks it), read from the subschema the data reached."""
        leaf = self.leaves.get(path)
        return leaf.kind if leaf is not None else kind_for(name, node)

    def subschema_at(self, pointer: str) -> dict[str, Any] | None:
        """The (resolved) subschema that describes the data at ``pointer`` (a JSON Pointer into
        data: numbers step into array items), or None when the schema declares nothing there."""
        node: Any = self.schema
        for token in pointer.split("/")[1:]:
            node = self.tree.object(node)
            part = token.replace("~1", "/").replace("~0", "~")
            properties = self.tree.properties(node)
            if part in properties:
                node = properties[part]
            elif part.isdigit() and "items" in node:
                node = self.tree.items(node)
            else:
                return None
        resolved = self.tree.object(node)
        return resolved if isinstance(resolved, dict) else None

    def parsed_checks(self) -> list[Check]:
        """The declared checks; raises the :class:`CheckError` when they are invalid."""
        if self.check_error is not None:
            raise self.check_error
        return self.checks

    def admits_null(self, node: Any) -> bool:
        return self.tree.admits_null(node)

    def _expandable(self) -> None:
        if self.ref_cycle is not None:
            raise RecursiveSchemaError(self.ref_cycle)


_cache: OrderedDict[str, CompiledSchema] = OrderedDict()
_lock = threading.Lock()


def compile_schema(schema: dict[str, Any], sha256: str | None = None) -> CompiledSchema:
    """The compiled form of ``schema`` (``sha256``: its canonical hash, when known), from the
    cache when this content was compiled before."""
    key = sha256
    if key is None:
        try:
            key = canonical_sha256(schema)
        except NotCanonicalizable:
            return _compile(schema, None)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    compiled = _compile(schema, key)
    with _lock:
        _cache[key] = compiled
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def _compile(schema: dict[str, Any], sha256: str | None) -> CompiledSchema:
    tree = SchemaTree(schema)
    try:
        checks, check_error = parse_checks(schema, tree), None
    except CheckError as exc:
        checks, check_error = [], exc
    return CompiledSchema(
        schema=schema,
        sha256=sha256,
        tree=tree,
        ref_cycle=ref_cycle(schema),
        checks=checks,
        check_error=check_error,
    )
