"""Declared cross-field checks (``x-checks`` at a schema's root) in a small, parsed expression language.

A schema author states arithmetic facts the extracted values must satisfy (``subtotal + tax_total ==
total``). Those facts are the cheapest strong evidence we have that numbers were read correctly, so the
trust layer attaches each result to the JSON Pointers of the values it used.

The text comes from users, so it is tokenised and parsed here by hand and evaluated by walking the tree:
nothing is ever handed to ``eval``/``exec``/``ast``. ``parse_checks`` enforces hard limits (count, length,
nesting depth, literal size, known functions, fields that exist in the schema) so that evaluation can
assume a small, well-formed tree. Arithmetic is ``Decimal`` in a fixed context, so money adds up exactly.

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
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
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

MAX_CHECKS = 50
MAX_EXPR_CHARS = 500
MAX_DEPTH = 32
MAX_DIGITS = 30
MAX_ROUND_PLACES = 28
DEFAULT_TOLERANCE = Decimal("0.01")

# One explicit context for every operation, so results never depend on the thread's current context.
# 60 digits hold the product of two 30-digit literals exactly; traps turn nonsense into a skipped check.
DECIMAL_CONTEXT = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

FUNCTIONS = ("sum", "count", "min", "max", "abs", "round")
_AGGREGATES = frozenset({"sum", "count", "min", "max"})
_COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_CHECK_KEYS = ("name", "expr", "for_each", "tolerance", "relative_tolerance", "description")
_NAME_RE = re.compile(r"[a-z0-9_]{1,64}")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_FOR_EACH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_DATA_NUMBER_RE = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_DATA_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAX_REF_HOPS = 32

Status = Literal["passed", "failed", "skipped"]
Value: TypeAlias = Decimal | dt.date


# --------------------------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Num:
    value: Decimal


@dataclass(frozen=True)
class Field:
    """A path into the data; ``"*"`` segments project over arrays, ``relative`` paths start at ``@``."""

    segments: tuple[str, ...]
    relative: bool = False

    @property
    def projected(self) -> bool:
        return "*" in self.segments

    @property
    def text(self) -> str:
        out = "@" if self.relative else ""
        for seg in self.segments:
            if seg == "*":
                out += "[*]"
            else:
                out += f".{seg}" if out else seg
        return out


@dataclass(frozen=True)
class Neg:
    operand: Expr


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr


Expr: TypeAlias = Num | Field | Neg | BinOp | Call


def render(node: Expr | Compare) -> str:
    """Canonical text of a tree (fully parenthesised binary operations), for details and logs."""
    if isinstance(node, Num):
        return str(node.value)
    if isinstance(node, Field):
        return node.text
    if isinstance(node, Neg):
        return f"-{render(node.operand)}"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(render(arg) for arg in node.args)})"
    if isinstance(node, Compare):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    return f"({render(node.left)} {node.op} {render(node.right)})"


# ----------------------------------------------------------------------------------------- public types


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


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check (or one item of a ``for_each`` check) on one extraction."""

    rule: str
    status: Status
    expected: Decimal | str | None
    actual: Decimal | str | None
    pointers: list[str]
    detail: str


# ------------------------------------------------------------------------------------------- tokeniser


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", "op", "(", ")", ",", ".", "@", "[*]", "end"
    text: str
    pos: int


class _SyntaxError(Exception):
    """Raised inside the parser; turned into a CheckError with the expr's pointer."""


class _Tokens:
    """Lazy tokeniser with one token of lookahead, so errors surface in reading order.

    It also counts parenthesis depth, refusing deep nesting before the parser ever recurses into it.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._parens = 0
        self._peeked: _Token | None = None

    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._read()
        return self._peeked

    def advance(self) -> _Token:
        token = self.peek()
        self._peeked = None
        return token

    def _read(self) -> _Token:
        text, pos = self._text, self._pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            self._pos = pos
            if self._parens:
                raise _SyntaxError(f"missing ')' at the end (at column {pos + 1})")
            return _Token("end", "", pos)
        char = text[pos]
        if match := _NUMBER_RE.match(text, pos):
            token = _Token("num", match.group(), pos)
        elif match := _IDENT_RE.match(text, pos):
            token = _Token("name", match.group(), pos)
        elif text.startswith("[*]", pos):
            token = _Token("[*]", "[*]", pos)
        elif char == "[":
            raise _SyntaxError(f"only '[*]' projections are supported (at column {pos + 1})")
        elif text[pos : pos + 2] in {"==", "!=", "<=", ">="}:
            token = _Token("op", text[pos : pos + 2], pos)
        elif char in "+-*/<>":
            token = _Token("op", char, pos)
        elif char == "=":
            raise _SyntaxError(f"use '==' to compare (at column {pos + 1})")
        elif char in "(),.@":
            token = _Token(char, char, pos)
        else:
            raise _SyntaxError(f"unexpected character {char!r} (at column {pos + 1})")
        self._count_parens(token)
        self._pos = pos + len(token.text)
        return token

    def _count_parens(self, token: _Token) -> None:
        if token.kind == "(":
            self._parens += 1
            if self._parens > MAX_DEPTH:
                raise _SyntaxError(f"parentheses nested deeper than {MAX_DEPTH} (at column {token.pos + 1})")
        elif token.kind == ")":
            self._parens -= 1
            if self._parens < 0:
                raise _SyntaxError(f"unbalanced ')' (at column {token.pos + 1})")


# ---------------------------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent with an explicit nesting counter: recursion never goes past MAX_DEPTH levels."""

    def __init__(self, text: str) -> None:
        self._tokens = _Tokens(text)
        self._nesting = 0

    def parse(self) -> Compare:
        left, left_depth = self._sum()
        token = self._tokens.peek()
        if token.kind == "end":
            raise _SyntaxError("the expression needs exactly one comparison (==, !=, <, <=, >, >=)")
        if not (token.kind == "op" and token.text in _COMPARE_OPS):
            raise self._unexpected(token)
        op = self._tokens.advance().text
        right, right_depth = self._sum()
        token = self._tokens.peek()
        if token.kind == "op" and token.text in _COMPARE_OPS:
            raise _SyntaxError(f"only one comparison is allowed per check (at column {token.pos + 1})")
        if token.kind != "end":
            raise self._unexpected(token)
        self._check_depth(1 + max(left_depth, right_depth), token)
        return Compare(op, left, right)

    def _sum(self) -> tuple[Expr, int]:
        left, depth = self._product()
        while (token := self._tokens.peek()).kind == "op" and token.text in {"+", "-"}:
            self._tokens.advance()
            right, right_depth = self._product()
            depth = self._check_depth(1 + max(depth, right_depth), token)
            left = BinOp(token.text, left, right)
        return left, depth

    def _product(self) -> tuple[Expr, int]:
        left, depth = self._unary()
        while (token := self._tokens.peek()).kind == "op" and token.text in {"*", "/"}:
            self._tokens.advance()
            right, right_depth = self._unary()
            depth = self._check_depth(1 + max(depth, right_depth), token)
            left = BinOp(token.text, left, right)
        return left, depth

    def _unary(self) -> tuple[Expr, int]:
        token = self._tokens.peek()
        if token.kind == "op" and token.text == "-":
            self._tokens.advance()
            self._enter(token)
            operand, depth = self._unary()
            self._nesting -= 1
            return Neg(operand), self._check_depth(depth + 1, token)
        return self._primary()

    def _primary(self) -> tuple[Expr, int]:
        token = self._tokens.advance()
        if token.kind == "num":
            digits = sum(char.isdigit() for char in token.text)
            if digits > MAX_DIGITS:
                raise _SyntaxError(
                    f"numeric literal has {digits} digits; at most {MAX_DIGITS} are allowed "
                    f"(at column {token.pos + 1})"
                )
            return Num(Decimal(token.text)), 1
        if token.kind == "(":
            self._enter(token)
            inner, depth = self._sum()
            self._expect(")")
            self._nesting -= 1
            return inner, depth
        if token.kind in {"name", "@"}:
            return self._path_or_call(token)
        raise self._unexpected(token)

    def _path_or_call(self, first: _Token) -> tuple[Expr, int]:
        relative = first.kind == "@"
        segments: list[str] = []
        if relative:
            self._expect(".")
            segments.append(self._expect("name").text)
        else:
            segments.append(first.text)
        while True:
            token = self._tokens.peek()
            if token.kind == ".":
                self._tokens.advance()
                segments.append(self._expect("name").text)
            elif token.kind == "[*]":
                self._tokens.advance()
                segments.append("*")
            else:
                break
        if self._tokens.peek().kind != "(":
            return Field(tuple(segments), relative), 1
        path = Field(tuple(segments), relative).text
        if relative or len(segments) != 1:
            raise _SyntaxError(f"'{path}' is not a function (at column {first.pos + 1})")
        if path not in FUNCTIONS:
            raise _SyntaxError(
                f"unknown function '{path}'; known functions: {', '.join(FUNCTIONS)} "
                f"(at column {first.pos + 1})"
            )
        open_paren = self._tokens.advance()
        self._enter(open_paren)
        args: list[Expr] = []
        depth = 1
        if self._tokens.peek().kind != ")":
            while True:
                arg, arg_depth = self._sum()
                args.append(arg)
                depth = max(depth, arg_depth + 1)
                if self._tokens.peek().kind != ",":
                    break
                self._tokens.advance()
        self._expect(")")
        self._nesting -= 1
        return Call(path, tuple(args)), self._check_depth(depth, first)

    def _enter(self, token: _Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise _SyntaxError(f"expression nested deeper than {MAX_DEPTH} (at column {token.pos + 1})")

    @staticmethod
    def _check_depth(depth: int, token: _Token) -> int:
        if depth > MAX_DEPTH:
            raise _SyntaxError(f"expression nested deeper than {MAX_DEPTH} (at column {token.pos + 1})")
        return depth

    def _expect(self, kind: str) -> _Token:
        token = self._tokens.advance()
        if token.kind != kind:
            raise self._unexpected(token, expected=kind)
        return token

    @staticmethod
    def _unexpected(token: _Token, expected: str | None = None) -> _SyntaxError:
        what = "end of expression" if token.kind == "end" else repr(token.text)
        wanted = f", expected {expected!r}" if expected else ""
        return _SyntaxError(f"unexpected {what}{wanted} (at column {token.pos + 1})")


# ------------------------------------------------------------------------------------ schema analysis


class _Schema:
    """Walks a JSON Schema (properties, items, local ``$ref``, allOf/anyOf/oneOf) to type field paths."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root

    def resolve(self, node: Any) -> dict[str, Any]:
        for _ in range(_MAX_REF_HOPS):
            if not isinstance(node, dict):
                return {}
            ref = node.get("$ref")
            if not isinstance(ref, str):
                return node
            node = self._follow(ref)
        return {}

    def _follow(self, ref: str) -> Any:
        if ref == "#":
            return self._root
        if not ref.startswith("#/"):
            return None  # only local references; anything else types as "unknown" and fails lookups
        target: Any = self._root
        for token in ref[2:].split("/"):
            key = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                return None
            target = target[key]
        return target

    def _branches(self, node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for key in ("allOf", "anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                for branch in branches:
                    yield self.resolve(branch)

    def child(self, node: Any, name: str) -> dict[str, Any] | None:
        for branch in self._branches(self.resolve(node)):
            props = branch.get("properties")
            if isinstance(props, dict) and name in props:
                return self.resolve(props[name])
        return None

    def items(self, node: Any) -> dict[str, Any] | None:
        for branch in self._branches(self.resolve(node)):
            items = branch.get("items")
            if isinstance(items, dict):
                return self.resolve(items)
        return None

    def types(self, node: Any) -> set[str]:
        found: set[str] = set()
        for branch in self._branches(self.resolve(node)):
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

    def is_date(self, node: Any) -> bool:
        return any(branch.get("format") == "date" for branch in self._branches(self.resolve(node)))


_Kind = Literal["number", "date", "any"]


class _Analyser:
    """Static checks of one parsed expression against the schema: fields exist, types fit, lists placed."""

    def __init__(self, schema: _Schema, item_schema: dict[str, Any] | None) -> None:
        self._schema = schema
        self._item_schema = item_schema
        self.paths: list[str] = []

    def check(self, compare: Compare) -> None:
        left, right = self.kind(compare.left), self.kind(compare.right)
        if {left, right} == {"number", "date"}:
            raise _SyntaxError(f"cannot compare a date with a number in '{render(compare)}'")

    def kind(self, node: Expr) -> _Kind:
        if isinstance(node, Num):
            return "number"
        if isinstance(node, Field):
            kind = self._field(node, for_count=False)  # unknown fields are reported first
            if node.projected:
                raise _SyntaxError(
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
                raise _SyntaxError(f"{func}() takes exactly one list projection such as items[*].amount")
            kind = self._field(args[0], for_count=func == "count")
            if func == "sum":
                self._number(kind, node)
            return "number"
        if func in {"min", "max"}:
            if not args:
                raise _SyntaxError(f"{func}() needs at least one argument")
            kinds = {
                self._field(arg, for_count=False)
                if isinstance(arg, Field) and arg.projected
                else self.kind(arg)
                for arg in args
            }
            if {"number", "date"} <= kinds:
                raise _SyntaxError(f"{func}() cannot mix dates and numbers")
            return "date" if "date" in kinds else "number" if kinds == {"number"} else "any"
        if func == "abs":
            if len(args) != 1:
                raise _SyntaxError("abs() takes exactly one argument")
            self._number(self.kind(args[0]), node)
            return "number"
        # round: the place count is a small literal so results stay within the context's precision
        if len(args) != 2:
            raise _SyntaxError("round() takes exactly two arguments: round(x, places)")
        places = args[1]
        if not (
            isinstance(places, Num)
            and places.value == places.value.to_integral_value()
            and 0 <= places.value <= MAX_ROUND_PLACES
        ):
            raise _SyntaxError(f"round()'s second argument must be a whole number 0..{MAX_ROUND_PLACES}")
        self._number(self.kind(args[0]), node)
        return "number"

    @staticmethod
    def _number(kind: _Kind, node: Expr) -> None:
        if kind == "date":
            raise _SyntaxError(f"dates can only be compared, not used in '{render(node)}'")

    def _field(self, node: Field, *, for_count: bool) -> _Kind:
        if node.relative:
            if self._item_schema is None:
                raise _SyntaxError(f"'{node.text}': '@' paths can only be used in a check with for_each")
            current: dict[str, Any] | None = self._item_schema
        else:
            current = self._schema.resolve(self._schema_root())
        walked: list[str] = []
        for seg in node.segments:
            assert current is not None
            if seg == "*":
                current = self._schema.items(current)
                if current is None:
                    where = Field(tuple(walked), node.relative).text
                    raise _SyntaxError(
                        f"'{where}' is not an array, so '[*]' cannot follow it in '{node.text}'"
                    )
            else:
                current = self._schema.child(current, seg)
                if current is None:
                    raise _SyntaxError(f"unknown field '{node.text}' (no property '{seg}' in the schema)")
            walked.append(seg)
        if node.text not in self.paths:
            self.paths.append(node.text)
        if for_count:
            return "number"
        types = self._schema.types(current)
        if types and types <= {"object", "array", "boolean"}:
            noun = sorted(types)[0]
            raise _SyntaxError(
                f"field '{node.text}' is {'an' if noun[0] in 'aeiou' else 'a'} {noun}, not a value"
            )
        if self._schema.is_date(current):
            return "date"
        return "number" if types and types <= {"number", "integer"} else "any"

    def _schema_root(self) -> dict[str, Any]:
        return self._schema.resolve({"$ref": "#"})


# ------------------------------------------------------------------------------------------ parse_checks


def parse_checks(schema: dict[str, Any]) -> list[Check]:
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
    walker = _Schema(schema)
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


def _parse_one(entry: Any, base: str, walker: _Schema) -> Check:
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
    analyser = _Analyser(walker, item_schema)
    try:
        tree = _Parser(text).parse()
        analyser.check(tree)
    except _SyntaxError as exc:
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


def _for_each_items(for_each: Any, pointer: str, walker: _Schema) -> dict[str, Any]:
    if not isinstance(for_each, str) or not _FOR_EACH_RE.fullmatch(for_each):
        raise CheckError(pointer, "'for_each' must be a field path such as 'line_items'")
    node: dict[str, Any] | None = walker.resolve(walker.resolve({"$ref": "#"}))
    for seg in for_each.split("."):
        node = walker.child(node, seg)
        if node is None:
            raise CheckError(pointer, f"unknown field '{for_each}'")
    items = walker.items(node)
    if items is None or "object" not in walker.types(items):
        raise CheckError(pointer, f"'{for_each}' must be an array of objects")
    return items


# -------------------------------------------------------------------------------------------- evaluate


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
