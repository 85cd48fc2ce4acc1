"""The checks language's recursive-descent parser (grammar in :mod:`app.schema.checks`)."""

from __future__ import annotations

from decimal import Decimal

from app.schema.checks.syntax import (
    COMPARE_OPS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_DIGITS,
    BinOp,
    Call,
    CheckSyntaxError,
    Compare,
    Expr,
    Field,
    Neg,
    Num,
)
from app.schema.checks.tokens import Token, Tokens


class Parser:
    """Recursive descent with an explicit nesting counter: recursion never goes past MAX_DEPTH levels."""

    def __init__(self, text: str) -> None:
        self._tokens = Tokens(text)
        self._nesting = 0

    def parse(self) -> Compare:
        left, left_depth = self._sum()
        token = self._tokens.peek()
        if token.kind == "end":
            raise CheckSyntaxError("the expression needs exactly one comparison (==, !=, <, <=, >, >=)")
        if not (token.kind == "op" and token.text in COMPARE_OPS):
            raise self._unexpected(token)
        op = self._tokens.advance().text
        right, right_depth = self._sum()
        token = self._tokens.peek()
        if token.kind == "op" and token.text in COMPARE_OPS:
            raise CheckSyntaxError(f"only one comparison is allowed per check (at column {token.pos + 1})")
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
                raise CheckSyntaxError(
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

    def _path_or_call(self, first: Token) -> tuple[Expr, int]:
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
            raise CheckSyntaxError(f"'{path}' is not a function (at column {first.pos + 1})")
        if path not in FUNCTIONS:
            raise CheckSyntaxError(
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

    def _enter(self, token: Token) -> None:
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise CheckSyntaxError(f"expression nested deeper than {MAX_DEPTH} (at column {token.pos + 1})")

    @staticmethod
    def _check_depth(depth: int, token: Token) -> int:
        if depth > MAX_DEPTH:
            raise CheckSyntaxError(f"expression nested deeper than {MAX_DEPTH} (at column {token.pos + 1})")
        return depth

    def _expect(self, kind: str) -> Token:
        token = self._tokens.advance()
        if token.kind != kind:
            raise self._unexpected(token, expected=kind)
        return token

    @staticmethod
    def _unexpected(token: Token, expected: str | None = None) -> CheckSyntaxError:
        what = "end of expression" if token.kind == "end" else repr(token.text)
        wanted = f", expected {expected!r}" if expected else ""
        return CheckSyntaxError(f"unexpected {what}{wanted} (at column {token.pos + 1})")
