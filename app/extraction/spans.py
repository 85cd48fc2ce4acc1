"""Where each leaf value sits in the generated JSON, and which tokens produced it.

The engine returns the JSON text and its tokens with byte offsets. ``leaf_spans`` parses the UTF-8
bytes and records, for every leaf (by JSON Pointer), the byte span of its value (string contents
without the quotes; numbers, booleans and null whole). ``token_evidence`` then summarises the
tokens overlapping each span: the minimum and mean probability over the value's free tokens, the
tokens the grammar did not force (probability below 1 - 1e-6; when all are forced, all of them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from app.engines.base import TokenLogprob
from app.lib.jsonpointer import escape
from app.trust.sources import TokenEvidence

__all__ = ["FORCED", "SpanError", "TokenEvidence", "leaf_spans", "token_evidence"]

FORCED = 1 - 1e-6
_WHITESPACE = b" \t\r\n"


class SpanError(ValueError):
    """The text is not the JSON the grammar should have produced."""


def leaf_spans(text: str) -> dict[str, tuple[int, int]]:
    """JSON Pointer -> (start, end) byte span of each leaf value in ``text``."""
    data = text.encode("utf-8")
    spans: dict[str, tuple[int, int]] = {}
    end = _value(data, _skip(data, 0), "", spans)
    if _skip(data, end) != len(data):
        raise SpanError("trailing content after the JSON value")
    return spans


def _skip(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _WHITESPACE:
        i += 1
    return i


def _value(data: bytes, i: int, pointer: str, spans: dict[str, tuple[int, int]]) -> int:
    if i >= len(data):
        raise SpanError("unexpected end of JSON")
    if data[i] == ord("{"):
        return _object(data, i, pointer, spans)
    if data[i] == ord("["):
        return _array(data, i, pointer, spans)
    if data[i] == ord('"'):
        end = _string_end(data, i)
        spans[pointer] = (i + 1, end - 1)
        return end
    end = i
    while end < len(data) and data[end] not in b",]} \t\r\n":
        end += 1
    if end == i:
        raise SpanError(f"unexpected byte {data[i : i + 1]!r} at {i}")
    spans[pointer] = (i, end)
    return end


def _object(data: bytes, i: int, pointer: str, spans: dict[str, tuple[int, int]]) -> int:
    i = _skip(data, i + 1)
    if data[i : i + 1] == b"}":
        return i + 1
    while True:
        key_start = i
        i = _string_end(data, i)
        key = _unescape_json(data[key_start + 1 : i - 1].decode("utf-8"))
        i = _skip(data, i)
        if data[i : i + 1] != b":":
            raise SpanError(f"expected ':' at byte {i}")
        i = _skip(data, _value(data, _skip(data, i + 1), f"{pointer}/{escape(key)}", spans))
        if data[i : i + 1] == b"}":
            return i + 1
        if data[i : i + 1] != b",":
            raise SpanError(f"expected ',' or '}}' at byte {i}")
        i = _skip(data, i + 1)


def _array(data: bytes, i: int, pointer: str, spans: dict[str, tuple[int, int]]) -> int:
    i = _skip(data, i + 1)
    if data[i : i + 1] == b"]":
        return i + 1
    index = 0
    while True:
        i = _skip(data, _value(data, i, f"{pointer}/{index}", spans))
        index += 1
        if data[i : i + 1] == b"]":
            return i + 1
        if data[i : i + 1] != b",":
            raise SpanError(f"expected ',' or ']' at byte {i}")
        i = _skip(data, i + 1)


def _string_end(data: bytes, i: int) -> int:
    if data[i : i + 1] != b'"':
        raise SpanError(f"expected a string at byte {i}")
    i += 1
    while i < len(data):
        if data[i] == ord("\\"):
            i += 2
            continue
        if data[i] == ord('"'):
            return i + 1
        i += 1
    raise SpanError("unterminated string")


def _unescape_json(raw: str) -> str:
    return str(json.loads(f'"{raw}"')) if "\\" in raw else raw


def token_evidence(span: tuple[int, int], tokens: Sequence[TokenLogprob]) -> TokenEvidence | None:
    """Probabilities of the tokens that produced the bytes in ``span`` (an empty string's span
    borrows the tokens around it, which chose to close it)."""
    start, end = span
    if end == start:
        start, end = start - 1, end + 1
    overlapping = [t for t in tokens if t.start < end and t.end > start]
    if not overlapping:
        return None
    probabilities = [math.exp(t.logprob) for t in overlapping]
    free = [p for p in probabilities if p < FORCED] or probabilities
    return TokenEvidence(min=min(free), mean=sum(free) / len(free), tokens=len(free))
