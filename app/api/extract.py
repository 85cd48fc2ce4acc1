"""``POST /extract/{schema}`` (stored results: ``app/api/extractions.py``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.common import pages_parameter, problem_responses
from app.api.documents import DOCUMENT_PROBLEMS, MULTIPART_OVERHEAD, read_document
from app.api.idempotency import fingerprint, idempotent
from app.api.jobs import POLL_AFTER_S
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.extraction.models import ExtractionResult
from app.extraction.store import save_document, save_extraction
from app.jobs.models import JobView
from app.jobs.passwords import ENCRYPTED
from app.jobs.services import Services
from app.jobs.submit import JobOptions, Upload, submit_jobs
from app.jobs.views import job_view
from app.lib.problems import (
    CALLBACK_SECRET_MISSING,
    ENGINE_UNAVAILABLE,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_IDEMPOTENCY_KEY,
    INVALID_REQUEST,
    INVALID_SCHEMA_REFERENCE,
    QUEUE_FULL,
    SCHEMA_DEPRECATED,
    SCHEMA_NOT_FOUND,
    SCHEMA_NOT_SUPPORTED,
    SCHEMA_VERSION_NOT_FOUND,
    TOO_MANY_JOBS_IN_FLIGHT,
    UNSAFE_CALLBACK_URL,
    Problem,
)
from app.memory.service import memory_lookup
from app.registry.refs import parse_ref
from app.registry.service import SchemaRegistry
from app.trust.assess import ReviewPolicy
from app.trust.checks import parse_checks

Registry = NamedDependency[SchemaRegistry]
DbSession = NamedDependency[AsyncSession]


class ExtractionController(Controller):
    tags = ["extraction"]
    guards = [requires(Scope.EXTRACT)]

    @post(
        "/extract/{schema:str}",
        status_code=200,
        summary="Extract schema-valid JSON from a document",
        responses={
            202: ResponseSpec(
                data_container=JobView,
                generate_examples=False,  # random ones; the schema describes every field
                description="Accepted as a job (async): the job, with `Location: /jobs/{id}`.",
            ),
            **problem_responses(
                *DOCUMENT_PROBLEMS,
                INVALID_SCHEMA_REFERENCE,
                INVALID_REQUEST,
                SCHEMA_NOT_FOUND,
                SCHEMA_VERSION_NOT_FOUND,
                SCHEMA_DEPRECATED,
                SCHEMA_NOT_SUPPORTED,
                ENGINE_UNAVAILABLE,
                QUEUE_FULL,
                TOO_MANY_JOBS_IN_FLIGHT,
                UNSAFE_CALLBACK_URL,
                CALLBACK_SECRET_MISSING,
                IDEMPOTENCY_KEY_REUSED,
                IDEMPOTENCY_KEY_IN_USE,
                INVALID_IDEMPOTENCY_KEY,
            ),
        },
    )
    async def extract(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        registry: Registry,
        db_session: DbSession,
        schema: Annotated[str, Parameter(description="`name` (latest version) or `name@version`.")],
        pages: Annotated[str | None, pages_parameter("Pages to read, e.g. `1-3,7` (default: all).")] = None,
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
        run_async: Annotated[
            bool,
            QueryParameter(
                name="async",
                description="Answer 202 with a job at once (same as `Prefer: respond-async`).",
            ),
        ] = False,
        prefer: Annotated[
            str | None,
            HeaderParameter(name="Prefer", description="`respond-async` for a 202 with a job (RFC 7240)."),
        ] = None,
        callback_url: Annotated[
            str | None,
            Parameter(
                description="Where to send this job's webhooks (implies async); signed with the key's "
                "callback secret (`POST /webhooks/callback-secret`)."
            ),
        ] = None,
        filename: Annotated[
            str | None,
            Parameter(
                max_length=255,
                description="The document's name for the review queue (a multipart `file` part's own "
                "name is used when it has one).",
            ),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                description="Retries with the same key and request get the original response or job.",
            ),
        ] = None,
    ) -> Response[ExtractionResult]:
        """The document (raw body or the `file` part of a multipart form) read against the schema
        version: `data` (validated by the schema; findings in `validation`), per-field token
        evidence and page in `fields`, and `status` `succeeded` or `needs_review`. The result is
        stored (`GET /extractions/{id}`) with the document, for the retention period.

        Asynchronously (`Prefer: respond-async`, `?async=true` or a `callback_url`): 202 with the
        job and `Location: /jobs/{id}`; the job is stored before the answer is sent."""
        version = await registry.get(parse_ref(schema))
        extractor, settings, passwords = services.extractor, services.settings, services.passwords
        upload = await read_document(request, extractor.analyzer.limits.max_bytes)
        data, document_name = upload.data, upload.filename or filename
        review = ReviewPolicy.of(version.schema, min_confidence, _listed(require), _listed(checks))
        if any(not pointer.startswith("/") for pointer in review.require):
            raise Problem(
                INVALID_REQUEST,
                "`require` takes JSON Pointers such as /total.",
                errors=[{"pointer": "/require", "detail": "JSON Pointers starting with /"}],
            )
        _require_declared_checks(version.schema, _listed(checks))
        owner = request.user.key_id
        is_async = run_async or callback_url is not None or "respond-async" in (prefer or "").lower()
        params = {
            "pages": pages,
            "min_confidence": min_confidence,
            "require": _listed(require),
            "checks": _listed(checks),
        }
        request_print = fingerprint(
            "extract",
            version.ref,
            hashlib.sha256(data).hexdigest(),
            {**params, "password": None if password is None else passwords.fingerprint(password)},
            callback_url,
            is_async,
        )

        async def run_now() -> Response[ExtractionResult]:
            memory = (
                memory_lookup(request.user.memory_owner, version.name, session=db_session)
                if settings.app.sender_memory
                else None
            )
            extraction = await extractor.extract(
                data, version, pages=pages, password=password, review=review, memory=memory
            )
            keep = timedelta(days=settings.app.retention_days)
            sha = await save_document(db_session, extraction.document, extraction.document_type, keep)
            await save_extraction(db_session, extraction.result, sha, owner, keep, document_name)
            return Response(ExtractionResult.of(extraction.result), status_code=200)

        async def submit() -> Response[JobView]:
            sealed = None if password is None else passwords.seal(password)  # never stored in clear
            options = JobOptions(version, owner, callback_url, {**params, ENCRYPTED: sealed})
            [job] = await submit_jobs(db_session, services, options, [Upload(data, document_name)])
            return Response(
                job_view(job, settings.webhooks.public_url),
                status_code=202,
                headers={
                    "Location": f"/jobs/{job.id}",
                    "Preference-Applied": "respond-async",
                    "Retry-After": str(POLL_AFTER_S),
                },
            )

        del idempotency_key  # read by ``idempotent`` from the headers; declared for the OpenAPI spec
        return await idempotent(request, owner, request_print, submit if is_async else run_now)


def _require_declared_checks(schema: dict[str, Any], names: list[str] | None) -> None:
    """A check the schema does not declare can never pass or fail: naming one is a mistake to
    report, not to ignore."""
    declared = {check.name for check in parse_checks(schema)}
    unknown = [name for name in names or [] if name not in declared]
    if unknown:
        raise Problem(
            INVALID_REQUEST,
            f"`checks` names {unknown}, which the schema does not declare; it declares {sorted(declared)}.",
            errors=[{"pointer": "/checks", "detail": f"unknown check {name!r}"} for name in unknown],
        )


def _listed(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def extraction_router(max_bytes: int) -> Router:
    return Router(
        path="/", route_handlers=[ExtractionController], request_max_body_size=max_bytes + MULTIPART_OVERHEAD
    )
