"""``POST /extract/{schema}`` and ``GET /extractions/{id}``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.documents.controller import DOCUMENT_PROBLEMS, MULTIPART_OVERHEAD, read_document
from app.extraction.service import Extractor
from app.extraction.store import get_extraction, save_document, save_extraction
from app.lib.api import problem_responses
from app.lib.problems import (
    ENGINE_UNAVAILABLE,
    EXTRACTION_NOT_FOUND,
    INVALID_REQUEST,
    INVALID_SCHEMA_REFERENCE,
    SCHEMA_DEPRECATED,
    SCHEMA_NOT_FOUND,
    SCHEMA_NOT_SUPPORTED,
    SCHEMA_VERSION_NOT_FOUND,
    Problem,
)
from app.registry.refs import parse_ref
from app.registry.service import SchemaRegistry
from app.trust.assess import ReviewPolicy

Registry = NamedDependency[SchemaRegistry]
DbSession = NamedDependency[AsyncSession]


class ExtractionController(Controller):
    tags = ["extraction"]
    guards = [requires(Scope.EXTRACT)]

    @post(
        "/extract/{schema:str}",
        status_code=200,
        summary="Extract schema-valid JSON from a document",
        responses=problem_responses(
            *DOCUMENT_PROBLEMS,
            INVALID_SCHEMA_REFERENCE,
            SCHEMA_NOT_FOUND,
            SCHEMA_VERSION_NOT_FOUND,
            SCHEMA_DEPRECATED,
            SCHEMA_NOT_SUPPORTED,
            ENGINE_UNAVAILABLE,
        ),
    )
    async def extract(
        self,
        request: Request[Principal, Any, Any],
        registry: Registry,
        db_session: DbSession,
        schema: Annotated[str, Parameter(description="`name` (latest version) or `name@version`.")],
        pages: Annotated[
            str | None, Parameter(description="Pages to read, e.g. `1-3,7` (default: all).")
        ] = None,
        password: Annotated[
            str | None, HeaderParameter(name="X-Document-Password", description="For encrypted PDFs.")
        ] = None,
        min_confidence: Annotated[
            float | None,
            Parameter(
                ge=0, le=1, description="Fields below this confidence need review (default: x-review)."
            ),
        ] = None,
        require: Annotated[
            str | None,
            Parameter(description="Comma-separated JSON Pointers that must be present (default: x-review)."),
        ] = None,
        checks: Annotated[
            str | None,
            Parameter(
                description="Comma-separated names of checks that must pass (default: all / x-review)."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """The document (raw body or the `file` part of a multipart form) read against the schema
        version: `data` (validated by the schema; findings in `validation`), per-field token
        evidence and page in `fields`, and `status` `succeeded` or `needs_review`. The result is
        stored (`GET /extractions/{id}`) with the document, for the retention period."""
        version = await registry.get(parse_ref(schema))
        extractor: Extractor = request.app.state.extractor
        data = await read_document(request, extractor.analyzer.limits.max_bytes)
        review = ReviewPolicy.of(version.schema, min_confidence, _listed(require), _listed(checks))
        if any(not pointer.startswith("/") for pointer in review.require):
            raise Problem(
                INVALID_REQUEST,
                "`require` takes JSON Pointers such as /total.",
                errors=[{"pointer": "/require", "detail": "JSON Pointers starting with /"}],
            )
        extraction = await extractor.extract(data, version, pages=pages, password=password, review=review)
        keep = timedelta(days=request.app.state.settings.app.retention_days)
        sha = await save_document(db_session, extraction.document, extraction.document_type, keep)
        await save_extraction(db_session, extraction.result, sha, request.user.key_id, keep)
        return extraction.result

    @get(
        "/extractions/{extraction_id:str}",
        summary="A stored extraction result",
        responses=problem_responses(EXTRACTION_NOT_FOUND),
    )
    async def get_result(
        self, db_session: DbSession, extraction_id: Annotated[str, Parameter(description="`ext_...`")]
    ) -> dict[str, Any]:
        return await get_extraction(db_session, extraction_id)


def _listed(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def extraction_router(max_bytes: int) -> Router:
    return Router(
        path="/", route_handlers=[ExtractionController], request_max_body_size=max_bytes + MULTIPART_OVERHEAD
    )
