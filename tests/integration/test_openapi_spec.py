"""The served OpenAPI spec tells the truth: every status a route answers is documented (401 and 403
on every protected operation, problem+json on every 4xx), and the request constraints it states
are the ones the server enforces. ``test_openapi_fuzz`` checks the same by fuzzing; these name the
cases issue #11 found."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.documents import invoice_pdf
from tests.helpers import assert_problem, object_schema

Client = AsyncTestClient[Litestar]
PUBLIC = {"/health", "/ready", "/problems", "/problems/{slug}"}


async def served_spec(client: Client) -> dict[str, Any]:
    spec: dict[str, Any] = (await client.get("/openapi/openapi.json")).json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


async def test_every_protected_operation_documents_401_and_403(client: Client) -> None:
    spec = await served_spec(client)
    found = operations(spec)
    assert len(found) >= 30
    for method, path, operation in found:
        responses = operation["responses"]
        if path in PUBLIC:
            assert operation["security"] == [{}], (method, path)
            assert "401" not in responses, (method, path)
            continue
        assert "security" not in operation, (method, path)  # the global API-key requirement
        for status in ("401", "403"):
            assert list(responses[status]["content"]) == ["application/problem+json"], (method, path)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "name": "X-API-Key", "in": "header"} | {
        "description": schemes["ApiKeyHeader"]["description"]
    }


async def test_every_documented_error_is_problem_json(client: Client) -> None:
    for method, path, operation in operations(await served_spec(client)):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == ["application/problem+json"], (method, path, status)
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ProblemOut"}, (method, path, status)


async def test_statuses_the_issue_found_undocumented(
    client: Client, admin_headers: dict[str, str], extract_headers: dict[str, str]
) -> None:
    paths = (await served_spec(client))["paths"]

    assert "404" in paths["/problems/{slug}"]["get"]["responses"]
    assert_problem(await client.get("/problems/nope"), 404, "not-found")

    assert "415" in paths["/keys"]["post"]["responses"]
    refused = await client.post(
        "/keys", content=b"name=x", headers={**admin_headers, "Content-Type": "text/plain"}
    )
    assert_problem(refused, 415, "unsupported-media-type")

    add_version = paths["/schemas/{name}/versions"]["post"]["responses"]
    assert add_version["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SchemaVersionOut"
    }
    body = {"name": "x", "schema": object_schema()}
    assert (await client.post("/schemas", json=body, headers=admin_headers)).status_code == 201
    same = await client.post("/schemas/x/versions", json={"schema": object_schema()}, headers=admin_headers)
    assert same.status_code == 200 and same.json()["version"] == 1

    assert "503" in paths["/ready"]["get"]["responses"]

    forbidden = await client.post("/keys", json={"name": "n", "scopes": ["extract"]}, headers=extract_headers)
    assert_problem(forbidden, 403, "forbidden")


async def test_preflight_on_a_guarded_route_is_not_a_500(client: Client) -> None:
    for path in ["/jobs/job_x", "/keys", "/webhooks/wh_x", "/extractions/ext_x", "/batches/bat_x"]:
        response = await client.options(path)
        assert response.status_code == 204, (path, response.text)
        assert "OPTIONS" in response.headers["allow"]


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in operation["parameters"] if p["name"] == name)
    return found


@pytest.mark.parametrize(
    ("text", "admitted"),
    [("1", True), ("1-3,7", True), (" 2 - 4 , 9", True), ("", False), ("0.1.0", False), ("a", False)],
)
async def test_pages_are_documented_as_the_server_reads_them(
    client: Client, text: str, admitted: bool
) -> None:
    paths = (await served_spec(client))["paths"]
    for path in ["/extract/{schema}", "/documents/analyze", "/batches"]:
        pattern = _parameter(paths[path]["post"], "pages")["schema"]["pattern"]
        assert bool(re.search(pattern, text)) is admitted, (path, text)


async def test_request_constraints_match_what_the_server_refuses(
    client: Client, admin_headers: dict[str, str]
) -> None:
    spec = await served_spec(client)
    schemas, paths = spec["components"]["schemas"], spec["paths"]

    scopes = schemas["KeyCreate"]["properties"]["scopes"]
    assert scopes["minItems"] == 1 and scopes["items"]["enum"] == ["admin", "extract", "review"]
    empty = await client.post("/keys", json={"name": "n", "scopes": []}, headers=admin_headers)
    assert_problem(empty, 422, "invalid-request")

    for body in ("SchemaCreate", "VersionCreate"):
        schema_field = schemas[body]["properties"]["schema"]
        assert schema_field["required"] == ["type"] and schema_field["properties"]["type"] == {
            "const": "object"
        }
    assert re.search(schemas["SchemaCreate"]["properties"]["name"]["pattern"], "supplier_invoice")
    await client.post("/schemas", json={"name": "x", "schema": object_schema()}, headers=admin_headers)
    no_type = await client.post("/schemas/x/versions", json={"schema": {}}, headers=admin_headers)
    assert_problem(no_type, 422, "invalid-schema")

    version = _parameter(paths["/schemas/{name}/versions/{version}"]["get"], "version")["schema"]
    ref = _parameter(paths["/schemas/{ref}"]["get"], "ref")["schema"]
    for text, admitted in [
        ("1", True),
        ("999999999", True),
        ("0.1.0", False),
        ("0", False),
        ("1" * 10, False),
    ]:
        assert bool(re.search(version["pattern"], text)) is admitted, text
        assert bool(re.search(ref["pattern"], f"x@{text}")) is admitted, text
        response = await client.get(f"/schemas/x/versions/{text}", headers=admin_headers)
        if admitted:
            assert response.status_code in {200, 404}, response.text
        else:
            assert_problem(response, 400, "invalid-schema-reference")


async def test_an_unknown_check_is_refused_by_name(client: Client, extract_headers: dict[str, str]) -> None:
    pdf = invoice_pdf()[0]
    response = await client.post(
        "/extract/invoice?checks=nope,subtotal_plus_tax_is_total", content=pdf, headers=extract_headers
    )
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"] == [{"pointer": "/checks", "detail": "unknown check 'nope'"}]
    assert "nope" in problem["detail"]
    known = await client.post(
        "/extract/invoice?checks=subtotal_plus_tax_is_total", content=pdf, headers=extract_headers
    )
    assert known.status_code == 200, known.text


async def test_a_missing_query_parameter_is_named(client: Client, extract_headers: dict[str, str]) -> None:
    response = await client.post("/batches", content=b"%PDF-1.7", headers=extract_headers)
    problem = assert_problem(response, 400, "bad-request")
    assert problem["errors"] == [{"pointer": "/schema", "detail": "missing"}]
