"""Regular expressions from schemas, matched against text from documents, in bounded time.

A schema's ``pattern`` comes from an admin, but the text it is matched against comes from whoever
sends a document, so Python's backtracking ``re`` (which jsonschema uses) lets one document stall a
worker for minutes with a pattern like ``^(\\d+)+$``. Here every pattern runs on RE2, whose matching
time is linear in the text. What RE2 cannot express (backreferences, lookaround) runs on the
``regex`` package with a time limit and the GIL released, so it can slow its own document only;
a match that runs out of time counts as no match (the value then fails validation and goes to
review). Which engine a pattern gets is decided once and reported at registration
(:func:`pattern_engines`).

:data:`SchemaValidator` is Draft 2020-12 with ``pattern``, ``patternProperties`` and
``additionalProperties`` matched this way; every validation of extracted data uses it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import re2
import regex
from jsonschema import Draft202012Validator, ValidationError, validators

from app.lib.jsonpointer import pointer as to_pointer

PatternEngine = Literal["re2", "backtracking"]
MATCH_TIMEOUT_S = 0.1
"""Longest a backtracking pattern may search one string; RE2 needs no limit."""
MAX_PATTERN_MEMORY = 8 << 20
"""RE2's memory for one compiled pattern (its default); a pattern that needs more is refused."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 logs every refusal to stderr; refusing is expected here
_RE2_OPTIONS.max_mem = MAX_PATTERN_MEMORY


class PatternError(ValueError):
    """Neither engine compiles the pattern (``pointer``: where, when known)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


@dataclass(frozen=True)
class UserPattern:
    source: str
    engine: PatternEngine
    compiled: Any
    reason: str | None = None
    """Why RE2 could not take it (for ``backtracking`` patterns)."""

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in ``text`` (JSON Schema's semantics); a
        backtracking search that runs out of time is no match."""
        if self.engine == "re2":
            return self.compiled.search(text) is not None
        try:
            return self.compiled.search(text, timeout=MATCH_TIMEOUT_S, concurrent=True) is not None
        except TimeoutError:
            return False


@functools.lru_cache(maxsize=2048)
def compile_pattern(source: str) -> UserPattern:
    """The pattern on RE2 when it can express it, else on ``regex`` with a time limit."""
    try:
        return UserPattern(source, "re2", re2.compile(source, _RE2_OPTIONS))
    except re2.error as exc:
        reason = _message(exc)
    try:
        return UserPattern(source, "backtracking", regex.compile(source), reason)
    except regex.error as exc:
        raise PatternError("", f"{source!r} is not a regular expression: {exc}") from exc


def _message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


def _matches(source: str, text: str) -> bool:
    try:
        return compile_pattern(source).search(text)
    except PatternError:
        return False  # refused at registration; a schema given directly may still hold one


def _pattern(validator: Any, source: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _matches(source, instance):
        yield ValidationError(f"{instance!r} does not match {source!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for source, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(source, key):
                yield from validator.descend(value, subschema, path=key, schema_path=source)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = sorted(
        (k for k in instance if k not in declared and not any(_matches(p, k) for p in patterns)), key=str
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(repr, extras))})")


SchemaValidator = validators.extend(  # type: ignore[no-untyped-call]  # jsonschema's own signature
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
"""Draft 2020-12 whose patterns run in bounded time. ``unevaluatedProperties`` next to
``patternProperties`` would still match with ``re``: the registry refuses that combination."""


@dataclass(frozen=True)
class PatternUse:
    pointer: str
    engine: PatternEngine
    reason: str | None


def pattern_engines(subschemas: Iterable[tuple[tuple[str | int, ...], dict[str, Any]]]) -> list[PatternUse]:
    """Every pattern among the schema objects (``pattern`` values and ``patternProperties`` keys)
    and the engine that runs it; raises :class:`PatternError` naming the first neither compiles."""
    uses: list[PatternUse] = []
    for path, sub in subschemas:
        found: list[tuple[tuple[str | int, ...], str]] = []
        if isinstance(sub.get("pattern"), str):
            found.append(((*path, "pattern"), sub["pattern"]))
        if isinstance(sub.get("patternProperties"), dict):
            found += [((*path, "patternProperties", key), key) for key in sub["patternProperties"]]
        for where, source in found:
            try:
                compiled = compile_pattern(source)
            except PatternError as exc:
                raise PatternError(to_pointer(where), str(exc)) from exc
            uses.append(PatternUse(to_pointer(where), compiled.engine, compiled.reason))
    return uses
