"""The decoding schema: what the grammar enforces while GLM-OCR generates.

Translated from the registered schema so that constrained decoding helps and never invents:
- keys in schema order, all emitted (``required`` = every property, no additional properties), so
  the output mirrors the prompt's skeleton;
- every leaf may be null: a value absent from the page comes back as null instead of being made up
  to satisfy ``required``, a bound, or a pattern; missing values surface later as findings;
- keywords the grammar backends do not enforce (``POST_DECODING_KEYWORDS``), numeric bounds,
  ``minItems`` and length limits are dropped here and checked by jsonschema after decoding;
- local ``$ref``s are inlined, annotations other than ``title``/``description`` removed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from app.extraction.grammar import GRAMMAR_FORMATS, POST_DECODING_KEYWORDS, iter_subschemas
from app.lib.jsonpointer import unescape

# Checked after decoding: forcing them during decoding would make the model invent a value.
_DROPPED = set(POST_DECODING_KEYWORDS) | {
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "required",
    "additionalProperties",
    "$defs",
    "definitions",
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
}
_LEAF_TYPES = {"string", "number", "integer", "boolean", "null"}
MAX_INLINE_DEPTH = 8


def resolve_local_refs(schema: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """Follow ``$ref: "#/..."`` (the registry only admits local references)."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < MAX_INLINE_DEPTH:
        target: Any = root
        for token in schema["$ref"].lstrip("#").split("/")[1:]:
            target = target[unescape(token)]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, dict) else target
        depth += 1
    return schema


Path = tuple[str, ...]


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


def grammar_error(schema: dict[str, Any]) -> str | None:
    """Why the grammar backend (llguidance, when installed) cannot compile this schema's decoding
    schema, or None. Lets the registry refuse at registration what extraction would refuse later."""
    try:
        import llguidance  # noqa: PLC0415 - optional: the `local` extra
    except ImportError:
        return None
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(decoding_schema(schema))
        message = llguidance.LLMatcher.validate_grammar(grammar)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return message or None


def decoding_schema(schema: dict[str, Any]) -> dict[str, Any]:
    translated: dict[str, Any] = _translate(schema, schema, 0)
    return translated


def _translate(schema: Any, root: dict[str, Any], depth: int) -> Any:
    schema = resolve_local_refs(schema, root)
    if not isinstance(schema, dict):
        return {} if schema is True else {"type": "null"}
    if depth > MAX_INLINE_DEPTH:  # a recursive schema: stop where the model would never go
        return {"type": "null"}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if (
            key in _DROPPED
            or key.startswith("x-")
            or key in ("properties", "items", "anyOf", "oneOf", "$ref")
        ):
            continue
        out[key] = copy.deepcopy(value)
    if out.get("format") not in GRAMMAR_FORMATS:
        out.pop("format", None)
    if "oneOf" in schema or "anyOf" in schema:
        branches = schema.get("anyOf", []) + schema.get("oneOf", [])
        out["anyOf"] = [_translate(b, root, depth + 1) for b in branches]
    if "properties" in schema:
        properties = {name: _translate(sub, root, depth + 1) for name, sub in schema["properties"].items()}
        out["properties"] = properties
        out["required"] = list(properties)
        out["additionalProperties"] = False
    if "items" in schema:
        out["items"] = _translate(schema["items"], root, depth + 1)
    return _nullable(out)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Let a leaf be null. Objects and arrays stay as they are: their leaves (or an empty list) say
    that nothing was found."""
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    if "anyOf" in schema:
        if not any(b.get("type") == "null" for b in schema["anyOf"] if isinstance(b, dict)):
            schema["anyOf"].append({"type": "null"})
        return schema
    if kinds & {"object", "array"} or "properties" in schema or "items" in schema:
        return schema
    if "enum" in schema:
        if None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        if kinds:
            schema["type"] = sorted(kinds | {"null"})
        return schema
    if "const" in schema:
        const = schema.pop("const")
        return (
            {**schema, "anyOf": [{"const": const}, {"type": "null"}]}
            if const is not None
            else {"type": "null"}
        )
    if not kinds:  # unconstrained: any leaf value (the skeleton asks for a string)
        return {**schema, "type": ["string", "number", "boolean", "null"]}
    if kinds <= _LEAF_TYPES:
        schema["type"] = [*[t for t in (kind if isinstance(kind, list) else [kind]) if t != "null"], "null"]
    return schema
