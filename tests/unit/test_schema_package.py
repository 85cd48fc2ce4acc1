"""app.schema: one ``$ref`` resolution, ``admits_null``, and a schema compiled once per content."""

from __future__ import annotations

from typing import Any

import pytest

from app.schema.checks import CheckError
from app.schema.compiled import RecursiveSchemaError, compile_schema
from app.schema.tree import SchemaTree

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "money amount": {"type": "number"},
        "code/id": {"$anchor": "code", "type": "string"},
        "party": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
    "properties": {
        "total": {"$ref": "#/$defs/money%20amount"},
        "reference": {"$ref": "#code"},
        "seller": {"$ref": "#/$defs/party", "description": "who sells"},
        "note": {"type": ["string", "null"]},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/party"}},
    },
    "required": ["total", "note"],
    "x-checks": [{"name": "total_positive", "expr": "total >= 0"}],
}


def test_references_resolve_by_pointer_anchor_and_percent_encoding() -> None:
    tree = SchemaTree(SCHEMA)
    properties = tree.properties(SCHEMA)
    assert tree.resolve(properties["total"]) == {"type": "number"}
    assert tree.resolve(properties["reference"])["type"] == "string"
    assert tree.target("#/$defs/code~1id") == SCHEMA["$defs"]["code/id"]
    assert tree.target("#") is SCHEMA


def test_keywords_beside_a_reference_override_its_target() -> None:
    tree = SchemaTree(SCHEMA)
    seller = tree.resolve(SCHEMA["properties"]["seller"])
    assert seller["description"] == "who sells" and "name" in seller["properties"]


def test_a_reference_that_leads_nowhere_resolves_to_none() -> None:
    tree = SchemaTree(SCHEMA)
    assert tree.resolve({"$ref": "#/$defs/missing"}) is None
    assert tree.object({"$ref": "#/$defs/missing"}) == {}


def test_items_and_branches_are_read_through_references() -> None:
    schema = {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}], "$defs": {"a": {"type": "string"}}}
    tree = SchemaTree(schema)
    assert [b.get("type") for b in tree.branches(schema)] == [None, "string", "null"]
    assert tree.items(SCHEMA["properties"]["lines"]) == {"$ref": "#/$defs/party"}


def test_admits_null() -> None:
    tree = SchemaTree(SCHEMA)
    properties = SCHEMA["properties"]
    assert tree.admits_null(properties["note"])
    assert not tree.admits_null(properties["total"])
    assert tree.admits_null({})


def test_compiled_once_per_content_whatever_its_layout() -> None:
    first = compile_schema(SCHEMA)
    reordered = dict(reversed(list(SCHEMA.items())))
    assert compile_schema(reordered) is first
    assert compile_schema(SCHEMA, first.sha256) is first
    assert compile_schema({**SCHEMA, "title": "other"}) is not first


def test_compiled_schema_holds_checks_review_skeleton_and_decoding_schema() -> None:
    compiled = compile_schema(SCHEMA)
    assert [c.name for c in compiled.parsed_checks()] == ["total_positive"]
    assert compiled.review.require == ("/total",)
    assert compiled.skeleton == {
        "total": "",
        "reference": "",
        "seller": {"name": ""},
        "note": "",
        "lines": [{"name": ""}],
    }
    assert compiled.decoding_schema["properties"]["total"] == {"type": ["number", "null"]}
    assert compiled.validator.is_valid({"total": 1, "note": None})


def test_invalid_checks_are_kept_as_the_error() -> None:
    compiled = compile_schema({"type": "object", "x-checks": [{"name": "x", "expr": "nope == 1"}]})
    assert compiled.checks == []
    with pytest.raises(CheckError):
        compiled.parsed_checks()


def test_a_recursive_schema_has_no_skeleton() -> None:
    compiled = compile_schema({"type": "object", "properties": {"child": {"$ref": "#"}}})
    assert compiled.ref_cycle == ("properties", "child", "$ref")
    with pytest.raises(RecursiveSchemaError):
        _ = compiled.skeleton


def test_leaves_carry_their_kind_and_aliases_through_references_and_arrays() -> None:
    compiled = compile_schema(
        {
            "type": "object",
            "$defs": {"money": {"type": "number"}},
            "properties": {
                "invoice_date": {"type": "string", "format": "date", "x-aliases": {"de": ["Rechnungsdatum"]}},
                "currency": {"type": "string"},
                "total": {"$ref": "#/$defs/money"},
                "supplier_vat": {"type": "string", "x-aliases": ["USt-IdNr."]},
                "lines": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"amount": {"$ref": "#/$defs/money"}}},
                },
            },
        }
    )
    assert {path: (leaf.kind, leaf.aliases) for path, leaf in compiled.leaves.items()} == {
        ("invoice_date",): ("date", ("Rechnungsdatum",)),
        ("currency",): ("currency", ()),
        ("total",): ("amount", ()),
        ("supplier_vat",): ("vat_id", ("USt-IdNr.",)),
        ("lines", "*", "amount"): ("amount", ()),
    }
    # A place the schema does not describe as a scalar is read from the subschema the data reached.
    assert compiled.kind_of(("lines",), "lines", {"type": "number"}) == "amount"
