"""``/batches``: many documents in one request (several `file` parts, or one zip), one job each."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.common import pages_parameter, problem_responses
from app.api.documents import MULTIPART_OVERHEAD
from app.api.idempotency import fingerprint, idempotent
from app.api.jobs import POLL_AFTER_S
from app.api.upload import BodyTooLarge, FileTooLarge, TooManyFiles, read_uploads
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.db.models import BatchRecord, utcnow
from app.jobs import store
from app.jobs.archive import Entry, Limits, is_zip, read_zip
from app.jobs.models import BatchView
from app.jobs.services import Services
from app.jobs.submit import JobOptions, Upload, submit_jobs
from app.jobs.views import batch_view
from app.lib.problems import (
    BATCH_NOT_FOUND,
    BATCH_TOO_LARGE,
    CALLBACK_SECRET_MISSING,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_BATCH,
    QUEUE_FULL,
    SCHEMA_DEPRECATED,
    SCHEMA_NOT_FOUND,
    TOO_MANY_JOBS_IN_FLIGHT,
    UNSAFE_ARCHIVE,
    UNSAFE_CALLBACK_URL,
    UNSUPPORTED_DOCUMENT_TYPE,
    ErrorItem,
    Problem,
)
from app.lib.settings import Settings
from app.registry.refs import parse_ref
from app.registry.service import SchemaRegistry

DbSession = NamedDependency[AsyncSession]
Registry = NamedDependency[SchemaRegistry]


async def read_batch(request: Request[Any, Any, Any], limits: Limits) -> list[Entry]:
    """The documents of the request: every `file` part (a single zip part, or a raw zip body, is
    unpacked). Each must be a recognised document type. Reading stops at the first chunk past a
    limit: a file's is the document limit (the batch limit for a zip), and more than the batch's
    number of documents is refused at the extra part's header."""

    def limit_of(head: bytes) -> int:
        return limits.max_total_bytes if is_zip(head) else limits.max_document_bytes

    try:
        uploads = await read_uploads(request, limit_of, max_files=limits.max_documents)
    except FileTooLarge as exc:
        raise Problem(BATCH_TOO_LARGE, str(exc), limit_bytes=exc.limit) from exc
    except BodyTooLarge as exc:
        raise Problem(
            BATCH_TOO_LARGE,
            f"The upload is larger than {limits.max_total_bytes} bytes.",
            limit_bytes=limits.max_total_bytes,
        ) from exc
    except TooManyFiles as exc:
        raise Problem(BATCH_TOO_LARGE, f"A batch has at most {limits.max_documents} documents.") from exc
    entries = [Entry(u.filename or "body", u.data) for u in uploads]
    if len(entries) == 1 and is_zip(entries[0].data):
        entries = read_zip(entries[0].data, limits)
    if not entries:
        raise Problem(INVALID_BATCH, "The batch has no documents: send `file` parts or a zip.")
    if len(entries) > limits.max_documents:
        raise Problem(BATCH_TOO_LARGE, f"A batch has at most {limits.max_documents} documents.")
    errors: list[ErrorItem] = []
    for index, entry in enumerate(entries):
        if not entry.data:
            errors.append({"pointer": f"/files/{index}", "detail": f"{entry.name!r} is empty"})
        elif len(entry.data) > limits.max_document_bytes:
            raise Problem(
                BATCH_TOO_LARGE,
                f"{entry.name!r} is larger than the document limit of {limits.max_document_bytes} bytes.",
            )
    if errors:
        raise Problem(INVALID_BATCH, "Some files of the batch are empty.", errors=errors)
    return entries


class BatchController(Controller):
    path = "/batches"
    tags = ["jobs"]
    guards = [requires(Scope.EXTRACT)]

    @post(
        "/",
        status_code=202,
        summary="Submit a batch of documents",
        responses=problem_responses(
            INVALID_BATCH,
            BATCH_TOO_LARGE,
            UNSAFE_ARCHIVE,
            UNSUPPORTED_DOCUMENT_TYPE,
            SCHEMA_NOT_FOUND,
            SCHEMA_DEPRECATED,
            QUEUE_FULL,
            TOO_MANY_JOBS_IN_FLIGHT,
            UNSAFE_CALLBACK_URL,
            CALLBACK_SECRET_MISSING,
            IDEMPOTENCY_KEY_REUSED,
            IDEMPOTENCY_KEY_IN_USE,
        ),
    )
    async def create_batch(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        registry: Registry,
        db_session: DbSession,
        schema: Annotated[str, Parameter(description="`name` or `name@version`, for every document.")],
        pages: Annotated[str | None, pages_parameter("Pages to read of each document.")] = None,
        callback_url: Annotated[
            str | None,
            Parameter(description="Receives every job's events and `batch.completed` (signed)."),
        ] = None,
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key")] = None,
    ) -> Response[BatchView]:
        """One job per document (multipart `file` parts, or one zip archive); all stored before
        the 202. `GET /batches/{id}` aggregates; `batch.completed` fires once when every job ended."""
        del idempotency_key  # read by ``idempotent``; declared for the OpenAPI spec
        settings = services.settings
        version = await registry.get(parse_ref(schema))
        limits = Limits(
            settings.jobs.max_batch_documents, settings.jobs.max_batch_bytes, settings.ingest.max_bytes
        )
        entries = await read_batch(request, limits)
        owner = request.user.key_id
        request_print = fingerprint(
            "batch",
            version.ref,
            [(e.name, hashlib.sha256(e.data).hexdigest()) for e in entries],
            pages,
            callback_url,
        )

        async def submit() -> Response[BatchView]:
            now = utcnow()
            batch = BatchRecord(
                id=store.new_id("bat"),
                schema_name=version.name,
                schema_version=version.version,
                callback_url=callback_url,
                created_by=owner,
                jobs_total=len(entries),
                jobs_finished=0,
                created_at=now,
                expires_at=now + timedelta(days=settings.app.retention_days),
            )
            options = JobOptions(version, owner, callback_url, {"pages": pages})
            uploads = [Upload(entry.data, entry.name) for entry in entries]
            await submit_jobs(db_session, services, options, uploads, batch=batch)
            view = await batch_view(db_session, batch, settings.webhooks.public_url, with_jobs=True)
            return Response(
                view,
                status_code=202,
                headers={"Location": f"/batches/{batch.id}", "Retry-After": str(POLL_AFTER_S)},
            )

        return await idempotent(request, owner, request_print, submit)

    @get(
        "/{batch_id:str}", summary="A batch's progress and jobs", responses=problem_responses(BATCH_NOT_FOUND)
    )
    async def get_batch(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        batch_id: Annotated[str, Parameter(description="`bat_...`")],
    ) -> BatchView:
        """`counts` per job status, `status` `completed` once every job has ended, and each job."""
        batch = await db_session.get(BatchRecord, batch_id)
        if batch is None or batch.expires_at <= utcnow() or not request.user.sees(batch.created_by):
            raise Problem(BATCH_NOT_FOUND, f"No batch has the id {batch_id!r}.")
        return await batch_view(db_session, batch, services.settings.webhooks.public_url, with_jobs=True)


def batch_router(settings: Settings) -> Router:
    """The batch routes with this deployment's body limit (the whole batch plus form overhead)."""
    return Router(
        path="/",
        route_handlers=[BatchController],
        request_max_body_size=settings.jobs.max_batch_bytes + MULTIPART_OVERHEAD,
    )
