"""The checks language's tokeniser: one token of lookahead, parenthesis depth bounded as it reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.schema.checks.syntax import MAX_DEPTH, CheckSyntaxError

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "name", "op", "(", ")", ",", ".", "@", "[*]", "end"
    text: str
    pos: int


class Tokens:
    """Lazy tokeniser with one token of lookahead, so errors surface in reading order.

    It also counts parenthesis depth, refusing deep nesting before the parser ever recurses into it.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._parens = 0
        self._peeked: Token | None = None

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._read()
        return self._peeked

    def advance(self) -> Token:
        token = self.peek()
        self._peeked = None
        return token

    def _read(self) -> Token:
        text, pos = self._text, self._pos
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            self._pos = pos
            if self._parens:
                raise CheckSyntaxError(f"missing ')' at the end (at column {pos + 1})")
            return Token("end", "", pos)
        char = text[pos]
        if match := _NUMBER_RE.match(text, pos):
            token = Token("num", match.group(), pos)
        elif match := _IDENT_RE.match(text, pos):
            token = Token("name", match.group(), pos)
        elif text.startswith("[*]", pos):
            token = Token("[*]", "[*]", pos)
        elif char == "[":
            raise CheckSyntaxError(f"only '[*]' projections are supported (at column {pos + 1})")
        elif text[pos : pos + 2] in {"==", "!=", "<=", ">="}:
            token = Token("op", text[pos : pos + 2], pos)
        elif char in "+-*/<>":
            token = Token("op", char, pos)
        elif char == "=":
            raise CheckSyntaxError(f"use '==' to compare (at column {pos + 1})")
        elif char in "(),.@":
            token = Token(char, char, pos)
        else:
            raise CheckSyntaxError(f"unexpected character {char!r} (at column {pos + 1})")
        self._count_parens(token)
        self._pos = pos + len(token.text)
        return token

    def _count_parens(self, token: Token) -> None:
        if token.kind == "(":
            self._parens += 1
            if self._parens > MAX_DEPTH:
                raise CheckSyntaxError(
                    f"parentheses nested deeper than {MAX_DEPTH} (at column {token.pos + 1})"
                )
        elif token.kind == ")":
            self._parens -= 1
            if self._parens < 0:
                raise CheckSyntaxError(f"unbalanced ')' (at column {token.pos + 1})")
