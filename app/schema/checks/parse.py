"""``parse_checks``: a schema's ``x-checks`` validated and compiled, with hard limits (count,
length, nesting depth, literal size, known functions, fields that exist in the schema) so that
evaluation can assume a small, well-formed tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.lib.jsonpointer import escape
from app.schema.checks.analysis import Analyser, child, items, types
from app.schema.checks.parser import Parser
from app.schema.checks.syntax import CheckSyntaxError, Compare
from app.schema.tree import SchemaTree

MAX_CHECKS = 50
MAX_EXPR_CHARS = 500
DEFAULT_TOLERANCE = Decimal("0.01")
_CHECK_KEYS = ("name", "expr", "for_each", "tolerance", "relative_tolerance", "description")
_NAME_RE = re.compile(r"[a-z0-9_]{1,64}")
_FOR_EACH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class CheckError(ValueError):
    """A declared check is invalid; ``pointer`` is a JSON Pointer into the schema naming the culprit."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message


@dataclass(frozen=True)
class Check:
    """One validated check, ready to evaluate against any number of extractions."""

    name: str
    expr: Compare
    for_each: str | None
    tolerance: Decimal
    relative_tolerance: Decimal | None
    paths: list[str]
    source: str = ""


def parse_checks(schema: dict[str, Any], tree: SchemaTree | None = None) -> list[Check]:
    """Validate and compile a schema's ``x-checks``; any problem raises CheckError with a precise pointer."""
    if not isinstance(schema, dict):
        raise CheckError("", "the schema must be a JSON object")
    declared = schema.get("x-checks")
    if declared is None:
        return []
    if not isinstance(declared, list):
        raise CheckError("/x-checks", "x-checks must be an array of check objects")
    if len(declared) > MAX_CHECKS:
        raise CheckError("/x-checks", f"{len(declared)} checks declared; at most {MAX_CHECKS} are allowed")
    walker = tree if tree is not None else SchemaTree(schema)
    checks: list[Check] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(declared):
        base = f"/x-checks/{index}"
        check = _parse_one(entry, base, walker)
        if check.name in seen:
            raise CheckError(
                f"{base}/name", f"duplicate check name '{check.name}' (also /x-checks/{seen[check.name]})"
            )
        seen[check.name] = index
        checks.append(check)
    return checks


def _parse_one(entry: Any, base: str, walker: SchemaTree) -> Check:
    if not isinstance(entry, dict):
        raise CheckError(base, "a check must be an object with at least 'name' and 'expr'")
    for key in entry:
        if key not in _CHECK_KEYS:
            raise CheckError(
                f"{base}/{escape(str(key))}", f"unknown key '{key}'; allowed keys: {', '.join(_CHECK_KEYS)}"
            )
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise CheckError(f"{base}/name", "'name' must match ^[a-z0-9_]{1,64}$")
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        raise CheckError(f"{base}/description", "'description' must be a string")
    tolerance = _tolerance(entry.get("tolerance"), f"{base}/tolerance")
    relative = _tolerance(entry.get("relative_tolerance"), f"{base}/relative_tolerance")
    for_each = entry.get("for_each")
    item_schema = None if for_each is None else _for_each_items(for_each, f"{base}/for_each", walker)
    text = entry.get("expr")
    if not isinstance(text, str) or not text.strip():
        raise CheckError(f"{base}/expr", "'expr' must be a non-empty string")
    if len(text) > MAX_EXPR_CHARS:
        raise CheckError(
            f"{base}/expr", f"expression is {len(text)} characters long; at most {MAX_EXPR_CHARS} are allowed"
        )
    analyser = Analyser(walker, item_schema)
    try:
        tree = Parser(text).parse()
        analyser.check(tree)
    except CheckSyntaxError as exc:
        raise CheckError(f"{base}/expr", str(exc)) from None
    return Check(
        name=name,
        expr=tree,
        for_each=for_each,
        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
        relative_tolerance=relative,
        paths=analyser.paths,
        source=text,
    )


def _tolerance(value: Any, pointer: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise CheckError(pointer, "must be a non-negative number")
    number = Decimal(str(value))
    if not number.is_finite() or number < 0:
        raise CheckError(pointer, "must be a non-negative number")
    return number


def _for_each_items(for_each: Any, pointer: str, walker: SchemaTree) -> dict[str, Any]:
    if not isinstance(for_each, str) or not _FOR_EACH_RE.fullmatch(for_each):
        raise CheckError(pointer, "'for_each' must be a field path such as 'line_items'")
    node: dict[str, Any] | None = walker.object(walker.root)
    for seg in for_each.split("."):
        node = child(walker, node, seg)
        if node is None:
            raise CheckError(pointer, f"unknown field '{for_each}'")
    item_schema = items(walker, node)
    if item_schema is None or "object" not in types(walker, item_schema):
        raise CheckError(pointer, f"'{for_each}' must be an array of objects")
    return item_schema
