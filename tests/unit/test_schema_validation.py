from typing import Any

import pytest

from app.lib.errors import DocextractError
from app.registry.refs import SchemaRef, parse_ref
from app.registry.validation import SchemaLimits, validate_name, validate_schema
from app.schema.grammar import post_decoding_keywords
from tests.helpers import object_schema

LIMITS = SchemaLimits(max_bytes=4096, max_depth=12, max_properties=20)


def problem_of(schema: Any, limits: SchemaLimits = LIMITS) -> DocextractError:
    with pytest.raises(DocextractError) as caught:
        validate_schema(schema, limits)
    return caught.value


def pointers(problem: DocextractError) -> list[str]:
    return [e["pointer"] for e in problem.extra["errors"]]


def test_a_valid_schema_passes() -> None:
    validate_schema(object_schema(), LIMITS)
    validate_schema(
        {
            "type": "object",
            "$defs": {
                "party": {"type": "object", "properties": {"name": {"type": "string"}}},
                "alias": {"$ref": "#/$defs/party"},
            },
            "properties": {
                "seller": {"$ref": "#/$defs/party"},
                "buyer": {"$ref": "#/$defs/party"},
                "chain": {"$ref": "#/$defs/alias"},
                "anchored": {"$ref": "#money"},
                "amount": {"$anchor": "money", "type": "number"},
            },
        },
        LIMITS,
    )


@pytest.mark.parametrize(
    ("schema", "slug", "expected_pointers"),
    [
        ([], "invalid-schema", ["/schema"]),
        ({"type": "array", "items": {}}, "invalid-schema", ["/schema/type"]),
        ({"properties": {}}, "invalid-schema", ["/schema/type"]),
        (
            {"type": "object", "properties": {"a": {"type": "strin"}}},
            "invalid-schema",
            ["/schema/properties/a/type"],
        ),
        (
            {"type": "object", "properties": {"a": {"minLength": -1}, "b": {"required": "x"}}},
            "invalid-schema",
            ["/schema/properties/a/minLength", "/schema/properties/b/required"],
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}},
            "invalid-schema",
            ["/schema/properties/a/pattern"],
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
            "invalid-schema",
            ["/schema/$schema"],
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "schema-remote-ref",
            ["/schema/properties/a/$ref"],
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"$ref": "other.json#/x"}, "b": {"$dynamicRef": "http://x/y"}},
            },
            "schema-remote-ref",
            ["/schema/properties/a/$ref", "/schema/properties/b/$dynamicRef"],
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            "invalid-schema",
            ["/schema/properties/a/$ref"],
        ),
        (
            {"type": "object", "properties": {"a": {"$id": "https://x/a", "type": "string"}}},
            "invalid-schema",
            ["/schema/properties/a/$id"],
        ),
        (
            {"type": "object", "properties": {"me": {"$ref": "#"}}},
            "schema-recursive",
            ["/schema/properties/me/$ref"],
        ),
        (
            {
                "type": "object",
                "properties": {"node": {"$ref": "#node"}},
                "$defs": {"n": {"$anchor": "node", "type": "array", "items": {"$ref": "#/$defs/n"}}},
            },
            "schema-recursive",
            ["/schema/$defs/n/items/$ref"],
        ),
    ],
)
def test_invalid_schemas_name_each_offending_pointer(
    schema: Any, slug: str, expected_pointers: list[str]
) -> None:
    problem = problem_of(schema)
    assert problem.kind.slug == slug
    assert pointers(problem) == expected_pointers


def test_size_limit() -> None:
    big = object_schema(**{f"p{i}": {"type": "string", "description": "x" * 300} for i in range(15)})
    problem = problem_of(big)
    assert (problem.kind.slug, problem.kind.status) == ("schema-too-large", 413)


def test_depth_limit_is_checked_before_anything_recursive() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(5000):  # far beyond Python's recursion limit
        deep = {"type": "object", "properties": {"x": deep}}
    problem = problem_of(deep, SchemaLimits(max_bytes=10**7, max_depth=12, max_properties=10**6))
    assert problem.kind.slug == "schema-too-complex"
    assert pointers(problem)[0].startswith("/schema/properties/x/properties/x")


def test_property_count_limit_counts_nested_maps() -> None:
    inner = {f"i{i}": {"type": "string"} for i in range(12)}
    schema = object_schema(
        a={"type": "object", "properties": inner},
        b={"type": "array", "items": {"type": "object", "properties": inner}},
    )
    problem = problem_of(schema)
    assert problem.kind.slug == "schema-too-complex"
    assert pointers(problem) == ["/schema/properties/b/items/properties"]


@pytest.mark.parametrize("name", ["invoice", "my-schema_2", "a", "0abc"])
def test_valid_names(name: str) -> None:
    validate_name(name)


@pytest.mark.parametrize("name", ["", "Invoice", "-x", "a b", "a@1", "x" * 65, "ü"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(DocextractError) as caught:
        validate_name(name)
    assert caught.value.kind.slug == "invalid-schema-name"


def test_refs() -> None:
    assert parse_ref("invoice") == SchemaRef("invoice")
    assert parse_ref("invoice@12") == SchemaRef("invoice", 12)
    for bad in ["invoice@", "invoice@x", "invoice@0", "invoice@-1", "invoice@1.5"]:
        with pytest.raises(DocextractError) as caught:
            parse_ref(bad)
        assert caught.value.kind.slug == "invalid-schema-reference"
    with pytest.raises(DocextractError):
        parse_ref("invoice@2", allow_version=False)


def test_post_decoding_keywords_are_listed_with_pointers() -> None:
    schema = object_schema(
        tags={"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        iban={"type": "string", "pattern": "^[A-Z]{2}", "maxLength": 34},
        code={"type": "string", "pattern": "^[A-Z]+$"},
        qty={"type": "number", "multipleOf": 0.5},
        party={
            "type": "object",
            "allOf": [{"required": ["name"]}],
            "properties": {"name": {"not": {"const": ""}}},
        },
    )
    found = {(k["pointer"], k["keyword"]) for k in post_decoding_keywords(schema)}
    assert found == {
        ("/properties/tags/uniqueItems", "uniqueItems"),
        ("/properties/iban/pattern", "pattern"),
        ("/properties/qty/multipleOf", "multipleOf"),
        ("/properties/party/allOf", "allOf"),
        ("/properties/party/properties/name/not", "not"),
    }
    assert post_decoding_keywords(object_schema()) == []
