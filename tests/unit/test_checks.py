"""Declared checks: the language, its limits against hostile schemas, and exact Decimal evaluation."""

from __future__ import annotations

import copy
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.trust.checks import (
    DECIMAL_CONTEXT,
    MAX_CHECKS,
    Check,
    CheckError,
    CheckResult,
    parse_checks,
    render,
)
from app.trust.checks import evaluate as evaluate_checks

EXAMPLE_CHECKS: list[dict[str, Any]] = [
    {"name": "subtotal_plus_tax_is_total", "expr": "subtotal + tax_total == total", "tolerance": 0.01},
    {
        "name": "line_items_sum_to_subtotal",
        "expr": "sum(line_items[*].amount) == subtotal",
        "tolerance": 0.02,
    },
    {
        "name": "quantity_times_price_is_amount",
        "for_each": "line_items",
        "expr": "@.quantity * @.unit_price == @.amount",
        "tolerance": 0.01,
    },
    {"name": "due_not_before_issue", "expr": "due_date >= issue_date"},
]

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "line": {
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "quantity": {"type": "number"},
                "unit_price": {"type": "number"},
                "amount": {"type": ["number", "null"]},
            },
        }
    },
    "properties": {
        "invoice_number": {"type": "string"},
        "issue_date": {"type": "string", "format": "date"},
        "due_date": {"type": "string", "format": "date"},
        "seller": {"type": "object", "properties": {"name": {"type": "string"}}},
        "line_items": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "subtotal": {"type": "number"},
        "tax_total": {"type": "number"},
        "total": {"type": "number"},
        "x0": {"type": "number"},
        "x1": {"type": "number"},
        "x2": {"type": "number"},
        "x3": {"type": "number"},
    },
}


def schema_with(*checks: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    schema["x-checks"] = list(checks)
    return schema


def compile_one(expr: str, **extra: Any) -> Check:
    (check,) = parse_checks(schema_with({"name": "c", "expr": expr, **extra}))
    return check


def run(expr: str, data: Any, **extra: Any) -> CheckResult:
    (result,) = evaluate_checks([compile_one(expr, **extra)], data)
    return result


def invoice(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "invoice_number": "INV-1",
        "issue_date": "2024-03-01",
        "due_date": "2024-03-31",
        "line_items": [
            {"description": "A", "quantity": 2, "unit_price": 12.5, "amount": 25.0},
            {"description": "B", "quantity": "3", "unit_price": "25.00", "amount": "75.00"},
        ],
        "subtotal": 100.0,
        "tax_total": 19.0,
        "total": 119.0,
    }
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def example_checks() -> list[Check]:
    return parse_checks(schema_with(*EXAMPLE_CHECKS))


def by_rule(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.rule: result for result in results}


# ------------------------------------------------------------------------------------- the four examples


def test_example_checks_compile(example_checks: list[Check]) -> None:
    assert [check.name for check in example_checks] == [entry["name"] for entry in EXAMPLE_CHECKS]
    assert example_checks[0].paths == ["subtotal", "tax_total", "total"]
    assert example_checks[1].paths == ["line_items[*].amount", "subtotal"]
    assert example_checks[1].tolerance == Decimal("0.02")
    assert example_checks[2].for_each == "line_items"
    assert example_checks[3].tolerance == Decimal("0.01")  # the default
    assert example_checks[3].relative_tolerance is None
    assert render(example_checks[0].expr) == "(subtotal + tax_total) == total"


def test_consistent_invoice_passes_every_check(example_checks: list[Check]) -> None:
    results = by_rule(evaluate_checks(example_checks, invoice()))
    assert set(results) == {
        "subtotal_plus_tax_is_total",
        "line_items_sum_to_subtotal",
        "quantity_times_price_is_amount[0]",
        "quantity_times_price_is_amount[1]",
        "due_not_before_issue",
    }
    assert all(result.status == "passed" for result in results.values()), results

    total = results["subtotal_plus_tax_is_total"]
    assert (total.actual, total.expected) == (Decimal("119.0"), Decimal("119.0"))
    assert total.pointers == ["/subtotal", "/tax_total", "/total"]

    lines = results["line_items_sum_to_subtotal"]
    assert (lines.actual, lines.expected) == (Decimal("100.00"), Decimal("100.0"))
    assert lines.pointers == ["/line_items/0/amount", "/line_items/1/amount", "/subtotal"]

    second = results["quantity_times_price_is_amount[1]"]
    assert (second.actual, second.expected) == (Decimal("75.00"), Decimal("75.00"))
    assert second.pointers == ["/line_items/1/quantity", "/line_items/1/unit_price", "/line_items/1/amount"]

    dates = results["due_not_before_issue"]
    assert (dates.actual, dates.expected) == ("2024-03-31", "2024-03-01")
    assert dates.pointers == ["/due_date", "/issue_date"]


def test_inconsistent_invoice_fails_every_check(example_checks: list[Check]) -> None:
    data = invoice(total=120.0, subtotal=99.5, due_date="2024-02-15")
    data["line_items"][0]["amount"] = 24.0
    results = by_rule(evaluate_checks(example_checks, data))

    total = results["subtotal_plus_tax_is_total"]
    assert total.status == "failed"
    assert (total.actual, total.expected) == (Decimal("118.5"), Decimal("120.0"))
    assert "difference -1.5" in total.detail

    lines = results["line_items_sum_to_subtotal"]
    assert lines.status == "failed"
    assert (lines.actual, lines.expected) == (Decimal("99.00"), Decimal("99.5"))
    assert lines.pointers == ["/line_items/0/amount", "/line_items/1/amount", "/subtotal"]

    first = results["quantity_times_price_is_amount[0]"]
    assert first.status == "failed"
    assert (first.actual, first.expected) == (Decimal("25.0"), Decimal("24.0"))
    assert first.pointers == ["/line_items/0/quantity", "/line_items/0/unit_price", "/line_items/0/amount"]
    assert results["quantity_times_price_is_amount[1]"].status == "passed"

    dates = results["due_not_before_issue"]
    assert dates.status == "failed"
    assert (dates.actual, dates.expected) == ("2024-02-15", "2024-03-01")


def test_line_sum_failure_reports_both_sides(example_checks: list[Check]) -> None:
    results = by_rule(evaluate_checks(example_checks, invoice(subtotal=101.0)))
    lines = results["line_items_sum_to_subtotal"]
    assert lines.status == "failed"
    assert (lines.actual, lines.expected) == (Decimal("100.00"), Decimal("101.0"))


# ------------------------------------------------------------------------------------------- tolerance


@pytest.mark.parametrize(
    ("total", "status"),
    [("119.01", "passed"), ("118.99", "passed"), ("119.011", "failed"), ("118.989", "failed")],
)
def test_absolute_tolerance_edges(total: str, status: str) -> None:
    result = run("subtotal + tax_total == total", invoice(total=total), tolerance=0.01)
    assert result.status == status


def test_float_data_has_no_binary_drift_at_the_tolerance_edge() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in floats; read through str() it is exactly 0.3.
    result = run(
        "subtotal + tax_total == total", invoice(subtotal=0.1, tax_total=0.2, total=0.3), tolerance=0
    )
    assert result.status == "passed"
    assert result.actual == Decimal("0.3")


def test_decimal_literals_are_exact() -> None:
    assert run("0.1 + 0.2 == 0.3", {}, tolerance=0).status == "passed"
    assert run("1 / 3 * 3 == 1", {}, tolerance=0).status == "failed"  # honest rounding, not hidden
    assert run("1 / 3 * 3 == 1", {}, tolerance=0.000001).status == "passed"


def test_relative_tolerance_passes_when_either_holds() -> None:
    data = invoice(subtotal=1000, tax_total=0, total=1004)
    assert run("subtotal + tax_total == total", data, tolerance=0.01).status == "failed"
    assert (
        run("subtotal + tax_total == total", data, tolerance=0.01, relative_tolerance=0.005).status
        == "passed"
    )
    assert run("subtotal + tax_total == total", data, tolerance=5, relative_tolerance=0).status == "passed"


@pytest.mark.parametrize(
    ("expr", "status"),
    [
        ("total <= subtotal", "failed"),
        ("total < 119", "passed"),  # lenient: 119 < 119 + 0.01
        ("total < 118.99", "failed"),
        ("total <= 118.99", "passed"),
        ("total > 119", "passed"),
        ("total > 119.01", "failed"),
        ("total >= 119.01", "passed"),
        ("total >= 119.02", "failed"),
        ("total != 119.001", "passed"),  # lenient: fails only on exact equality
        ("total != 119", "failed"),
    ],
)
def test_other_comparisons_use_tolerance_leniently(expr: str, status: str) -> None:
    assert run(expr, invoice()).status == status


# ----------------------------------------------------------------------------------- skipped, not failed


def test_missing_inputs_skip_with_their_paths(example_checks: list[Check]) -> None:
    data = invoice()
    del data["tax_total"]
    data["total"] = None
    result = by_rule(evaluate_checks(example_checks, data))["subtotal_plus_tax_is_total"]
    assert result.status == "skipped"
    assert result.expected is None
    assert result.actual is None
    assert result.pointers == ["/subtotal", "/tax_total", "/total"]
    assert "/tax_total" in result.detail
    assert "/total" in result.detail
    assert "/subtotal" not in result.detail


def test_null_line_amount_skips_the_sum(example_checks: list[Check]) -> None:
    data = invoice()
    data["line_items"][1]["amount"] = None
    results = by_rule(evaluate_checks(example_checks, data))
    lines = results["line_items_sum_to_subtotal"]
    assert lines.status == "skipped"
    assert lines.detail == "missing input: /line_items/1/amount"
    assert results["quantity_times_price_is_amount[0]"].status == "passed"
    assert results["quantity_times_price_is_amount[1]"].status == "skipped"


def test_null_line_item_skips_the_sum() -> None:
    result = run("sum(line_items[*].amount) == subtotal", invoice(line_items=[None]))
    assert result.status == "skipped"
    assert "/line_items/0" in result.detail


def test_empty_line_items_sum_to_zero() -> None:
    passed = run("sum(line_items[*].amount) == subtotal", invoice(line_items=[], subtotal=0))
    assert passed.status == "passed"
    assert passed.actual == Decimal(0)
    assert passed.pointers == ["/line_items", "/subtotal"]
    assert run("sum(line_items[*].amount) == subtotal", invoice(line_items=[])).status == "failed"


def test_missing_array_skips_the_sum() -> None:
    data = invoice()
    del data["line_items"]
    result = run("sum(line_items[*].amount) == subtotal", data)
    assert result.status == "skipped"
    assert result.detail == "missing input: /line_items"


def test_division_by_zero_skips() -> None:
    result = run("tax_total / subtotal * 100 == 19", invoice(subtotal=0))
    assert result.status == "skipped"
    assert "division by zero" in result.detail
    assert result.pointers == ["/tax_total", "/subtotal"]
    assert run("tax_total / subtotal * 100 == 19", invoice()).status == "passed"


def test_non_numeric_string_skips() -> None:
    result = run("subtotal + tax_total == total", invoice(total="one hundred"))
    assert result.status == "skipped"
    assert "/total" in result.detail
    assert run("subtotal + tax_total == total", invoice(total=True)).status == "skipped"
    assert run("subtotal + tax_total == total", invoice(total="NaN")).status == "skipped"


def test_non_object_data_skips_everything(example_checks: list[Check]) -> None:
    results = evaluate_checks(example_checks, ["not", "an", "object"])
    assert [result.status for result in results] == ["skipped"] * 4
    assert results[2].rule == "quantity_times_price_is_amount"


def test_overflow_skips_instead_of_raising() -> None:
    result = run("subtotal * subtotal == total", invoice(subtotal="9e999998"))
    assert result.status == "skipped"
    assert "arithmetic error" in result.detail


# ------------------------------------------------------------------------------------- dates, for_each


def test_dates_compare_as_dates() -> None:
    assert run("due_date >= issue_date", invoice(due_date="2024-03-01")).status == "passed"
    assert run("due_date > issue_date", invoice(due_date="2024-03-01")).status == "failed"
    failed = run("due_date >= issue_date", invoice(due_date="2024-02-29"))
    assert failed.status == "failed"
    assert (failed.actual, failed.expected) == ("2024-02-29", "2024-03-01")
    assert run("due_date == issue_date", invoice(due_date="2024-03-01")).status == "passed"
    assert run("max(issue_date, due_date) == due_date", invoice()).status == "passed"


def test_unreadable_date_skips() -> None:
    assert run("due_date >= issue_date", invoice(due_date="31.03.2024")).status == "skipped"
    assert run("due_date >= issue_date", invoice(due_date="2024-02-30")).status == "skipped"


def test_for_each_gives_one_result_per_item() -> None:
    check = compile_one("@.quantity * @.unit_price == @.amount", for_each="line_items")
    data = invoice(
        line_items=[
            {"quantity": 1, "unit_price": 10, "amount": 10},
            {"quantity": 2, "unit_price": 10, "amount": 21},
            None,
            {"quantity": 1, "unit_price": 10},
        ]
    )
    results = evaluate_checks([check], data)
    assert [(result.rule, result.status) for result in results] == [
        ("c[0]", "passed"),
        ("c[1]", "failed"),
        ("c[2]", "skipped"),
        ("c[3]", "skipped"),
    ]
    assert results[1].pointers == [
        "/line_items/1/quantity",
        "/line_items/1/unit_price",
        "/line_items/1/amount",
    ]
    assert results[3].detail == "missing input: /line_items/3/amount"
    assert evaluate_checks([check], invoice(line_items=[])) == []


def test_for_each_may_mix_relative_and_absolute_paths() -> None:
    check = compile_one("@.amount <= subtotal", for_each="line_items")
    results = evaluate_checks([check], invoice())
    assert [result.status for result in results] == ["passed", "passed"]
    assert results[0].pointers == ["/line_items/0/amount", "/subtotal"]


def test_functions() -> None:
    data = invoice()
    assert run("count(line_items[*]) == 2", data, tolerance=0).status == "passed"
    assert run("count(line_items[*].amount) == 2", data, tolerance=0).status == "passed"
    data["line_items"][0]["amount"] = None
    assert run("count(line_items[*].amount) == 1", data, tolerance=0).status == "passed"  # like COUNT(col)
    data = invoice()
    assert run("min(line_items[*].amount) == 25", data, tolerance=0).status == "passed"
    assert run("max(line_items[*].amount, 80) == 80", data, tolerance=0).status == "passed"
    assert run("abs(subtotal - total) == 19", data, tolerance=0).status == "passed"
    assert run("round(total / 3, 2) == 39.67", data, tolerance=0).status == "passed"
    assert run("round(2.5, 0) == 3", data, tolerance=0).status == "passed"  # half up, as invoices round
    assert run("-subtotal + total == tax_total", data, tolerance=0).status == "passed"
    assert run("min(line_items[*].amount) == 0", invoice(line_items=[])).status == "skipped"


# ----------------------------------------------------------------------------------- parse_checks limits


def refused(*checks: dict[str, Any]) -> CheckError:
    with pytest.raises(CheckError) as caught:
        parse_checks(schema_with(*checks))
    return caught.value


def refused_expr(expr: str) -> CheckError:
    return refused({"name": "ok", "expr": "total == total"}, {"name": "bad", "expr": expr})


def test_no_checks_declared() -> None:
    assert parse_checks(SCHEMA) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("(" * 5000 + "1" + ")" * 5000 + " == 1", "at most 500"),
        ("(" * 40 + "1" + ")" * 40 + " == 1", "nested deeper than 32"),
        ("-" * 200 + "1 == 1", "nested deeper than 32"),
        ("abs(" * 40 + "1" + ")" * 40 + " == 1", "nested deeper than 32"),
        ("1" + " + 1" * 40 + " == 1", "nested deeper than 32"),
        (str(10**100) + " == total", "101 digits"),
        ("0." + "1" * 31 + " == total", "32 digits"),
        ("eval(x) == 1", "unknown function 'eval'"),
        ("__import__('os') == 1", "unknown function '__import__'"),
        ("total.__class__ == 1", "unknown field 'total.__class__'"),
        ("total.__class__.__name__(1) == 1", "is not a function"),
        ("tota == total", "unknown field 'tota'"),
        ("line_items[*].price == 1", "unknown field 'line_items[*].price'"),
        ("sum(line_items[*].price) == 1", "unknown field 'line_items[*].price'"),
        ("subtotal == tax_total == total", "only one comparison"),
        ("(subtotal == total)", "unexpected '=='"),
        ("subtotal + total", "exactly one comparison"),
        ("total = 1", "use '=='"),
        ("total == 'x'", "unexpected character"),
        ("total[0] == 1", "only '[*]'"),
        ("total ** 2 == 1", "unexpected '*'"),
        ("1e5 == total", "unexpected 'e5'"),
        ("(total == 1", "unexpected '=='"),
        ("total) == 1", "unbalanced ')'"),
        ("line_items[*].amount == 1", "is a list"),
        ("sum(subtotal) == 1", "list projection"),
        ("total[*] == 1", "'total' is not an array"),
        ("seller == 1", "is an object"),
        ("@.amount == 1", "for_each"),
        ("issue_date + 1 == due_date", "dates can only be compared"),
        ("issue_date == total", "cannot compare a date with a number"),
        ("round(total, 2.5) == 1", "whole number"),
        ("round(total) == 1", "two arguments"),
        ("min() == 1", "at least one argument"),
        ("", "non-empty string"),
    ],
)
def test_bad_expressions_are_refused_with_the_expr_pointer(expr: str, message: str) -> None:
    error = refused_expr(expr)
    assert error.pointer == "/x-checks/1/expr"
    assert message in error.message, error.message


def test_expression_length_limit_is_inclusive() -> None:
    expr = "total == " + "0" * 20 + " + 1"
    expr += " " * (500 - len(expr))
    assert compile_one(expr).name == "c"
    assert refused_expr(expr + " ").message.startswith("expression is 501 characters long")


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert compile_one("(" * 32 + "total" + ")" * 32 + " == 1").paths == ["total"]


def test_too_many_checks() -> None:
    error = refused(*({"name": f"c{i}", "expr": "total == total"} for i in range(MAX_CHECKS + 1)))
    assert error.pointer == "/x-checks"
    assert "51 checks" in error.message
    assert len(parse_checks(schema_with(*({"name": f"c{i}", "expr": "1 == 1"} for i in range(50))))) == 50


@pytest.mark.parametrize(
    ("check", "pointer", "message"),
    [
        ({"name": "Bad Name", "expr": "1 == 1"}, "/x-checks/1/name", "^[a-z0-9_]{1,64}$"),
        ({"name": "x" * 65, "expr": "1 == 1"}, "/x-checks/1/name", "^[a-z0-9_]{1,64}$"),
        ({"expr": "1 == 1"}, "/x-checks/1/name", "'name'"),
        (
            {"name": "ok", "expr": "1 == 1"},
            "/x-checks/1/name",
            "duplicate check name 'ok' (also /x-checks/0)",
        ),
        ({"name": "b", "expr": "1 == 1", "severity": "high"}, "/x-checks/1/severity", "unknown key"),
        ({"name": "b", "expr": "1 == 1", "a/b": 1}, "/x-checks/1/a~1b", "unknown key"),
        ({"name": "b", "expr": "1 == 1", "tolerance": -0.01}, "/x-checks/1/tolerance", "non-negative"),
        ({"name": "b", "expr": "1 == 1", "tolerance": "0.01"}, "/x-checks/1/tolerance", "non-negative"),
        ({"name": "b", "expr": "1 == 1", "tolerance": True}, "/x-checks/1/tolerance", "non-negative"),
        ({"name": "b", "expr": "1 == 1", "tolerance": float("nan")}, "/x-checks/1/tolerance", "non-negative"),
        (
            {"name": "b", "expr": "1 == 1", "relative_tolerance": -1},
            "/x-checks/1/relative_tolerance",
            "non-negative",
        ),
        ({"name": "b", "expr": 42}, "/x-checks/1/expr", "non-empty string"),
        ({"name": "b", "expr": "1 == 1", "for_each": "tags"}, "/x-checks/1/for_each", "array of objects"),
        ({"name": "b", "expr": "1 == 1", "for_each": "total"}, "/x-checks/1/for_each", "array of objects"),
        (
            {"name": "b", "expr": "1 == 1", "for_each": "lines"},
            "/x-checks/1/for_each",
            "unknown field 'lines'",
        ),
        ({"name": "b", "expr": "1 == 1", "for_each": "line_items[*]"}, "/x-checks/1/for_each", "field path"),
        (
            {"name": "b", "expr": "@.price == 1", "for_each": "line_items"},
            "/x-checks/1/expr",
            "unknown field '@.price'",
        ),
        ("not an object", "/x-checks/1", "must be an object"),
    ],
)
def test_bad_check_objects_are_refused_with_a_precise_pointer(check: Any, pointer: str, message: str) -> None:
    error = refused({"name": "ok", "expr": "total == total"}, check)
    assert error.pointer == pointer
    assert message in error.message, error.message


def test_x_checks_must_be_a_list() -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["x-checks"] = {"name": "c"}
    with pytest.raises(CheckError) as caught:
        parse_checks(schema)
    assert caught.value.pointer == "/x-checks"


def test_refs_are_followed_and_cycles_do_not_hang() -> None:
    schema: dict[str, Any] = {
        "$defs": {
            "loop": {"$ref": "#/$defs/loop"},
            "party": {"properties": {"total": {"$ref": "#/$defs/n"}}},
        },
        "properties": {"party": {"$ref": "#/$defs/party"}, "odd": {"$ref": "#/$defs/loop"}},
        "x-checks": [{"name": "a", "expr": "party.total == 1"}, {"name": "b", "expr": "odd.x == 1"}],
    }
    with pytest.raises(CheckError) as caught:
        parse_checks(schema)
    assert caught.value.pointer == "/x-checks/1/expr"
    assert "unknown field 'odd.x'" in caught.value.message
    schema["x-checks"].pop()
    (check,) = parse_checks(schema)
    assert evaluate_checks([check], {"party": {"total": "1.00"}})[0].status == "passed"


def test_check_error_is_a_value_error() -> None:
    error = refused_expr("eval(x) == 1")
    assert isinstance(error, ValueError)
    assert str(error).startswith("/x-checks/1/expr: unknown function 'eval'")


# ------------------------------------------------------------------------- property: exact Decimal arithmetic

small_decimals = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
FIELDS = ("x0", "x1", "x2", "x3")


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> tuple[str, Any]:
    """A random arithmetic expression as text plus the same tree as nested tuples."""
    if depth >= 5 or draw(st.integers(0, 2)) == 0:
        if draw(st.booleans()):
            name = draw(st.sampled_from(FIELDS))
            return name, ("field", name)
        value = draw(small_decimals)
        text = format(abs(value), "f")
        return (f"-{text}", ("neg", ("num", abs(value)))) if value < 0 else (text, ("num", value))
    kind = draw(st.sampled_from(["+", "-", "*", "/", "neg", "abs"]))
    left_text, left = draw(trees(depth + 1))
    if kind == "neg":
        return f"-({left_text})", ("neg", left)
    if kind == "abs":
        return f"abs({left_text})", ("abs", left)
    right_text, right = draw(trees(depth + 1))
    return f"({left_text} {kind} {right_text})", (kind, left, right)


def reference(tree: Any, env: dict[str, Decimal]) -> Decimal:
    """Plain Decimal arithmetic in the checks' context: the oracle the evaluator must match exactly."""
    ctx = DECIMAL_CONTEXT
    kind = tree[0]
    if kind == "num":
        return Decimal(tree[1])
    if kind == "field":
        return env[tree[1]]
    if kind == "neg":
        return ctx.minus(reference(tree[1], env))
    if kind == "abs":
        return ctx.abs(reference(tree[1], env))
    left, right = reference(tree[1], env), reference(tree[2], env)
    operations = {"+": ctx.add, "-": ctx.subtract, "*": ctx.multiply, "/": ctx.divide}
    return operations[kind](left, right)


@settings(max_examples=300, deadline=None)
@given(tree=trees(), values=st.lists(small_decimals, min_size=4, max_size=4))
def test_evaluation_matches_python_decimal(tree: tuple[str, Any], values: list[Decimal]) -> None:
    text, shape = tree
    env = dict(zip(FIELDS, values, strict=True))
    data = {name: str(value) for name, value in env.items()}
    result = run(f"{text} == 0", data, tolerance=0)
    try:
        expected = reference(shape, env)
    except (DivisionByZero, InvalidOperation):
        assert result.status == "skipped"
        assert "division by zero" in result.detail
        return
    assert result.status in {"passed", "failed"}, result.detail
    assert result.actual == expected
    assert result.expected == 0
    assert (result.status == "passed") == (expected == 0)
