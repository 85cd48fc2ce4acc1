"""The served OpenAPI spec describes what the API returns, field by field, so an ERP integrator can
generate a client from it; and the typed bodies put on the wire exactly the JSON the service
produced and stored."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.db.models import ExtractionRecord
from tests.fake_sglang import FakeSGLang
from tests.integration.test_extract_api import client, fake, headers, post, three_page_pdf

__all__ = ["client", "fake", "headers"]  # fixtures of the extraction API's tests, reused here

Client = AsyncTestClient[Litestar]


async def served_spec(client: Client) -> dict[str, Any]:
    spec: dict[str, Any] = (await client.get("/openapi/openapi.json")).json()
    return spec


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``$ref`` points at (one level; the spec's components are flat)."""
    if "$ref" in schema:
        found: dict[str, Any] = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return found
    return schema


def body(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    response = spec["paths"][path][method]["responses"][status]
    return resolve(spec, response["content"]["application/json"]["schema"])


def described(spec: dict[str, Any], schema: dict[str, Any], name: str) -> dict[str, Any]:
    """A property's schema, resolved (an optional one is ``oneOf`` the type and null)."""
    prop = schema["properties"][name]
    options = [resolve(spec, p) for p in prop.get("oneOf", [prop]) if p.get("type") != "null"]
    return options[0] if options else prop


RESULT_FIELDS = ["data", "fields", "checks", "review", "validation", "pages", "timings_ms"]


async def test_the_result_is_described_field_by_field(client: Client) -> None:
    spec = await served_spec(client)
    for path, method in [
        ("/extract/{schema}", "post"),
        ("/extractions/{extraction_id}", "get"),
        ("/jobs/{job_id}/result", "get"),
    ]:
        result = body(spec, path, method, "200")
        assert set(RESULT_FIELDS) <= set(result["properties"]), path
        assert set(RESULT_FIELDS) | {"id", "status", "schema", "model"} <= set(result["required"]), path

    result = body(spec, "/extract/{schema}", "post", "200")
    assert set(described(spec, result, "status")["enum"]) == {"needs_review", "succeeded"}
    field = resolve(spec, described(spec, result, "fields")["additionalProperties"])
    assert {"confidence", "page", "raw_text", "normalized", "evidence", "components", "checks"} <= set(
        field["properties"]
    )
    evidence = resolve(spec, field["properties"]["evidence"]["items"])
    assert {"page", "bbox", "text", "score", "method"} <= set(evidence["properties"])
    components = described(spec, field, "components")
    assert {"token_prob", "grounded", "normalized", "checks", "ocr", "score"} <= set(components["properties"])
    check = resolve(spec, described(spec, result, "checks")["items"])
    assert {"rule", "status", "expected", "actual", "pointers", "detail"} <= set(check["properties"])
    review = described(spec, result, "review")
    assert {"required", "reasons", "min_confidence"} <= set(review["properties"])
    finding = resolve(spec, described(spec, result, "validation")["items"])
    assert {"pointer", "keyword", "message"} <= set(finding["properties"])
    page = resolve(spec, described(spec, result, "pages")["items"])
    assert {"page", "model", "finish_reason", "prompt_tokens", "completion_tokens"} <= set(page["properties"])
    assert described(spec, result, "timings_ms")["type"] == "object"


async def test_jobs_and_batches_are_described_field_by_field(client: Client) -> None:
    spec = await served_spec(client)
    job_fields = {"id", "status", "schema", "progress", "created_at", "extraction_id", "error", "links"}
    accepted = body(spec, "/extract/{schema}", "post", "202")
    assert job_fields | {"last_error"} <= set(accepted["properties"])
    assert "error" not in accepted["required"] and "last_error" not in accepted["required"]
    assert body(spec, "/jobs/{job_id}", "get", "200") == accepted
    assert body(spec, "/jobs/{job_id}", "delete", "200") == accepted
    listed = body(spec, "/jobs", "get", "200")
    assert resolve(spec, listed["properties"]["items"]["items"]) == accepted
    assert "examples" not in str(accepted)  # no made-up values beside the field descriptions
    error = described(spec, accepted, "error")
    assert {"type", "category", "detail", "retryable", "phase", "attempts"} <= set(error["properties"])

    batch_fields = {"batch_id", "status", "schema", "jobs_total", "jobs_finished", "counts", "jobs"}
    batch = body(spec, "/batches", "post", "202")
    assert batch_fields <= set(batch["properties"])
    assert body(spec, "/batches/{batch_id}", "get", "200") == batch
    job = resolve(spec, described(spec, batch, "jobs")["items"])
    assert {"id", "filename", "status", "result_url", "error"} <= set(job["properties"])


async def test_the_typed_result_is_the_json_the_service_stored(
    client: Client, headers: dict[str, str], fake: FakeSGLang, db: Any
) -> None:
    response = await post(client, headers, "/extract/invoice", three_page_pdf())
    assert response.status_code == 200, response.text
    async with db() as session:
        stored = await session.scalar(select(ExtractionRecord.result))
    assert stored is not None
    # The bytes an untyped dict of the stored result encodes to: no field lost, renamed or reordered.
    assert response.content == msgspec.json.encode(msgspec.json.decode(stored))
    again = await client.get(f"/extractions/{response.json()['id']}", headers=headers)
    assert again.content == response.content


async def test_the_text_map_is_described_word_by_word(client: Client) -> None:
    spec = await served_spec(client)
    analysis = body(spec, "/documents/analyze", "post", "200")
    assert {"document", "page_count", "pages", "warnings", "timings_ms"} <= set(analysis["required"])
    page = resolve(spec, described(spec, analysis, "pages")["items"])
    assert set(described(spec, page, "kind")["enum"]) == {"born_digital", "scanned", "image"}
    word = resolve(spec, described(spec, page, "words")["items"])
    assert {"text", "bbox", "confidence", "source", "line"} <= set(word["required"])
    region = resolve(spec, described(spec, page, "regions")["items"])
    assert {"label", "bbox", "score", "order"} <= set(region["properties"])
    warning = resolve(spec, described(spec, analysis, "warnings")["items"])
    assert set(described(spec, warning, "code")["enum"]) == {"ocr_unavailable", "ocr_disabled"}
