"""Prompt, decoding schema, value spans and token evidence, page merge, validation findings."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.engines.base import Alternative, TokenLogprob
from app.extraction.merge import PageOutput, merge_pages
from app.extraction.prompt import EXTRACTION_LINE, extraction_prompt
from app.extraction.service import validation_findings
from app.extraction.spans import SpanError, TokenEvidence, leaf_spans, token_evidence
from app.registry.builtins import default_builtin_dir, read_builtin_schemas
from app.schema.compiled import compile_schema
from app.schema.decoding import decoding_schema
from app.schema.skeleton import skeleton
from app.trust.sources import Rival

INVOICE = read_builtin_schemas(default_builtin_dir())["invoice"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "party": {"type": "object", "properties": {"name": {"type": "string"}, "vat": {"type": "string"}}}
    },
    "properties": {
        "number": {"type": "string", "pattern": "^INV", "maxLength": 20, "description": "Invoice number"},
        "seller": {"$ref": "#/$defs/party"},
        "currency": {"enum": ["EUR", "USD"]},
        "kind": {"const": "invoice"},
        "total": {"type": "number", "minimum": 0, "x-normalize": "amount"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["amount"],
                "properties": {"text": {"type": "string"}, "amount": {"type": "number"}},
            },
        },
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "paid": {"type": ["boolean", "null"]},
        "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["number", "total"],
    "allOf": [{"required": ["seller"]}],
}


def test_prompt_is_glm_ocrs_trained_format() -> None:
    prompt = extraction_prompt(SCHEMA)
    line, body = prompt.split("\n", 1)
    assert line == EXTRACTION_LINE
    assert json.loads(body) == {
        "number": "",
        "seller": {"name": "", "vat": ""},
        "currency": "",
        "kind": "",
        "total": "",
        "lines": [{"text": "", "amount": ""}],
        "tags": [""],
        "paid": "",
        "either": "",
    }
    assert list(json.loads(body)) == list(SCHEMA["properties"])  # schema order


def test_builtin_invoice_skeleton_nests_parties_and_line_items() -> None:
    shape = skeleton(INVOICE)
    assert shape["seller"]["vat_id"] == "" and shape["line_items"][0]["unit_price"] == ""


def test_decoding_schema_lets_every_leaf_be_null_and_keeps_order() -> None:
    decoded = decoding_schema(SCHEMA)
    Draft202012Validator.check_schema(decoded)
    props = decoded["properties"]
    assert list(props) == list(SCHEMA["properties"]) and decoded["required"] == list(props)
    assert decoded["additionalProperties"] is False
    assert props["number"] == {"type": ["string", "null"], "pattern": "^INV", "description": "Invoice number"}
    assert props["seller"]["properties"]["name"]["type"] == ["string", "null"]  # $ref inlined
    assert props["currency"]["enum"] == ["EUR", "USD", None]
    assert props["kind"]["anyOf"] == [{"const": "invoice"}, {"type": "null"}]
    assert props["total"] == {"type": ["number", "null"]}  # bound and x- keyword dropped
    assert "minItems" not in props["lines"] and props["lines"]["items"]["required"] == ["text", "amount"]
    assert "uniqueItems" not in props["tags"] and "allOf" not in decoded
    assert props["paid"]["type"] == ["boolean", "null"]
    assert {"type": "null"} in props["either"]["anyOf"] and "oneOf" not in props["either"]
    # Nulls everywhere are acceptable to the grammar; invented values are not forced.
    everything_null = dict.fromkeys(props) | {
        "seller": {"name": None, "vat": None},
        "lines": [],
        "tags": [],
    }
    Draft202012Validator(decoded).validate(everything_null)
    with pytest.raises(Exception, match="Additional properties"):
        Draft202012Validator(decoded).validate({**everything_null, "invented": 1})


def test_decoding_schema_of_every_builtin_is_valid() -> None:
    for schema in read_builtin_schemas(default_builtin_dir()).values():
        Draft202012Validator.check_schema(decoding_schema(schema))


def test_leaf_spans_are_byte_exact() -> None:
    text = '{"name": "Müller \\"GmbH\\"", "lines": [{"amount": 12.5}, {"amount": null}], "ok": true, "e": []}'
    spans = leaf_spans(text)
    raw = text.encode()
    assert {p: raw[s:e].decode() for p, (s, e) in spans.items()} == {
        "/name": 'Müller \\"GmbH\\"',
        "/lines/0/amount": "12.5",
        "/lines/1/amount": "null",
        "/ok": "true",
    }
    with pytest.raises(SpanError):
        leaf_spans('{"a": 1} trailing')
    with pytest.raises(SpanError):
        leaf_spans('{"a": "unterminated')


def _tokens(text: str, pieces: list[tuple[str, float]]) -> list[TokenLogprob]:
    out, at = [], 0
    for piece, prob in pieces:
        size = len(piece.encode())
        out.append(TokenLogprob(piece, at, at + size, math.log(prob)))
        at += size
    assert at == len(text.encode())
    return out


def test_token_evidence_uses_the_values_free_tokens() -> None:
    text = '{"n": "INV-7", "t": null}'
    tokens = _tokens(
        text, [('{"n": "', 1.0), ("INV", 0.9), ("-7", 0.6), ('", "t": ', 1.0), ("null", 0.8), ("}", 1.0)]
    )
    spans = leaf_spans(text)
    value = token_evidence(spans["/n"], tokens)
    assert value is not None and value.tokens == 2
    assert (value.min, value.mean) == pytest.approx((0.6, 0.75))
    null = token_evidence(spans["/t"], tokens)
    assert null is not None and null.tokens == 1
    assert (null.min, null.mean) == pytest.approx((0.8, 0.8))
    forced = _tokens('{"n": "A"}', [('{"n": "', 1.0), ("A", 1.0), ('"}', 1.0)])
    assert token_evidence(leaf_spans('{"n": "A"}')["/n"], forced) == TokenEvidence(1.0, 1.0, 1)


def test_merge_takes_the_surest_scalar_and_concatenates_items_once() -> None:
    header_row = {"text": "Description", "amount": None}
    page1 = PageOutput(
        1,
        {"number": "INV-7", "total": None, "lines": [header_row, {"text": "A", "amount": 1}]},
        {"/number": TokenEvidence(0.6, 0.7, 2)},
    )
    page2 = PageOutput(
        2,
        {"number": "INV-1", "total": 9.5, "lines": [header_row, {"text": "B", "amount": 2}]},
        {
            "/number": TokenEvidence(0.95, 0.97, 2),
            "/total": TokenEvidence(0.9, 0.9, 1),
            "/lines/1/amount": TokenEvidence(0.8, 0.8, 1),
        },
    )
    page3 = PageOutput(3, {"number": None, "total": None, "lines": []}, {})
    data, sources = merge_pages([page1, page2, page3])
    assert data == {
        "number": "INV-1",
        "total": 9.5,
        "lines": [header_row, {"text": "A", "amount": 1}, {"text": "B", "amount": 2}],
    }
    assert sources["/number"].page == 2 and sources["/total"].page == 2  # type: ignore[union-attr]
    assert sources["/lines/2/amount"].page == 2 and sources["/lines/2/amount"].pointer == "/lines/1/amount"  # type: ignore[union-attr]
    assert sources["/lines/0/text"].page == 1  # type: ignore[union-attr]
    # Page 1's other invoice number is the chosen one's rival, at its certainty; a list is none.
    assert sources["/number"].rivals == (Rival("INV-7", 0.6, 1),)  # type: ignore[union-attr]
    assert sources["/lines/0/text"].rivals == ()  # type: ignore[union-attr]


def test_the_engines_runner_ups_of_the_chosen_page_are_rivals_best_first() -> None:
    page1 = PageOutput(
        1, {"total": 12.0}, {"/total": TokenEvidence(0.5, 0.5, 1)}, {"/total": [Alternative(11.0, 0.4)]}
    )
    page2 = PageOutput(
        2,
        {"total": 15.0},
        {"/total": TokenEvidence(0.8, 0.8, 1)},
        {"/total": [Alternative(14.0, 0.3), Alternative(13.0, 0.2)]},
    )
    data, sources = merge_pages([page1, page2])
    assert data == {"total": 15.0}
    assert sources["/total"].rivals == (  # type: ignore[union-attr]
        Rival(12.0, 0.5, 1),
        Rival(14.0, 0.3, 2),
        Rival(13.0, 0.2, 2),
    )


def test_validation_findings_name_pointers_and_keywords() -> None:
    data: dict[str, Any] = {"number": "X-1", "total": None, "seller": {"name": "A", "vat": None}, "lines": []}
    findings = {(f["pointer"], f["keyword"]) for f in validation_findings(compile_schema(SCHEMA), data)}
    assert ("/number", "pattern") in findings and ("/total", "type") in findings
    missing = validation_findings(compile_schema(SCHEMA), {"seller": {}})
    assert {(f["pointer"], f["keyword"]) for f in missing} >= {
        ("/number", "required"),
        ("/total", "required"),
    }
    assert ("/lines", "minItems") in findings
    assert validation_findings(compile_schema({"type": "object"}), {}) == []


def test_null_is_absent_unless_the_schema_admits_null() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": ["string", "null"]},
            "items": {"type": "array", "items": {"$ref": "#/$defs/row"}},
        },
        "$defs": {
            "row": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
        },
    }
    data = {"a": None, "b": None, "items": [{"x": None, "y": 2}]}
    from app.extraction.service import drop_absent

    assert drop_absent(compile_schema(schema), data) == {"b": None, "items": [{"y": 2}]}


def test_formats_the_grammar_does_not_know_are_checked_after_decoding() -> None:
    from app.schema.grammar import post_decoding_keywords

    schema = {
        "type": "object",
        "properties": {
            "iban": {"type": "string", "format": "iban"},
            "day": {"type": "string", "format": "date"},
        },
    }
    decoded = decoding_schema(schema)["properties"]
    assert "format" not in decoded["iban"] and decoded["day"]["format"] == "date"
    assert [(k["pointer"], k["keyword"]) for k in post_decoding_keywords(schema)] == [
        ("/properties/iban/format", "format")
    ]


def test_grammar_errors_are_found_before_extraction() -> None:
    pytest.importorskip("llguidance")
    from app.schema.decoding import grammar_error

    assert grammar_error(INVOICE) is None
    assert (
        grammar_error({"type": "object", "properties": {"a": {"type": "string", "format": "iban"}}}) is None
    )
    reason = grammar_error({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)y"}}})
    assert reason is not None and "look-behind" in reason
