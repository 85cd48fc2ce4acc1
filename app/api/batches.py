"""``/batches``: many documents in one request (several `file` parts, or one zip), one job each."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import HeaderParameter, Parameter
from litestar.response import Stream
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.common import pages_parameter, problem_responses
from app.api.documents import MULTIPART_OVERHEAD
from app.api.idempotency import fingerprint, idempotent
from app.api.jobs import POLL_AFTER_S
from app.api.upload import BodyTooLarge, FileTooLarge, TooManyFiles, read_uploads
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.db.models import BatchRecord, ExtractionRecord, JobRecord, utcnow
from app.extraction.export_table import (
    BatchDocument,
    ExportOptions,
    Table,
    export_options,
    header_bytes,
    rows_bytes,
    table_for,
)
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
    INVALID_EXPORT_OPTION,
    NO_LINE_ITEMS,
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
from app.registry.refs import SchemaRef, parse_ref
from app.registry.service import SchemaRegistry

DbSession = NamedDependency[AsyncSession]
Registry = NamedDependency[SchemaRegistry]

EXPORT_PAGE = 100
"""Documents (jobs with their results) read from the database at a time while an export streams."""
EXPORT_MEDIA_TYPES = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}
"""What an export can be sent as (``Accept``), and the ``format`` each is."""


@dataclass
class ExportOperation(Operation):
    """The export's OpenAPI operation: its 200 is CSV or JSON Lines, as asked for (Litestar
    documents one media type per response)."""

    def __post_init__(self) -> None:
        success = (self.responses or {}).get("200")
        if isinstance(success, OpenAPIResponse):
            text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
            success.content = dict.fromkeys(EXPORT_MEDIA_TYPES, text)
            success.description = "The export, streamed: CSV (a header row, then rows) or JSON Lines."
            success.headers = {
                "Content-Disposition": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description='`attachment; filename="batch_<id>.csv"` (or `.jsonl`).',
                    required=True,
                )
            }


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
        batch = await load_batch(db_session, batch_id, request.user)
        return await batch_view(db_session, batch, services.settings.webhooks.public_url, with_jobs=True)

    @get(
        "/{batch_id:str}/export",
        summary="A batch's results as CSV or JSON Lines",
        media_type="text/csv",
        operation_class=ExportOperation,
        responses=problem_responses(BATCH_NOT_FOUND, INVALID_EXPORT_OPTION, NO_LINE_ITEMS),
    )
    async def export_batch(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        registry: Registry,
        db_session: DbSession,
        batch_id: Annotated[str, Parameter(description="`bat_...`")],
        format: Annotated[
            str | None,
            Parameter(
                description="`csv` or `jsonl`; without it, `Accept` decides (`text/csv`, "
                "`application/x-ndjson`, `application/jsonl`), else CSV.",
                schema_extra={"enum": ["csv", "jsonl"]},
            ),
        ] = None,
        rows: Annotated[
            str,
            Parameter(
                max_length=200,
                description="`documents` (one row each), or one row per line item: `line_items` "
                "(that array of objects, else the schema's first) or an array's dotted name.",
            ),
        ] = "documents",
        decimal: Annotated[
            str,
            Parameter(description="Decimal separator of numbers (CSV).", schema_extra={"enum": [".", ","]}),
        ] = ".",
        delimiter: Annotated[
            str | None,
            Parameter(
                description="CSV delimiter; `;` by default with `decimal=,`, else `,`.",
                schema_extra={"enum": [",", ";", "tab"]},
            ),
        ] = None,
        date_format: Annotated[
            str,
            Parameter(
                description="Dates (CSV): `iso` 2024-03-15, `dmy` 15/03/2024 (15.03.2024 with "
                "`decimal=,`), `mdy` 03/15/2024.",
                schema_extra={"enum": ["iso", "dmy", "mdy"]},
            ),
        ] = "iso",
        bom: Annotated[
            str,
            Parameter(
                description="`true`: start the CSV with a UTF-8 BOM (for Excel).",
                schema_extra={"enum": ["true", "false"]},
            ),
        ] = "false",
    ) -> Stream:
        """Every document of the batch in its order, with its status (`failed`, `running` ... ones
        too, values empty), confidence and review reasons, then the schema's fields in schema
        order: nested objects as `seller.name`, arrays of objects as `line_items.count`, or one
        row per line item with the document's columns repeated. Streamed as it is read."""
        if format is None:
            media_type = request.accept.best_match(list(EXPORT_MEDIA_TYPES), default="text/csv")
            format = EXPORT_MEDIA_TYPES.get(media_type, "csv")
        else:
            media_type = "application/x-ndjson" if format == "jsonl" else "text/csv"
        options = export_options(
            format=format, rows=rows, decimal=decimal, delimiter=delimiter, date_format=date_format, bom=bom
        )
        batch = await load_batch(db_session, batch_id, request.user)
        version = await registry.get(SchemaRef(batch.schema_name, batch.schema_version))
        table = table_for(version.compiled, options.rows)
        return Stream(
            export_stream(services.sessions, batch.id, table, options),
            headers={
                # A header, not ``media_type``: Litestar's Stream prefers the route's media type.
                "Content-Type": f"{media_type}; charset=utf-8" if options.format == "csv" else media_type,
                "Content-Disposition": f'attachment; filename="batch_{batch.id}.{options.format}"',
                "Vary": "Accept",
            },
        )


async def load_batch(session: AsyncSession, batch_id: str, principal: Principal) -> BatchRecord:
    """The batch, if ``principal`` may see it; one answer for "not yours" and "not there"."""
    batch = await session.get(BatchRecord, batch_id)
    if batch is None or batch.expires_at <= utcnow() or not principal.sees(batch.created_by):
        raise Problem(BATCH_NOT_FOUND, f"No batch has the id {batch_id!r}.")
    return batch


async def export_stream(
    sessions: async_sessionmaker[AsyncSession], batch_id: str, table: Table, options: ExportOptions
) -> AsyncIterator[bytes]:
    """The export, a page of documents at a time; each page in a session of its own, so a slow
    reader holds no database connection between pages."""
    if head := header_bytes(table, options):
        yield head
    after: tuple[datetime, str] | None = None
    while True:
        async with sessions() as session:
            page = await export_page(session, batch_id, after)
        if not page:
            return
        yield rows_bytes(table, [document for _, document in page], options)
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1][0]


async def export_page(
    session: AsyncSession, batch_id: str, after: tuple[datetime, str] | None
) -> list[tuple[tuple[datetime, str], BatchDocument]]:
    """The batch's next documents in submission order (after the job ``after``: creation time and
    id), each with its result's status and data once there is one."""
    job, result = JobRecord, ExtractionRecord
    query = (
        select(
            job.created_at,
            job.id,
            job.filename,
            job.status,
            result.id,
            result.status,
            result.confidence,
            result.review_reasons,
            result.result,
        )
        .outerjoin(result, result.id == job.extraction_id)
        .where(job.batch_id == batch_id)
        .order_by(job.created_at, job.id)
        .limit(EXPORT_PAGE)
    )
    if after is not None:
        at, ident = after
        query = query.where(or_(job.created_at > at, and_(job.created_at == at, job.id > ident)))
    page: list[tuple[tuple[datetime, str], BatchDocument]] = []
    for row in await session.execute(query):
        created_at, job_id, filename, job_status, extraction_id, status, confidence, reasons, stored = row
        document = BatchDocument(filename, job_status)
        if extraction_id is not None:
            document = BatchDocument(
                filename,
                status,
                extraction_id,
                confidence,
                tuple(line for line in reasons.split("\n") if line),
                orjson.loads(stored).get("data"),
            )
        page.append(((created_at, job_id), document))
    return page


def batch_router(settings: Settings) -> Router:
    """The batch routes with this deployment's body limit (the whole batch plus form overhead)."""
    return Router(
        path="/",
        route_handlers=[BatchController],
        request_max_body_size=settings.jobs.max_batch_bytes + MULTIPART_OVERHEAD,
    )
