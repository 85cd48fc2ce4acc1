"""The one walk over a schema document: every schema object with its path, and the ``$ref`` cycle
check that must pass before anything expands references (the prompt skeleton, the decoding schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from app.lib.jsonpointer import unescape

Path = tuple[str, ...]
SchemaPath = tuple[str | int, ...]

# Keywords whose values are schemas, maps of schemas or lists of schemas.
_SUBSCHEMA = (
    "items",
    "contains",
    "additionalProperties",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def iter_subschemas(schema: Any, path: SchemaPath = ()) -> Iterator[tuple[SchemaPath, dict[str, Any]]]:
    """Every schema object in the document with its path, the root first."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in _SUBSCHEMA:
        if key in schema:
            yield from iter_subschemas(schema[key], (*path, key))
    for key in _SUBSCHEMA_MAPS:
        children = schema.get(key)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from iter_subschemas(child, (*path, key, name))
    for key in _SUBSCHEMA_LISTS:
        children = schema.get(key)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield from iter_subschemas(child, (*path, key, index))


def ref_cycle(schema: dict[str, Any]) -> Path | None:
    """The path of a ``$ref`` (or ``$dynamicRef``) that leads back to where it is: the schema is
    recursive, so inlining it (the prompt skeleton, the decoding schema) would never end; None
    when every reference chain ends. A depth-first walk over reference targets with an explicit
    stack, so a long chain cannot overflow Python's own."""
    anchors = {
        sub[key]: tuple(map(str, path))
        for path, sub in iter_subschemas(schema)
        for key in ("$anchor", "$dynamicAnchor")
        if isinstance(sub.get(key), str)
    }

    def target(ref: str) -> Path | None:
        fragment = unquote(ref[1:]) if ref.startswith("#") else None
        if fragment is None or fragment == "":
            return None if fragment is None else ()
        if not fragment.startswith("/"):
            return anchors.get(fragment)
        return tuple(unescape(token) for token in fragment.split("/")[1:])

    def references(at: Path) -> Iterator[tuple[Path, Path]]:
        node: Any = schema
        for token in at:
            node = node.get(token) if isinstance(node, dict) else _item(node, token)
        for path, sub in iter_subschemas(node, at):
            for keyword in ("$ref", "$dynamicRef"):
                ref = sub.get(keyword)
                goal = target(ref) if isinstance(ref, str) else None
                if goal is not None:
                    yield (*map(str, path), keyword), goal

    stack: list[tuple[Path, Iterator[tuple[Path, Path]]]] = [((), references(()))]
    open_targets: set[Path] = {()}
    finished: set[Path] = set()
    while stack:
        at, pending = stack[-1]
        step = next(pending, None)
        if step is None:
            stack.pop()
            open_targets.discard(at)
            finished.add(at)
            continue
        site, goal = step
        if goal in open_targets:
            return site
        if goal not in finished:
            open_targets.add(goal)
            stack.append((goal, references(goal)))
    return None


def _item(node: Any, token: str) -> Any:
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return None
