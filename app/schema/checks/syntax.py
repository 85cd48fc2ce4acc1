"""The checks language's syntax tree and its limits (see :mod:`app.schema.checks` for the grammar)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

MAX_DEPTH = 32
MAX_DIGITS = 30
MAX_ROUND_PLACES = 28
FUNCTIONS = ("sum", "count", "min", "max", "abs", "round")
COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})


class CheckSyntaxError(Exception):
    """Raised while reading an expression; turned into a CheckError with the expr's pointer."""


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
