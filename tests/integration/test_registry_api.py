"""The schema registry over HTTP, on SQLite and on PostgreSQL (``database_url`` is parametrised)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers import assert_problem, object_schema, stored_state

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def create(
    client: Client,
    headers: dict[str, str],
    name: str = "supplier_invoice",
    schema: dict[str, Any] | None = None,
    **extra: Any,
) -> Any:
    return await client.post(
        "/schemas",
        json={"name": name, "schema": schema or object_schema(), **extra},
        headers=headers,
    )


async def test_create_then_read_every_way(
    client: Client, db: Sessions, admin_headers: dict[str, str], extract_headers: dict[str, str]
) -> None:
    schema = object_schema(
        number={"type": "string", "description": "Invoice number."},
        iban={"type": "string", "pattern": "^[A-Z]{2}", "maxLength": 34},
    )
    created = await create(client, admin_headers, schema=schema, description="From suppliers")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["version"], body["ref"], body["latest_version"]) == (
        "supplier_invoice",
        1,
        "supplier_invoice@1",
        1,
    )
    assert body["schema"] == schema
    assert list(body["schema"]["properties"]) == ["number", "iban"]  # key order is kept
    assert body["description"] == "From suppliers"
    assert body["source"] == "api"
    assert len(body["sha256"]) == 64
    assert created.headers["location"] == "/schemas/supplier_invoice@1"
    assert body["post_decoding_keywords"] == [
        {
            "pointer": "/properties/iban/pattern",
            "keyword": "pattern",
            "reason": "pattern combined with a length limit is validated after decoding",
        }
    ]
    for path in [
        "/schemas/supplier_invoice",
        "/schemas/supplier_invoice@1",
        "/schemas/supplier_invoice/versions/1",
    ]:
        read = await client.get(path, headers=extract_headers)
        assert read.status_code == 200, (path, read.text)
        assert read.json() == body


async def test_versions_are_immutable_and_numbered(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    await create(client, admin_headers, description="From suppliers")
    v2_schema = object_schema(total={"type": "number"}, due={"type": "string", "format": "date"})
    v2 = await client.post(
        "/schemas/supplier_invoice/versions", json={"schema": v2_schema}, headers=admin_headers
    )
    assert v2.status_code == 201 and v2.json()["version"] == 2
    assert v2.json()["description"] == "From suppliers"  # kept when a version gives none
    v1 = (await client.get("/schemas/supplier_invoice@1", headers=admin_headers)).json()
    assert v1["schema"] == object_schema() and v1["latest_version"] == 2
    latest = (await client.get("/schemas/supplier_invoice", headers=admin_headers)).json()
    assert latest["version"] == 2 and latest["schema"] == v2_schema
    listing = (await client.get("/schemas/supplier_invoice/versions", headers=admin_headers)).json()
    assert [v["version"] for v in listing["items"]] == [1, 2] and listing["total"] == 2


async def test_identical_resubmission_returns_the_existing_version(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    schema = object_schema(a={"type": "string", "description": "A"}, b={"type": "number"})
    await create(client, admin_headers, schema=schema)
    reordered = json.loads(json.dumps(schema, indent=3))
    reordered = {k: reordered[k] for k in reversed(list(reordered))}
    before = await stored_state(db)
    again = await client.post(
        "/schemas/supplier_invoice/versions",
        content=json.dumps({"schema": reordered}, indent=5).encode(),
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["version"] == 1
    assert await stored_state(db) == before


async def test_list_is_paginated_and_shows_latest_versions(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    for name in ["zeta", "alpha", "mid"]:
        await create(client, admin_headers, name=name)
    await client.post(
        "/schemas/mid/versions",
        json={"schema": object_schema(x={"type": "string"})},
        headers=admin_headers,
    )
    first = (await client.get("/schemas?limit=3", headers=admin_headers)).json()
    names = [item["name"] for item in first["items"]]
    assert names == sorted(names) and first["limit"] == 3 and first["offset"] == 0
    assert first["total"] == 3 + 4  # ours and the four built-ins
    everything: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = (await client.get(f"/schemas?limit=3&offset={offset}", headers=admin_headers)).json()
        if not page["items"]:
            break
        everything += page["items"]
        offset += 3
    assert [i["name"] for i in everything] == sorted(
        ["zeta", "alpha", "mid", "invoice", "receipt", "purchase_order", "form"]
    )
    assert next(i for i in everything if i["name"] == "mid")["version"] == 2


async def test_deprecation_keeps_versions_readable(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    await create(client, admin_headers)
    gone = await client.delete("/schemas/supplier_invoice", headers=admin_headers)
    assert gone.status_code == 200 and gone.json()["deprecated"] is True
    assert (await client.get("/schemas/supplier_invoice@1", headers=admin_headers)).status_code == 200
    listed = (await client.get("/schemas", headers=admin_headers)).json()
    assert "supplier_invoice" not in [i["name"] for i in listed["items"]]
    listed = (await client.get("/schemas?include_deprecated=true", headers=admin_headers)).json()
    assert "supplier_invoice" in [i["name"] for i in listed["items"]]
    assert (await client.delete("/schemas/supplier_invoice", headers=admin_headers)).status_code == 200

    before = await stored_state(db)
    refused = await client.post(
        "/schemas/supplier_invoice/versions",
        json={"schema": object_schema(y={"type": "string"})},
        headers=admin_headers,
    )
    assert_problem(refused, 409, "schema-deprecated")
    assert await stored_state(db) == before

    restored = await client.post("/schemas/supplier_invoice/restore", headers=admin_headers)
    assert restored.status_code == 200 and restored.json()["deprecated"] is False
    added = await client.post(
        "/schemas/supplier_invoice/versions",
        json={"schema": object_schema(y={"type": "string"})},
        headers=admin_headers,
    )
    assert added.status_code == 201 and added.json()["version"] == 2


def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


BAD_SCHEMAS = [
    pytest.param(
        {"type": "object", "properties": {"a": {"type": "text"}}},
        422,
        "invalid-schema",
        id="not-a-json-schema",
    ),
    pytest.param({"type": "array"}, 422, "invalid-schema", id="non-object-root"),
    pytest.param(
        object_schema(a={"$ref": "https://evil.example/s.json"}),
        422,
        "schema-remote-ref",
        id="remote-ref",
    ),
    pytest.param(object_schema(a={"$ref": "#/$defs/nope"}), 422, "invalid-schema", id="dangling-ref"),
    pytest.param(
        object_schema(a={"type": "string", "description": "d" * 300_000}),
        413,
        "schema-too-large",
        id="oversized",
    ),
    pytest.param(object_schema(a=_deep(40)), 422, "schema-too-complex", id="over-deep"),
    pytest.param(
        object_schema(**{f"p{i}": {} for i in range(1001)}),
        422,
        "schema-too-complex",
        id="too-many-properties",
    ),
    pytest.param(
        {"type": "object", "maxProperties": 2**60},
        422,
        "invalid-schema",
        id="beyond-json-precision",
    ),
    pytest.param(object_schema(a={"$ref": "#"}), 422, "schema-recursive", id="ref-to-root"),
    pytest.param(
        {
            **object_schema(a={"$ref": "#/$defs/n"}),
            "$defs": {"n": object_schema(child={"$ref": "#/$defs/n"})},
        },
        422,
        "schema-recursive",
        id="ref-to-itself",
    ),
    pytest.param(
        {
            **object_schema(a={"$ref": "#/$defs/a"}),
            "$defs": {"a": object_schema(b={"$ref": "#/$defs/b"}), "b": {"items": {"$ref": "#/$defs/a"}}},
        },
        422,
        "schema-recursive",
        id="ref-loop",
    ),
    pytest.param(
        object_schema(a={"type": "string", "pattern": "(?<"}), 422, "invalid-schema", id="bad-pattern"
    ),
    pytest.param(
        {**object_schema(), "patternProperties": {"^x": {}}, "unevaluatedProperties": False},
        422,
        "schema-not-supported",
        id="unevaluated-with-pattern-properties",
    ),
]
BAD_BODIES = [
    pytest.param(b'{"name": "y", "schema": {', 400, "bad-request", id="malformed-json"),
    pytest.param(b"[1, 2]", 400, "bad-request", id="array-body"),
    pytest.param(b'{"schema": {"type": "object"}}', 400, "bad-request", id="missing-name"),
    pytest.param(b'{"name": "y", "schema": "type: object"}', 400, "bad-request", id="schema-not-an-object"),
    pytest.param(
        b'{"name": "y", "schema": {"type": "object"}, "extra": 1}',
        400,
        "bad-request",
        id="unknown-field",
    ),
    pytest.param(
        b'{"name": "Bad Name", "schema": {"type": "object"}}',
        422,
        "invalid-schema-name",
        id="bad-name",
    ),
    pytest.param(b'{"name": "x", "schema": {"type": "object"}}', 409, "schema-exists", id="duplicate-name"),
    pytest.param(
        b'{"name": "y", "schema": ' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001,
        400,
        "bad-request",
        id="nested-beyond-the-parser",
    ),
    pytest.param(
        b'{"name": "y", "schema": {"description": "' + b"x" * 1_100_000 + b'"}}',
        413,
        "request-too-large",
        id="over-the-server-limit",
    ),
]


async def _post_raw(client: Client, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return await client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize(("schema", "status", "slug"), BAD_SCHEMAS)
async def test_bad_schemas_are_refused_and_change_nothing(
    client: Client, db: Sessions, admin_headers: dict[str, str], schema: Any, status: int, slug: str
) -> None:
    await create(client, admin_headers, name="x")
    before = await stored_state(db)
    for path, body in [
        ("/schemas", {"name": "y", "schema": schema}),
        ("/schemas/x/versions", {"schema": schema}),
    ]:
        response = await _post_raw(client, path, json.dumps(body).encode(), admin_headers)
        problem = assert_problem(response, status, slug)
        assert problem["instance"] == path
        assert problem["errors"] and all(e["pointer"].startswith("/schema") for e in problem["errors"])
    assert await stored_state(db) == before


async def test_a_reference_cycle_is_refused_at_the_ref_that_closes_it(
    client: Client, admin_headers: dict[str, str]
) -> None:
    schema = {
        **object_schema(a={"$ref": "#/$defs/a"}),
        "$defs": {"a": object_schema(b={"$ref": "#/$defs/b"}), "b": {"items": {"$ref": "#/$defs/a"}}},
    }
    problem = assert_problem(await create(client, admin_headers, schema=schema), 422, "schema-recursive")
    assert problem["errors"] == [
        {"pointer": "/schema/$defs/b/items/$ref", "detail": "closes a reference cycle"}
    ]


async def test_registration_reports_which_engine_runs_each_pattern(
    client: Client, admin_headers: dict[str, str]
) -> None:
    schema = object_schema(
        number={"type": "string", "pattern": r"^(\d+)+$"},
        # Pattern-keyed properties are checked after decoding only, so the grammar (which has no
        # lookaround either) accepts them.
        codes={"type": "object", "patternProperties": {r"^(?!XX)[A-Z]{2}$": {"type": "string"}}},
    )
    created = await create(client, admin_headers, schema=schema)
    assert created.status_code == 201, created.text
    patterns = created.json()["patterns"]
    assert [(p["pointer"], p["engine"]) for p in patterns] == [
        ("/properties/number/pattern", "re2"),
        ("/properties/codes/patternProperties/^(?!XX)[A-Z]{2}$", "backtracking"),
    ]
    assert patterns[0]["reason"] is None and "(?!" in patterns[1]["reason"]
    read = await client.get("/schemas/supplier_invoice@1", headers=admin_headers)
    assert read.json()["patterns"] == patterns


@pytest.mark.parametrize(("body", "status", "slug"), BAD_BODIES)
async def test_bad_bodies_are_refused_and_change_nothing(
    client: Client, db: Sessions, admin_headers: dict[str, str], body: bytes, status: int, slug: str
) -> None:
    await create(client, admin_headers, name="x")
    before = await stored_state(db)
    assert_problem(await _post_raw(client, "/schemas", body, admin_headers), status, slug)
    assert await stored_state(db) == before


async def test_bad_body_errors_point_at_the_field(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    missing = await _post_raw(client, "/schemas", b'{"name": "y"}', admin_headers)
    assert [e["pointer"] for e in assert_problem(missing, 400, "bad-request")["errors"]] == ["/schema"]
    wrong = await _post_raw(client, "/schemas", b'{"name": 5, "schema": {}}', admin_headers)
    assert [e["pointer"] for e in assert_problem(wrong, 400, "bad-request")["errors"]] == ["/name"]


@pytest.mark.parametrize(
    ("method", "path", "status", "slug"),
    [
        ("get", "/schemas/nope", 404, "schema-not-found"),
        ("get", "/schemas/nope@1", 404, "schema-not-found"),
        ("get", "/schemas/x@2", 404, "schema-version-not-found"),
        ("get", "/schemas/x/versions/7", 404, "schema-version-not-found"),
        ("get", "/schemas/x@notanumber", 400, "invalid-schema-reference"),
        ("get", "/schemas/x@0", 400, "invalid-schema-reference"),
        ("get", "/schemas/x/versions/one", 400, "invalid-schema-reference"),
        ("get", "/schemas/x@1/versions", 400, "invalid-schema-reference"),
        ("get", "/schemas/nope/versions", 404, "schema-not-found"),
        ("delete", "/schemas/x@1", 400, "invalid-schema-reference"),
        ("delete", "/schemas/nope", 404, "schema-not-found"),
        ("post", "/schemas/nope/restore", 404, "schema-not-found"),
        ("get", "/schemas?limit=0", 400, "bad-request"),
        ("get", "/schemas?limit=abc", 400, "bad-request"),
        ("get", "/no/such/route", 404, "not-found"),
        ("put", "/schemas/x", 405, "method-not-allowed"),
    ],
)
async def test_unknown_or_malformed_addresses(
    client: Client,
    db: Sessions,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    status: int,
    slug: str,
) -> None:
    await create(client, admin_headers, name="x")
    before = await stored_state(db)
    assert_problem(await getattr(client, method)(path, headers=admin_headers), status, slug)
    assert await stored_state(db) == before


async def test_versions_of_an_unknown_schema(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/schemas/nope/versions", json={"schema": object_schema()}, headers=admin_headers
    )
    assert_problem(response, 404, "schema-not-found")


async def test_json_routes_refuse_other_media_types(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/schemas",
        content=b"name=x",
        headers={**admin_headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_a_schema_the_grammar_cannot_compile_is_refused_at_registration(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    pytest.importorskip("llguidance")
    before = await stored_state(db)
    response = await create(
        client, admin_headers, schema=object_schema(code={"type": "string", "pattern": "(?<=A)B"})
    )
    problem = assert_problem(response, 422, "schema-not-supported")
    assert problem["errors"][0]["pointer"] == "/schema"
    assert await stored_state(db) == before


@pytest.mark.parametrize(
    ("checks", "pointer"),
    [
        ([{"name": "bad", "expr": "__import__('os') == 1"}], "/schema/x-checks/0/expr"),
        ([{"name": "deep", "expr": "(" * 40 + "total" + ")" * 40 + " == 1"}], "/schema/x-checks/0/expr"),
        ([{"name": "huge", "expr": "total == " + "9" * 100}], "/schema/x-checks/0/expr"),
        ([{"name": "ghost", "expr": "missing_field == 1"}], "/schema/x-checks/0/expr"),
        ([{"name": "ok", "expr": "total == 1", "run": "rm -rf /"}], "/schema/x-checks/0/run"),
    ],
)
async def test_unsafe_or_invalid_checks_are_refused_at_registration(
    client: Client, db: Sessions, admin_headers: dict[str, str], checks: list[Any], pointer: str
) -> None:
    before = await stored_state(db)
    schema = {**object_schema(total={"type": "number"}), "x-checks": checks}
    problem = assert_problem(await create(client, admin_headers, schema=schema), 422, "invalid-schema")
    assert problem["errors"][0]["pointer"] == pointer
    assert await stored_state(db) == before


async def test_invalid_review_policy_is_refused(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    schema = {
        **object_schema(total={"type": "number"}),
        "x-review": {"min_confidence": 2, "checks": ["nope"]},
    }
    problem = assert_problem(await create(client, admin_headers, schema=schema), 422, "invalid-schema")
    assert {e["pointer"] for e in problem["errors"]} == {
        "/schema/x-review/min_confidence",
        "/schema/x-review/checks",
    }


TOO_BIG = "99999999999999999999"  # past every integer type of SQLite and PostgreSQL


@pytest.mark.parametrize(
    ("method", "path", "status", "slug"),
    [
        ("get", "/schemas?offset=9223372036854775808", 400, "bad-request"),
        ("get", f"/schemas?offset={TOO_BIG}", 400, "bad-request"),
        ("get", "/schemas/x/versions?offset=9223372036854775808", 400, "bad-request"),
        ("get", f"/schemas/x@{TOO_BIG}", 400, "invalid-schema-reference"),
        ("get", f"/schemas/invoice@{TOO_BIG}", 400, "invalid-schema-reference"),
        ("get", "/schemas/x@2147483648", 400, "invalid-schema-reference"),  # PostgreSQL INTEGER + 1
        ("get", "/schemas/x@1000000000", 400, "invalid-schema-reference"),
        ("get", "/schemas/x@²", 400, "invalid-schema-reference"),  # a digit to isdigit(), not to int()
        ("get", f"/schemas/invoice/versions/{TOO_BIG}", 400, "invalid-schema-reference"),
        ("get", "/schemas/x/versions/2147483648", 400, "invalid-schema-reference"),
        ("post", f"/extract/invoice@{TOO_BIG}", 400, "invalid-schema-reference"),
        ("post", f"/batches?schema=invoice@{TOO_BIG}", 400, "invalid-schema-reference"),
    ],
)
async def test_numbers_past_the_database_are_refused_not_500(
    client: Client,
    db: Sessions,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    status: int,
    slug: str,
) -> None:
    await create(client, admin_headers, name="x")
    kwargs: dict[str, Any] = {"content": b"%PDF-1.7 not really"} if method == "post" else {}
    problem = assert_problem(
        await getattr(client, method)(path, headers=admin_headers, **kwargs), status, slug
    )
    assert problem["errors"], problem


async def test_the_largest_numbers_the_database_holds_still_work(
    client: Client, db: Sessions, admin_headers: dict[str, str]
) -> None:
    await create(client, admin_headers, name="x")
    page = await client.get("/schemas?offset=9223372036854775807&limit=500", headers=admin_headers)
    assert page.status_code == 200, page.text
    assert page.json()["items"] == [] and page.json()["offset"] == 9223372036854775807
    versions = await client.get("/schemas/x/versions?offset=9223372036854775807", headers=admin_headers)
    assert versions.status_code == 200 and versions.json()["items"] == []
    for path in ["/schemas/x@999999999", "/schemas/x/versions/999999999"]:
        assert_problem(await client.get(path, headers=admin_headers), 404, "schema-version-not-found")
