"""Declared cross-field checks (``x-checks``): parsed with the schema (:mod:`app.schema.checks`:
syntax tree, tokeniser, parser, static analysis), evaluated here against extracted data
(:mod:`app.trust.checks.evaluate`). Imports from ``app.trust.checks`` keep working for both."""

from app.schema.checks import (
    DEFAULT_TOLERANCE,
    FUNCTIONS,
    MAX_CHECKS,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_EXPR_CHARS,
    MAX_ROUND_PLACES,
    BinOp,
    Call,
    Check,
    CheckError,
    Compare,
    Expr,
    Field,
    Neg,
    Num,
    parse_checks,
    render,
)
from app.trust.checks.evaluate import DECIMAL_CONTEXT, CheckResult, Status, Value, evaluate

__all__ = [
    "DECIMAL_CONTEXT",
    "DEFAULT_TOLERANCE",
    "FUNCTIONS",
    "MAX_CHECKS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPR_CHARS",
    "MAX_ROUND_PLACES",
    "BinOp",
    "Call",
    "Check",
    "CheckError",
    "CheckResult",
    "Compare",
    "Expr",
    "Field",
    "Neg",
    "Num",
    "Status",
    "Value",
    "evaluate",
    "parse_checks",
    "render",
]
