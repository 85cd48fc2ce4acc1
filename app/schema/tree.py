"""One schema document and the one way to navigate it: local ``$ref``s resolved by the
``referencing`` library (what jsonschema itself uses), properties, items and branches read through
them, and whether a subschema admits null.

Walkers over data and schema together (the prompt skeleton, the decoding schema, dropping absent
values, the trust layer's leaves, the layout engine's fields, the checks' field types) all go
through :class:`SchemaTree`, so a reference means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from app.schema.patterns import SchemaValidator

MAX_REF_HOPS = 32
"""References followed in a row before giving up (a chain this long is a mistake, not a schema)."""
_BASE_URI = "urn:docextract:schema"
_BRANCH_KEYWORDS = ("allOf", "anyOf", "oneOf")


class SchemaTree:
    """A registered schema (the root) with its reference resolver."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        resource = DRAFT202012.create_resource(root)
        self._resolver = Registry().with_resource(_BASE_URI, resource).resolver(base_uri=_BASE_URI)

    def resolve(self, node: Any) -> Any:
        """``node`` with its ``$ref`` followed; keywords beside the ``$ref`` override the target's.
        None when a reference leads nowhere (the registry refuses those; a schema given directly
        may still hold one)."""
        for _ in range(MAX_REF_HOPS):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return node
            target = self.target(node["$ref"])
            if target is None:
                return None
            rest = {key: value for key, value in node.items() if key != "$ref"}
            node = {**target, **rest} if isinstance(target, dict) else target
        return None

    def target(self, ref: str) -> Any:
        """What the reference ``ref`` points at in this document; None when nothing."""
        try:
            return self._resolver.lookup(ref).contents
        except Unresolvable:
            return None

    def object(self, node: Any) -> dict[str, Any]:
        """The resolved schema object; ``{}`` (anything) when ``node`` is not one."""
        resolved = self.resolve(node)
        return resolved if isinstance(resolved, dict) else {}

    def properties(self, node: Any) -> dict[str, Any]:
        """The declared properties (unresolved), in schema order."""
        declared = self.object(node).get("properties")
        return declared if isinstance(declared, dict) else {}

    def items(self, node: Any) -> Any:
        """The (unresolved) item schema, ``{}`` when none is declared."""
        return self.object(node).get("items", {})

    def branches(self, node: Any) -> Iterator[dict[str, Any]]:
        """The resolved node, then each of its ``allOf``/``anyOf``/``oneOf`` branches, resolved."""
        resolved = self.object(node)
        yield resolved
        for keyword in _BRANCH_KEYWORDS:
            branches = resolved.get(keyword)
            if isinstance(branches, list):
                for branch in branches:
                    yield self.object(branch)

    @cached_property
    def validator(self) -> Any:
        """The registered schema's validator (bounded-time patterns, formats checked)."""
        return SchemaValidator(self.root, format_checker=SchemaValidator.FORMAT_CHECKER)

    def admits_null(self, node: Any) -> bool:
        """Whether null is valid against ``node`` (references resolved against the root)."""
        resolved = self.resolve(node)
        schema = {} if resolved is None else resolved
        return bool(self.validator.evolve(schema=schema).is_valid(None))


def declared_types(schema: dict[str, Any]) -> frozenset[str]:
    """The ``type`` keyword as a set (empty when absent)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(t for t in declared if isinstance(t, str))
    return frozenset()
