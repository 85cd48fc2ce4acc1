"""Declared cross-field checks (``x-checks`` at a schema's root) in a small, parsed expression language.

A schema author states arithmetic facts the extracted values must satisfy (``subtotal + tax_total ==
total``). Those facts are the cheapest strong evidence we have that numbers were read correctly, so the
trust layer attaches each result to the JSON Pointers of the values it used.

The text comes from users, so it is tokenised (``tokens``) and parsed (``parser``) by hand and
evaluated by walking the tree: nothing is ever handed to ``eval``/``exec``/``ast``. ``parse_checks``
enforces hard limits (count, length, nesting depth, literal size, known functions, fields that exist
in the schema; ``analysis``) so that evaluation can assume a small, well-formed tree.
Arithmetic is ``Decimal`` in a fixed context, so money adds up exactly.

Grammar (one comparison, at the top level only)::

    check      = sum , compare_op , sum ;
    compare_op = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
    sum        = product , { ( "+" | "-" ) , product } ;
    product    = unary , { ( "*" | "/" ) , unary } ;
    unary      = "-" , unary | primary ;
    primary    = NUMBER | call | path | "(" , sum , ")" ;
    call       = FUNCTION , "(" , [ sum , { "," , sum } ] , ")" ;
    path       = [ "@" , "." ] , NAME , { "." , NAME | "[*]" } ;
    NUMBER     = digit , { digit } , [ "." , digit , { digit } ] ;      (* at most 30 digits, no exponent *)
    NAME       = ( letter | "_" ) , { letter | digit | "_" } ;
    FUNCTION   = "sum" | "count" | "min" | "max" | "abs" | "round" ;

Static rules on top of the grammar: a path with ``[*]`` (a projection) may only be a direct argument of
``sum``/``count``/``min``/``max``; ``@`` paths need ``for_each``; fields whose schema says
``format: date`` may only be compared (or passed to ``min``/``max``), never used in arithmetic.

Evaluation semantics, chosen so that a check fails only when the data really contradicts it:

* missing or null inputs make the check ``skipped`` (listing the missing pointers), never ``failed``;
  a null element inside ``sum(items[*].x)`` also skips it (a silent 0 would hide a misread line); an
  empty array sums to 0; ``count`` counts the non-null values (like SQL ``COUNT(column)``);
* division by zero, non-numeric strings in arithmetic and Decimal overflow skip the check with a reason;
* ``==`` passes when ``|left - right| <= tolerance`` (default 0.01) or, when ``relative_tolerance`` is set,
  ``|left - right| <= relative_tolerance * max(|left|, |right|)``; ``<``, ``<=``, ``>``, ``>=`` shift the
  bound by that tolerance in the lenient direction; ``!=`` is lenient too: it fails only on exact equality;
* ISO date strings (``YYYY-MM-DD``) compare as dates, exactly (the tolerance does not apply);
* ``round(x, n)`` rounds half up (commercial rounding, as printed on invoices), ``n`` a literal 0..28.

The language and its static analysis live here, beside the schema they read; evaluation against
extracted data is the trust layer's (:mod:`app.trust.checks`).
"""

from app.schema.checks.parse import (
    DEFAULT_TOLERANCE,
    MAX_CHECKS,
    MAX_EXPR_CHARS,
    Check,
    CheckError,
    parse_checks,
)
from app.schema.checks.syntax import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_ROUND_PLACES,
    BinOp,
    Call,
    Compare,
    Expr,
    Field,
    Neg,
    Num,
    render,
)

__all__ = [
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
    "Compare",
    "Expr",
    "Field",
    "Neg",
    "Num",
    "parse_checks",
    "render",
]
