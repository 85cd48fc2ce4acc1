"""Domain errors: each class names its job phase, and the edge maps it to the same problem."""

from __future__ import annotations

import pytest

from app.jobs.executor import public_error
from app.lib.errors import (
    DocextractError,
    DocumentError,
    EngineUnavailable,
    ExtractionError,
    OcrError,
    SchemaError,
)
from app.lib.problems import (
    DOCUMENT_TOO_LARGE,
    ENGINE_UNAVAILABLE,
    OCR_FAILED,
    SCHEMA_DEPRECATED,
    SCHEMA_NOT_FOUND,
    problem_of,
)


@pytest.mark.parametrize(
    ("error", "phase", "retryable"),
    [
        (DocumentError(DOCUMENT_TOO_LARGE, "too big", limit_bytes=10), "ingest", False),
        (OcrError(OCR_FAILED, "OCR failed on page 1."), "ingest", True),
        (SchemaError(SCHEMA_NOT_FOUND, "No schema is named 'x'."), "schema", False),
        (ExtractionError(SCHEMA_DEPRECATED, "deprecated"), "extraction", False),
        (EngineUnavailable(ENGINE_UNAVAILABLE, "down"), "extraction", True),
        (EngineUnavailable(ENGINE_UNAVAILABLE, "bad request", retryable=False), "extraction", False),
    ],
)
def test_the_class_says_the_phase_and_the_default_retry(
    error: DocextractError, phase: str, retryable: bool
) -> None:
    public = public_error(error)
    assert (public.phase, public.retryable, public.type) == (phase, retryable, error.kind.uri)
    assert public.detail == error.detail


def test_a_category_extension_is_the_public_category() -> None:
    error = EngineUnavailable(ENGINE_UNAVAILABLE, "x", category="engine_protocol", retryable=False)
    assert public_error(error).category == "engine_protocol"
    assert public_error(SchemaError(SCHEMA_NOT_FOUND, "x")).category == "schema_not_found"


def test_anything_else_is_an_internal_error() -> None:
    public = public_error(RuntimeError("boom"))
    assert (public.phase, public.category, public.retryable) == ("internal", "internal_error", True)


def test_the_edge_keeps_type_status_detail_headers_and_extensions() -> None:
    error = DocumentError(
        DOCUMENT_TOO_LARGE,
        "The file is larger than 10 bytes.",
        errors=[{"pointer": "", "detail": "too large"}],
        headers={"X-Why": "limit"},
        limit_bytes=10,
    )
    problem = problem_of(error)
    assert (problem.kind, problem.status_code, problem.detail) == (DOCUMENT_TOO_LARGE, 413, error.detail)
    assert problem.extra == {"limit_bytes": 10, "errors": [{"pointer": "", "detail": "too large"}]}
    assert problem.headers == {"X-Why": "limit"}
