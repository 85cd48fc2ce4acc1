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
from typing import Any

from app.schema.grammar import GRAMMAR_FORMATS, POST_DECODING_KEYWORDS
from app.schema.tree import SchemaTree

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


def decoding_schema(schema: dict[str, Any], tree: SchemaTree | None = None) -> dict[str, Any]:
    """The schema constrained decoding enforces (see the module's docstring); ``tree``: the
    schema's resolver when the caller has one."""
    translated: dict[str, Any] = _translate(schema, tree or SchemaTree(schema), 0)
    return translated


def _translate(schema: Any, root: SchemaTree, depth: int) -> Any:
    schema = root.resolve(schema)
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
