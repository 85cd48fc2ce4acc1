"""Evaluation of parsed checks (:mod:`app.schema.checks`) against one extraction's data.

Arithmetic is ``Decimal`` in one fixed context, so money adds up exactly; see
:mod:`app.schema.checks` for the semantics (missing inputs skip, tolerances, dates).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any, Literal, TypeAlias

from app.lib.jsonpointer import escape
from app.schema.checks import BinOp, Call, Check, Compare, Expr, Field, Neg, Num, render

# One explicit context for every operation, so results never depend on the thread's current context.
# 60 digits hold the product of two 30-digit literals exactly; traps turn nonsense into a skipped check.
DECIMAL_CONTEXT = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

_DATA_NUMBER_RE = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_DATA_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Status = Literal["passed", "failed", "skipped"]
Value: TypeAlias = Decimal | dt.date


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check (or one item of a ``for_each`` check) on one extraction."""

    rule: str
    status: Status
    expected: Decimal | str | None
    actual: Decimal | str | None
    pointers: list[str]
    detail: str


class _Skip(Exception):
    """The check cannot be decided on this data (missing input, division by zero, a non-number...)."""


@dataclass
class _Inputs:
    """Every field of one check resolved against the data, in reading order."""

    values: dict[Field, list[tuple[str, Any]]]
    pointers: list[str]
    missing: list[str]


def evaluate(checks: list[Check], data: Any) -> list[CheckResult]:
    """Evaluate compiled checks on one extraction's data; ``for_each`` checks give one result per item."""
    results: list[CheckResult] = []
    for check in checks:
        if check.for_each is None:
            results.append(_evaluate_one(check, check.name, data, None, ""))
        else:
            results.extend(_evaluate_each(check, check.for_each, data))
    return results


def _evaluate_each(check: Check, for_each: str, data: Any) -> list[CheckResult]:
    array: Any = data
    pointer = ""
    for seg in for_each.split("."):
        pointer += f"/{escape(seg)}"
        array = array.get(seg) if isinstance(array, dict) else None
        if array is None:
            return [_skipped(check.name, [pointer], f"missing input: {pointer}")]
    if not isinstance(array, list):
        return [_skipped(check.name, [pointer], f"{pointer} is not an array")]
    results = []
    for index, item in enumerate(array):
        rule, item_pointer = f"{check.name}[{index}]", f"{pointer}/{index}"
        if not isinstance(item, dict):
            results.append(_skipped(rule, [item_pointer], f"missing input: {item_pointer}"))
        else:
            results.append(_evaluate_one(check, rule, data, item, item_pointer))
    return results


def _skipped(rule: str, pointers: list[str], detail: str) -> CheckResult:
    return CheckResult(rule, "skipped", None, None, pointers, detail)


def _evaluate_one(check: Check, rule: str, data: Any, item: Any, item_pointer: str) -> CheckResult:
    inputs = _Inputs({}, [], [])
    for node, in_count in _fields(check.expr):
        if node not in inputs.values:
            start, start_pointer = (item, item_pointer) if node.relative else (data, "")
            inputs.values[node] = _resolve(node, start, start_pointer, in_count, inputs)
    if inputs.missing:
        return _skipped(rule, inputs.pointers, f"missing input: {', '.join(inputs.missing)}")
    try:
        return _decide(check, rule, inputs)
    except _Skip as exc:
        return _skipped(rule, inputs.pointers, str(exc))
    except DecimalException as exc:
        return _skipped(rule, inputs.pointers, f"arithmetic error ({type(exc).__name__})")


def _decide(check: Check, rule: str, inputs: _Inputs) -> CheckResult:
    """Evaluate both sides and compare; raises _Skip (or a Decimal trap) when undecidable."""
    compare = check.expr
    left = _Evaluator(inputs.values).value(compare.left)
    right = _Evaluator(inputs.values).value(compare.right)
    if isinstance(left, dt.date) and isinstance(right, dt.date):
        holds = _compare_dates(compare.op, left, right)
        detail = (
            f"{left.isoformat()} {compare.op} {right.isoformat()} {'holds' if holds else 'does not hold'}"
        )
        status: Status = "passed" if holds else "failed"
        return CheckResult(rule, status, right.isoformat(), left.isoformat(), inputs.pointers, detail)
    if isinstance(left, dt.date) or isinstance(right, dt.date):
        raise _Skip("cannot compare a date with a number")
    holds, difference, tolerance = _compare_numbers(check, compare.op, left, right)
    detail = (
        f"{render(compare.left)} = {left}, {render(compare.right)} = {right}: {left} {compare.op} {right} "
        f"{'holds' if holds else 'does not hold'} (difference {difference}, tolerance {tolerance})"
    )
    return CheckResult(rule, "passed" if holds else "failed", right, left, inputs.pointers, detail)


def _compare_dates(op: str, left: dt.date, right: dt.date) -> bool:
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _compare_numbers(check: Check, op: str, left: Decimal, right: Decimal) -> tuple[bool, Decimal, Decimal]:
    """Tolerant comparison: the bound moves by the larger of the absolute and relative tolerance."""
    ctx = DECIMAL_CONTEXT
    difference = ctx.subtract(left, right)
    tolerance = check.tolerance
    if check.relative_tolerance is not None:
        scale = max(ctx.abs(left), ctx.abs(right))
        tolerance = max(tolerance, ctx.multiply(check.relative_tolerance, scale))
    holds = {
        "==": ctx.abs(difference) <= tolerance,
        "!=": left != right,
        "<": difference < tolerance,
        "<=": difference <= tolerance,
        ">": difference > -tolerance,
        ">=": difference >= -tolerance,
    }[op]
    return holds, difference, tolerance


def _fields(root: Compare) -> list[tuple[Field, bool]]:
    """Fields in reading order, each flagged when it is count()'s argument (nulls are then not missing)."""
    found: list[tuple[Field, bool]] = []
    stack: list[tuple[Expr, bool]] = [(root.right, False), (root.left, False)]
    while stack:
        node, in_count = stack.pop()
        if isinstance(node, Field):
            found.append((node, in_count))
        elif isinstance(node, Neg):
            stack.append((node.operand, False))
        elif isinstance(node, BinOp):
            stack.extend([(node.right, False), (node.left, False)])
        elif isinstance(node, Call):
            stack.extend((arg, node.func == "count") for arg in reversed(node.args))
    return found


def _resolve(
    node: Field, start: Any, start_pointer: str, in_count: bool, inputs: _Inputs
) -> list[tuple[str, Any]]:
    """All values a path names, with their pointers; records missing ones (and empty arrays' pointers)."""
    frontier: list[tuple[Any, str, bool]] = [(start, start_pointer, False)]
    for seg in node.segments:
        following: list[tuple[Any, str, bool]] = []
        for value, pointer, starred in frontier:
            if seg == "*":
                if not isinstance(value, list):
                    _missing(inputs, pointer)  # not an array: nothing to project over
                    continue
                if not value:
                    inputs.pointers.append(pointer)  # an empty array was read: attach the check to it
                for index, element in enumerate(value):
                    following.append((element, f"{pointer}/{index}", True))
                continue
            child = f"{pointer}/{escape(seg)}"
            if isinstance(value, dict) and value.get(seg) is not None:
                following.append((value[seg], child, starred))
            elif not (in_count and starred):
                _missing(inputs, child)
        frontier = following
    resolved = []
    for value, pointer, starred in frontier:
        if value is None:  # only a projected element itself can still be null here
            if not (in_count and starred):
                _missing(inputs, pointer)
            continue
        resolved.append((pointer, value))
        inputs.pointers.append(pointer)
    inputs.pointers[:] = _dedupe(inputs.pointers)
    inputs.missing[:] = _dedupe(inputs.missing)
    return resolved


def _missing(inputs: _Inputs, pointer: str) -> None:
    inputs.missing.append(pointer)
    inputs.pointers.append(pointer)  # in reading order: a skipped check still names all its inputs


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _as_value(pointer: str, raw: Any) -> Value:
    """A data value as a Decimal (numbers and numeric strings) or a date (ISO ``YYYY-MM-DD`` strings)."""
    if isinstance(raw, bool):
        raise _Skip(f"{pointer} is a boolean, not a number")
    if isinstance(raw, int | float | Decimal):
        number = Decimal(str(raw))
    elif isinstance(raw, str) and _DATA_NUMBER_RE.fullmatch(raw):
        number = Decimal(raw.strip())
    elif isinstance(raw, str) and _DATA_DATE_RE.fullmatch(raw.strip()):
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            raise _Skip(f"{pointer} is not a valid date: {raw!r}") from None
    else:
        raise _Skip(f"{pointer} is neither a number nor an ISO date: {_short(raw)}")
    if not number.is_finite():
        raise _Skip(f"{pointer} is not a finite number")
    return number


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


_ARITHMETIC = {
    "+": DECIMAL_CONTEXT.add,
    "-": DECIMAL_CONTEXT.subtract,
    "*": DECIMAL_CONTEXT.multiply,
    "/": DECIMAL_CONTEXT.divide,
}


class _Evaluator:
    """Walks an analysed tree (depth <= MAX_DEPTH, so recursion is bounded) over resolved inputs."""

    def __init__(self, values: dict[Field, list[tuple[str, Any]]]) -> None:
        self._values = values

    def value(self, node: Expr) -> Value:
        ctx = DECIMAL_CONTEXT
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Field):
            ((pointer, raw),) = self._values[node]
            return _as_value(pointer, raw)
        if isinstance(node, Neg):
            return ctx.minus(self.number(node.operand))
        if isinstance(node, BinOp):
            left, right = self.number(node.left), self.number(node.right)
            if node.op == "/" and right.is_zero():
                raise _Skip(f"division by zero in '{render(node)}'")
            return _ARITHMETIC[node.op](left, right)
        return self._call(node)

    def number(self, node: Expr) -> Decimal:
        value = self.value(node)
        if isinstance(value, dt.date):
            raise _Skip(f"a date cannot be used in arithmetic: '{render(node)}'")
        return value

    def _items(self, node: Expr) -> list[Value]:
        if isinstance(node, Field) and node.projected:
            return [_as_value(pointer, raw) for pointer, raw in self._values[node]]
        return [self.value(node)]

    def _call(self, node: Call) -> Value:
        ctx = DECIMAL_CONTEXT
        func, args = node.func, node.args
        if func == "count":
            assert isinstance(args[0], Field)
            return Decimal(len(self._values[args[0]]))
        if func == "sum":
            total = Decimal(0)
            for item in self._items(args[0]):
                if isinstance(item, dt.date):
                    raise _Skip(f"a date cannot be summed in '{render(node)}'")
                total = ctx.add(total, item)
            return total
        if func in {"min", "max"}:
            items = [item for arg in args for item in self._items(arg)]
            if not items:
                raise _Skip(f"{func}() of an empty list")
            numbers = [item for item in items if isinstance(item, Decimal)]
            dates = [item for item in items if not isinstance(item, Decimal)]
            if numbers and dates:
                raise _Skip(f"{func}() got both dates and numbers")
            if dates:
                return min(dates) if func == "min" else max(dates)
            return min(numbers) if func == "min" else max(numbers)
        if func == "abs":
            return ctx.abs(self.number(args[0]))
        places = args[1]
        assert isinstance(places, Num)
        quantum = Decimal(1).scaleb(-int(places.value))
        return self.number(args[0]).quantize(quantum, rounding=ROUND_HALF_UP, context=ctx)
