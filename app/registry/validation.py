"""Checks a submitted schema must pass before it is stored.

Order matters: cheap limits first (depth, size, property count) so that nothing expensive or
recursive runs on a hostile document, then the 2020-12 meta-schema, the object root, and
references (local only; the server never fetches a URL). Each failure names its JSON Pointers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from app.einvoice.model import ANNOTATION, TABLE_GROUPS, annotation_error
from app.lib.errors import SchemaError
from app.lib.jsonpointer import pointer
from app.lib.problems import (
    INVALID_SCHEMA,
    INVALID_SCHEMA_NAME,
    SCHEMA_NOT_SUPPORTED,
    SCHEMA_RECURSIVE,
    SCHEMA_REMOTE_REF,
    SCHEMA_TOO_COMPLEX,
    SCHEMA_TOO_LARGE,
    ErrorItem,
)
from app.lib.settings import Settings
from app.schema.checks import CheckError, parse_checks
from app.schema.patterns import PatternError, pattern_engines
from app.schema.tree import SchemaTree
from app.schema.walk import iter_subschemas, ref_cycle

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
MAX_REPORTED_ERRORS = 50

_META_VALIDATOR = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)


@dataclass(frozen=True)
class SchemaLimits:
    max_bytes: int = 256 * 1024
    max_depth: int = 32
    max_properties: int = 1000


def schema_limits(settings: Settings) -> SchemaLimits:
    r = settings.registry
    return SchemaLimits(max_bytes=r.max_bytes, max_depth=r.max_depth, max_properties=r.max_properties)


def validate_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise SchemaError(
            INVALID_SCHEMA_NAME,
            f"{name!r} is not a valid schema name.",
            errors=[{"pointer": "/name", "detail": INVALID_SCHEMA_NAME.description}],
        )


def validate_schema(schema: Any, limits: SchemaLimits, *, at: str = "/schema") -> None:
    """Raise a ``SchemaError`` for the first failing check; ``at`` prefixes every pointer."""
    _check_depth(schema, limits.max_depth, at)
    try:
        size = len(orjson.dumps(schema))
    except TypeError as exc:  # an integer past 64 bits: valid JSON, but no number we can store or compare
        raise SchemaError(
            INVALID_SCHEMA,
            "The schema holds an integer beyond the 64-bit range.",
            errors=[{"pointer": at, "detail": str(exc)}],
        ) from exc
    if size > limits.max_bytes:
        raise SchemaError(
            SCHEMA_TOO_LARGE,
            f"The schema is {size} bytes; the limit is {limits.max_bytes}.",
            errors=[{"pointer": at, "detail": f"{size} bytes > {limits.max_bytes}"}],
            limit_bytes=limits.max_bytes,
        )
    if not isinstance(schema, dict):
        raise SchemaError(
            INVALID_SCHEMA,
            "A schema must be a JSON object.",
            errors=[{"pointer": at, "detail": f"expected an object, got {type(schema).__name__}"}],
        )
    _check_property_count(schema, limits.max_properties, at)
    _check_meta_schema(schema, at)
    _check_object_root(schema, at)
    _check_references(schema, at)
    _check_recursion(schema, at)
    _check_patterns(schema, at)
    _check_extensions(schema, at)


def _check_depth(schema: Any, max_depth: int, at: str) -> None:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            raise SchemaError(
                SCHEMA_TOO_COMPLEX,
                f"The schema nests deeper than {max_depth} levels.",
                errors=[{"pointer": at + pointer(path), "detail": f"deeper than {max_depth} levels"}],
                limit_depth=max_depth,
            )
        if isinstance(value, dict):
            stack.extend((child, (*path, key)) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, (*path, index)) for index, child in enumerate(value))


def _check_property_count(schema: dict[str, Any], max_properties: int, at: str) -> None:
    count = 0
    for path, sub in iter_subschemas(schema):
        properties = sub.get("properties")
        if isinstance(properties, dict):
            count += len(properties)
            if count > max_properties:
                raise SchemaError(
                    SCHEMA_TOO_COMPLEX,
                    f"The schema declares more than {max_properties} properties.",
                    errors=[
                        {
                            "pointer": at + pointer((*path, "properties")),
                            "detail": f"the limit of {max_properties} properties is passed here",
                        }
                    ],
                    limit_properties=max_properties,
                )


def _check_meta_schema(schema: dict[str, Any], at: str) -> None:
    errors: list[ErrorItem] = []
    declared = schema.get("$schema")
    if declared is not None and str(declared).rstrip("#") != DRAFT_2020_12:
        errors.append(
            {
                "pointer": f"{at}/$schema",
                "detail": f"only JSON Schema 2020-12 is supported ({DRAFT_2020_12}); got {declared!r}",
            }
        )
    for error in sorted(_META_VALIDATOR.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path))):
        errors.append({"pointer": at + pointer(error.absolute_path), "detail": error.message})
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
    if errors:
        raise SchemaError(
            INVALID_SCHEMA,
            f"The schema is not a valid JSON Schema 2020-12 document ({len(errors)} errors).",
            errors=errors,
        )


def _check_object_root(schema: dict[str, Any], at: str) -> None:
    if schema.get("type") != "object":
        raise SchemaError(
            INVALID_SCHEMA,
            'The root of an extraction schema must be `"type": "object"`.',
            errors=[
                {
                    "pointer": f"{at}/type",
                    "detail": f"expected 'object', got {schema.get('type')!r}",
                }
            ],
        )


def _check_references(schema: dict[str, Any], at: str) -> None:
    remote: list[ErrorItem] = []
    broken: list[ErrorItem] = []
    tree = SchemaTree(schema)
    for path, sub in iter_subschemas(schema):
        if path and "$id" in sub:
            broken.append(
                {
                    "pointer": at + pointer((*path, "$id")),
                    "detail": "embedded $id is not supported; put shared parts in $defs",
                }
            )
        for keyword in ("$ref", "$dynamicRef"):
            ref = sub.get(keyword)
            if not isinstance(ref, str):
                continue
            where = at + pointer((*path, keyword))
            if not ref.startswith("#"):
                remote.append({"pointer": where, "detail": f"{ref!r} is not a local reference (#...)"})
            elif not isinstance(tree.target(ref), dict | bool):
                broken.append({"pointer": where, "detail": f"{ref!r} does not resolve in this schema"})
    if remote:
        raise SchemaError(SCHEMA_REMOTE_REF, "The schema refers to documents outside itself.", errors=remote)
    if broken:
        raise SchemaError(INVALID_SCHEMA, "The schema has references that do not resolve.", errors=broken)


def _check_recursion(schema: dict[str, Any], at: str) -> None:
    cycle = ref_cycle(schema)
    if cycle is not None:
        raise SchemaError(
            SCHEMA_RECURSIVE,
            "The schema is recursive: this reference leads back into itself.",
            errors=[{"pointer": at + pointer(cycle), "detail": "closes a reference cycle"}],
        )


def _check_patterns(schema: dict[str, Any], at: str) -> None:
    """Each pattern compiles for the engine that will run it (RE2, else time-bounded backtracking;
    see app/schema/patterns.py). ``unevaluatedProperties`` beside ``patternProperties`` is refused: that
    pair is evaluated by jsonschema's own backtracking matcher, which cannot be time-bounded."""
    try:
        pattern_engines(iter_subschemas(schema))  # compiles each (cached for extraction)
    except PatternError as exc:
        raise SchemaError(
            INVALID_SCHEMA,
            f"The schema has a pattern that does not compile: {exc.message}",
            errors=[{"pointer": at + exc.pointer, "detail": exc.message}],
        ) from exc
    subschemas = list(iter_subschemas(schema))
    if any("patternProperties" in sub for _, sub in subschemas):
        unbounded = [path for path, sub in subschemas if "unevaluatedProperties" in sub]
        if unbounded:
            raise SchemaError(
                SCHEMA_NOT_SUPPORTED,
                "`unevaluatedProperties` cannot be used in a schema with `patternProperties`: their "
                "patterns would run without a time limit. Use `additionalProperties` instead.",
                errors=[
                    {"pointer": at + pointer((*path, "unevaluatedProperties")), "detail": "not supported"}
                    for path in unbounded[:MAX_REPORTED_ERRORS]
                ],
            )


def _check_extensions(schema: dict[str, Any], at: str) -> None:
    """``x-checks`` must parse (safely: limits on size, depth, numbers; known functions and fields),
    ``x-review`` must name a threshold in 0..1, pointers and declared checks, and ``x-aliases``
    must be label synonyms (see ``_check_aliases``), ``x-en16931`` business terms where they can be."""
    _check_aliases(schema, at)
    _check_en16931(schema, at)
    try:
        checks = parse_checks(schema)
    except CheckError as exc:
        raise SchemaError(
            INVALID_SCHEMA,
            f"x-checks: {exc.message}",
            errors=[{"pointer": at + exc.pointer, "detail": exc.message}],
        ) from exc
    review = schema.get("x-review")
    if review is None:
        return
    errors: list[ErrorItem] = []
    if not isinstance(review, dict):
        errors.append({"pointer": f"{at}/x-review", "detail": "must be an object"})
    else:
        errors.extend(
            {"pointer": f"{at}/x-review/{key}", "detail": "unknown key"}
            for key in sorted(set(review) - {"min_confidence", "require", "checks"})
        )
        threshold = review.get("min_confidence", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            errors.append({"pointer": f"{at}/x-review/min_confidence", "detail": "a number from 0 to 1"})
        require = review.get("require", [])
        if not isinstance(require, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in require
        ):
            errors.append(
                {"pointer": f"{at}/x-review/require", "detail": "a list of JSON Pointers like /total"}
            )
        names = {c.name for c in checks}
        wanted = review.get("checks", [])
        if not isinstance(wanted, list) or not all(isinstance(n, str) and n in names for n in wanted):
            errors.append(
                {"pointer": f"{at}/x-review/checks", "detail": f"names of declared checks {sorted(names)}"}
            )
    if errors:
        raise SchemaError(INVALID_SCHEMA, "x-review is not valid.", errors=errors)


def _check_en16931(schema: dict[str, Any], at: str) -> None:
    """``x-en16931`` names an EN 16931 business term a property holds (``app.einvoice.mapping``);
    line and VAT breakdown terms only inside the items of a ``BG-25`` / ``BG-23`` array (an array
    without an annotation holds lines)."""
    errors: list[ErrorItem] = []
    groups: dict[tuple[Any, ...], str] = {}  # path of a table's items -> its group
    for path, sub in iter_subschemas(schema):
        value = sub.get(ANNOTATION)
        if isinstance(value, str) and value in TABLE_GROUPS:
            groups[(*path, "items")] = value
        elif "items" in sub and ANNOTATION not in sub:  # an array not annotated is read as the lines
            groups[(*path, "items")] = "BG-25"
        if ANNOTATION not in sub:
            continue
        group = next((g for p, g in groups.items() if path[: len(p)] == p and path != p), None)
        if (detail := annotation_error(value, in_group=group)) is not None:
            errors.append({"pointer": f"{at}{pointer([*path, ANNOTATION])}", "detail": detail})
    if errors:
        raise SchemaError(INVALID_SCHEMA, "x-en16931 is not valid.", errors=errors[:MAX_REPORTED_ERRORS])


MAX_ALIASES = 200
MAX_ALIAS_CHARS = 100


def _check_aliases(schema: dict[str, Any], at: str) -> None:
    """``x-aliases`` on a property: printed labels that name it, as a list of strings or as lists
    by language (``{"de": ["Rechnungsnummer"], ...}``); bounded, since each is searched on every page."""
    errors: list[ErrorItem] = []
    for path, sub in iter_subschemas(schema):
        if "x-aliases" not in sub:
            continue
        aliases = sub["x-aliases"]
        values = (
            aliases
            if isinstance(aliases, list)
            else [a for v in aliases.values() for a in (v if isinstance(v, list) else [v])]
            if isinstance(aliases, dict)
            else None
        )
        if (
            values is None
            or len(values) > MAX_ALIASES
            or not all(isinstance(a, str) and 0 < len(a) <= MAX_ALIAS_CHARS for a in values)
        ):
            errors.append(
                {
                    "pointer": f"{at}{pointer([*path, 'x-aliases'])}",
                    "detail": f"a list of at most {MAX_ALIASES} labels (strings of 1-{MAX_ALIAS_CHARS} "
                    "characters), or such lists by language",
                }
            )
    if errors:
        raise SchemaError(INVALID_SCHEMA, "x-aliases is not valid.", errors=errors[:MAX_REPORTED_ERRORS])
