"""Schema patterns run in bounded time: RE2 where it can, time-limited backtracking where it cannot;
the validator used on extracted data matches with them, never with Python's ``re``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from app.extraction.service import validation_findings
from app.schema.compiled import compile_schema
from app.schema.patterns import PatternError, SchemaValidator, compile_pattern, pattern_engines
from app.schema.walk import iter_subschemas

EXPONENTIAL = r"^(\d+)+$"
"""Python's ``re`` needs about 2**n steps to refuse n digits followed by a letter."""
HOSTILE_VALUE = "1" * 40 + "x"
LOOKAHEAD_BLOWUP = r"^(a|a)*(?!b)$"
"""Needs backtracking (RE2 has no lookahead) and blows up on ``"a" * n + "c"``."""


def test_a_pattern_re2_can_express_runs_on_re2() -> None:
    pattern = compile_pattern(EXPONENTIAL)
    assert (pattern.engine, pattern.reason) == ("re2", None)
    assert pattern.search("12345")
    assert not pattern.search(HOSTILE_VALUE)


def test_search_finds_a_match_anywhere_as_json_schema_says() -> None:
    assert compile_pattern("[0-9]{3}").search("INV-123-X")
    assert not compile_pattern("^[0-9]{3}$").search("INV-123")


def test_lookaround_and_backreferences_fall_back_to_a_time_limited_engine() -> None:
    for source in (LOOKAHEAD_BLOWUP, r"(a)\1", r"(?<=x)y"):
        pattern = compile_pattern(source)
        assert pattern.engine == "backtracking"
        assert pattern.reason
    assert compile_pattern(r"(a)\1").search("xaay")
    # Runs out of time on this value: counted as no match, so the value goes to review.
    assert not compile_pattern(LOOKAHEAD_BLOWUP).search("a" * 40 + "c")


def test_a_pattern_neither_engine_compiles_is_an_error() -> None:
    with pytest.raises(PatternError):
        compile_pattern("(unclosed")


def test_the_validator_matches_pattern_keywords_with_the_bounded_engines() -> None:
    schema = {
        "type": "object",
        "properties": {"number": {"type": "string", "pattern": EXPONENTIAL}},
        "patternProperties": {"^x_": {"type": "integer"}},
        "additionalProperties": False,
    }
    errors = sorted(e.message for e in SchemaValidator(schema).iter_errors({"number": HOSTILE_VALUE}))
    assert errors == [f"{HOSTILE_VALUE!r} does not match {EXPONENTIAL!r}"]
    found = SchemaValidator(schema).iter_errors({"number": "7", "x_a": "text", "other": 1})
    assert sorted(e.message for e in found) == [
        "'text' is not of type 'integer'",
        "Additional properties are not allowed ('other')",
    ]
    assert SchemaValidator(schema).is_valid({"number": "42", "x_count": 3})


def test_validation_of_a_hostile_value_finishes() -> None:
    """With jsonschema's own ``re`` this needs about 2**40 steps; run in a child process so that a
    regression fails here (killed at the limit) instead of hanging the suite."""
    script = textwrap.dedent(
        f"""
        from app.extraction.service import validation_findings
        from app.schema.compiled import compile_schema
        schema = {{"type": "object", "properties": {{"n": {{"type": "string", "pattern": {EXPONENTIAL!r}}}}}}}
        print(validation_findings(compile_schema(schema), {{"n": {HOSTILE_VALUE!r}}})[0]["keyword"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "pattern", done.stderr


def test_findings_name_the_pointer_of_a_value_that_does_not_match() -> None:
    schema = {"type": "object", "properties": {"iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}"}}}
    assert validation_findings(compile_schema(schema), {"iban": "de89"}) == [
        {"pointer": "/iban", "keyword": "pattern", "message": "'de89' does not match '^[A-Z]{2}[0-9]{2}'"}
    ]


def test_every_pattern_of_a_schema_is_reported_with_its_engine() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "pattern": "^[A-Z]+$"},
            "b": {"type": "array", "items": {"type": "string", "pattern": r"(\d)\1"}},
            "c": {"type": "object", "patternProperties": {"^k/": {"type": "string"}}},
        },
    }
    uses = pattern_engines(iter_subschemas(schema))
    assert [(u.pointer, u.engine) for u in uses] == [
        ("/properties/a/pattern", "re2"),
        ("/properties/b/items/pattern", "backtracking"),
        ("/properties/c/patternProperties/^k~1", "re2"),
    ]
    with pytest.raises(PatternError) as error:
        pattern_engines(iter_subschemas({"properties": {"z": {"pattern": "(("}}}))
    assert error.value.pointer == "/properties/z/pattern"
