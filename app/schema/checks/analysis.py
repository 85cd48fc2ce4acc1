"""Static analysis of a parsed check against its schema: fields exist, types fit, lists are
aggregated. Field types are read through the schema's :class:`~app.schema.tree.SchemaTree`
(properties, items, local ``$ref`` and allOf/anyOf/oneOf branches)."""

from __future__ import annotations

from typing import Any, Literal

from app.schema.checks.syntax import (
    MAX_ROUND_PLACES,
    BinOp,
    Call,
    CheckSyntaxError,
    Compare,
    Expr,
    Field,
    Neg,
    Num,
    render,
)
from app.schema.tree import SchemaTree


def child(tree: SchemaTree, node: Any, name: str) -> dict[str, Any] | None:
    """The (resolved) schema of property ``name`` of ``node`` in any of its branches."""
    for branch in tree.branches(node):
        props = branch.get("properties")
        if isinstance(props, dict) and name in props:
            return tree.object(props[name])
    return None


def items(tree: SchemaTree, node: Any) -> dict[str, Any] | None:
    """The (resolved) item schema of ``node`` in any of its branches."""
    for branch in tree.branches(node):
        declared = branch.get("items")
        if isinstance(declared, dict):
            return tree.object(declared)
    return None


def types(tree: SchemaTree, node: Any) -> set[str]:
    """The non-null types ``node`` may have across its branches."""
    found: set[str] = set()
    for branch in tree.branches(node):
        declared = branch.get("type")
        if isinstance(declared, str):
            found.add(declared)
        elif isinstance(declared, list):
            found.update(t for t in declared if isinstance(t, str))
        if "properties" in branch:
            found.add("object")
        if "items" in branch:
            found.add("array")
    found.discard("null")
    return found


def is_date(tree: SchemaTree, node: Any) -> bool:
    return any(branch.get("format") == "date" for branch in tree.branches(node))


_Kind = Literal["number", "date", "any"]


class Analyser:
    """Static checks of one parsed expression against the schema: fields exist, types fit, lists placed."""

    def __init__(self, tree: SchemaTree, item_schema: dict[str, Any] | None) -> None:
        self._tree = tree
        self._item_schema = item_schema
        self.paths: list[str] = []

    def check(self, compare: Compare) -> None:
        left, right = self.kind(compare.left), self.kind(compare.right)
        if {left, right} == {"number", "date"}:
            raise CheckSyntaxError(f"cannot compare a date with a number in '{render(compare)}'")

    def kind(self, node: Expr) -> _Kind:
        if isinstance(node, Num):
            return "number"
        if isinstance(node, Field):
            kind = self._field(node, for_count=False)  # unknown fields are reported first
            if node.projected:
                raise CheckSyntaxError(
                    f"'{node.text}' is a list: use it only as the argument of sum(), count(), min() or max()"
                )
            return kind
        if isinstance(node, Neg):
            self._number(self.kind(node.operand), node)
            return "number"
        if isinstance(node, BinOp):
            self._number(self.kind(node.left), node)
            self._number(self.kind(node.right), node)
            return "number"
        return self._call(node)

    def _call(self, node: Call) -> _Kind:
        func, args = node.func, node.args
        if func in {"sum", "count"}:
            if len(args) != 1 or not (isinstance(args[0], Field) and args[0].projected):
                raise CheckSyntaxError(f"{func}() takes exactly one list projection such as items[*].amount")
            kind = self._field(args[0], for_count=func == "count")
            if func == "sum":
                self._number(kind, node)
            return "number"
        if func in {"min", "max"}:
            if not args:
                raise CheckSyntaxError(f"{func}() needs at least one argument")
            kinds = {
                self._field(arg, for_count=False)
                if isinstance(arg, Field) and arg.projected
                else self.kind(arg)
                for arg in args
            }
            if {"number", "date"} <= kinds:
                raise CheckSyntaxError(f"{func}() cannot mix dates and numbers")
            return "date" if "date" in kinds else "number" if kinds == {"number"} else "any"
        if func == "abs":
            if len(args) != 1:
                raise CheckSyntaxError("abs() takes exactly one argument")
            self._number(self.kind(args[0]), node)
            return "number"
        # round: the place count is a small literal so results stay within the context's precision
        if len(args) != 2:
            raise CheckSyntaxError("round() takes exactly two arguments: round(x, places)")
        places = args[1]
        if not (
            isinstance(places, Num)
            and places.value == places.value.to_integral_value()
            and 0 <= places.value <= MAX_ROUND_PLACES
        ):
            raise CheckSyntaxError(f"round()'s second argument must be a whole number 0..{MAX_ROUND_PLACES}")
        self._number(self.kind(args[0]), node)
        return "number"

    @staticmethod
    def _number(kind: _Kind, node: Expr) -> None:
        if kind == "date":
            raise CheckSyntaxError(f"dates can only be compared, not used in '{render(node)}'")

    def _field(self, node: Field, *, for_count: bool) -> _Kind:
        if node.relative:
            if self._item_schema is None:
                raise CheckSyntaxError(f"'{node.text}': '@' paths can only be used in a check with for_each")
            current: dict[str, Any] | None = self._item_schema
        else:
            current = self._tree.object(self._tree.root)
        walked: list[str] = []
        for seg in node.segments:
            assert current is not None
            if seg == "*":
                current = items(self._tree, current)
                if current is None:
                    where = Field(tuple(walked), node.relative).text
                    raise CheckSyntaxError(
                        f"'{where}' is not an array, so '[*]' cannot follow it in '{node.text}'"
                    )
            else:
                current = child(self._tree, current, seg)
                if current is None:
                    raise CheckSyntaxError(f"unknown field '{node.text}' (no property '{seg}' in the schema)")
            walked.append(seg)
        if node.text not in self.paths:
            self.paths.append(node.text)
        if for_count:
            return "number"
        found = types(self._tree, current)
        if found and found <= {"object", "array", "boolean"}:
            noun = sorted(found)[0]
            raise CheckSyntaxError(
                f"field '{node.text}' is {'an' if noun[0] in 'aeiou' else 'a'} {noun}, not a value"
            )
        if is_date(self._tree, current):
            return "date"
        return "number" if found and found <= {"number", "integer"} else "any"
