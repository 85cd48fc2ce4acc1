"""``/extractions``: the review queue, a stored result, its pages, and reviews.

Keys with the ``review`` scope (a person at the review page) or ``extract`` (the ERP) read and
review what their key or team created; every review is a revision, guarded by ``If-Match``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import Body, HeaderParameter, Parameter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.api.common import json_body, problem_responses
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.db.models import DocumentRecord, ExtractionRecord, ExtractionRevisionRecord, utcnow
from app.documents.page_images import MEDIA_TYPES, ImageFormat
from app.einvoice.export import ExportError, NotAnInvoice, export_xml
from app.einvoice.model import Syntax
from app.extraction.models import Decision, ExtractionResult
from app.extraction.review import MAX_CORRECTIONS, Correction, apply_review
from app.extraction.store import load_extraction, reasons_column
from app.jobs.services import Services
from app.jobs.views import absolute
from app.lib import metrics
from app.lib.problems import (
    BAD_REQUEST,
    DOCUMENT_ENCRYPTED,
    EXPORT_INCOMPLETE,
    EXPORT_INVALID,
    EXPORT_NOT_SUPPORTED,
    EXTRACTION_NOT_FOUND,
    INVALID_CORRECTION,
    PAGE_NOT_FOUND,
    REVIEW_CONFLICT,
    SCHEMA_VERSION_NOT_FOUND,
    Problem,
)
from app.memory.service import learn_from_approved
from app.registry.refs import SchemaRef
from app.registry.service import SchemaRegistry
from app.webhooks.events import emit

logger = structlog.get_logger(__name__)

DbSession = NamedDependency[AsyncSession]
ExtractionId = Annotated[str, Parameter(description="`ext_...`")]
ExportFormat = Literal["ubl", "cii", "json"]
EXPORT_MEDIA_TYPES = {"ubl": "application/xml", "cii": "application/xml", "json": "application/json"}
ListStatus = Literal["succeeded", "needs_review", "approved", "rejected"]
STATUSES: tuple[str, ...] = ("succeeded", "needs_review", "approved", "rejected")


class SchemaName(msgspec.Struct):
    name: str
    version: int


class ExtractionSummary(msgspec.Struct):
    id: str
    status: Annotated[
        ListStatus,
        msgspec.Meta(
            description="`succeeded`/`needs_review` as extracted; `approved`/`rejected` once reviewed."
        ),
    ]
    schema: SchemaName
    document_name: str | None
    created_at: datetime
    confidence: float | None
    review_reasons: list[str]
    revision: int


class ExtractionPage(msgspec.Struct):
    items: list[ExtractionSummary]
    counts: Annotated[
        dict[str, int],
        msgspec.Meta(description="Extractions per status matching the other filters (all pages)."),
    ]
    next_cursor: Annotated[
        str | None, msgspec.Meta(description="Pass as `cursor` for the next page; null on the last.")
    ]


class WordBox(msgspec.Struct):
    text: str
    bbox: Annotated[list[float], msgspec.Meta(description="x0, y0, x1, y1, normalised to the page (0-1).")]


class PageWords(msgspec.Struct):
    page: int
    pages: Annotated[int, msgspec.Meta(description="Pages in the document.")]
    width: Annotated[float, msgspec.Meta(description="In PDF points (pixels for an image document).")]
    height: float
    words: Annotated[list[WordBox], msgspec.Meta(description="In reading order.")]


Box = Annotated[list[Annotated[float, msgspec.Meta(ge=0, le=1)]], msgspec.Meta(min_length=4, max_length=4)]


class EvidenceIn(msgspec.Struct, forbid_unknown_fields=True):
    page: Annotated[int, msgspec.Meta(ge=1)]
    bbox: Box


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    pointer: Annotated[str, msgspec.Meta(max_length=1000, description="JSON Pointer into `data`.")]
    value: Annotated[
        Any,
        msgspec.Meta(
            description='The right value (read like an extracted one: `"1.234,50"` for a number '
            "field becomes 1234.5); null clears it; an object or list replaces a whole line item."
        ),
    ]
    evidence: Annotated[
        EvidenceIn | None, msgspec.Meta(description="Where it is printed (the words clicked).")
    ] = None


class ReviewIn(msgspec.Struct, forbid_unknown_fields=True):
    corrections: Annotated[list[CorrectionIn], msgspec.Meta(max_length=MAX_CORRECTIONS)] = msgspec.field(
        default_factory=list
    )
    decision: Annotated[
        Decision | None,
        msgspec.Meta(description="`approve` or `reject`; null saves the corrections only."),
    ] = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


def etag(revision: int) -> str:
    return f'"r{revision}"'


def _encode_cursor(record: ExtractionRecord) -> str:
    raw = orjson.dumps([record.created_at.isoformat(), record.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, ident = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), str(ident)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Problem(
            BAD_REQUEST,
            "`cursor` is not one this API gave out; pass `next_cursor` from the previous page.",
            errors=[{"pointer": "/cursor", "detail": "invalid"}],
        ) from exc


class ExtractionsController(Controller):
    path = "/extractions"
    tags = ["review"]
    guards = [requires(Scope.EXTRACT, Scope.REVIEW)]

    @get("/", summary="Extractions: the review queue")
    async def list_extractions(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        status: Annotated[ListStatus | None, Parameter(description="Only this status.")] = None,
        schema: Annotated[
            str | None, Parameter(max_length=64, description="Only this schema (name).")
        ] = None,
        reason: Annotated[
            str | None,
            Parameter(
                max_length=200,
                description="Only those with a review reason starting so: `low_confidence`, `rival:/total`.",
            ),
        ] = None,
        created_after: Annotated[datetime | None, Parameter(description="ISO 8601, inclusive.")] = None,
        created_before: Annotated[datetime | None, Parameter(description="ISO 8601, exclusive.")] = None,
        document: Annotated[
            str | None, Parameter(max_length=255, description="Document names containing this (any case).")
        ] = None,
        order: Annotated[
            Literal["oldest", "newest"], Parameter(description="`oldest` first (a queue) or `newest`.")
        ] = "oldest",
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> ExtractionPage:
        """What this key (or its team) extracted, `oldest` first by default, with `counts` per
        status under the same filters; page on with `cursor` (stable while new ones arrive)."""
        table = ExtractionRecord
        filters: list[Any] = [table.expires_at > utcnow(), request.user.owned(table.created_by)]
        if schema is not None:
            filters.append(table.schema_name == schema)
        if reason is not None:
            filters.append(table.review_reasons.contains("\n" + reason, autoescape=True))
        if created_after is not None:
            filters.append(table.created_at >= _aware(created_after, "created_after"))
        if created_before is not None:
            filters.append(table.created_at < _aware(created_before, "created_before"))
        if document is not None:
            filters.append(func.lower(table.document_name).contains(document.lower(), autoescape=True))
        counted = select(table.status, func.count()).where(*filters).group_by(table.status)
        counts = dict.fromkeys(STATUSES, 0) | {s: int(n) for s, n in await db_session.execute(counted)}
        if status is not None:
            filters.append(table.status == status)
        newest = order == "newest"
        if cursor is not None:
            at, ident = _decode_cursor(cursor)
            after = (table.created_at < at) if newest else (table.created_at > at)
            tie = table.id < ident if newest else table.id > ident
            filters.append(or_(after, and_(table.created_at == at, tie)))
        sort = (table.created_at.desc(), table.id.desc()) if newest else (table.created_at, table.id)
        query = select(table).options(defer(table.result)).where(*filters).order_by(*sort).limit(limit + 1)
        rows = list(await db_session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return ExtractionPage(
            items=[
                ExtractionSummary(
                    id=r.id,
                    status=r.status,  # type: ignore[arg-type]  # the column holds one of STATUSES
                    schema=SchemaName(r.schema_name, r.schema_version),
                    document_name=r.document_name,
                    created_at=r.created_at,
                    confidence=r.confidence,
                    review_reasons=[line for line in r.review_reasons.split("\n") if line],
                    revision=r.revision,
                )
                for r in rows
            ],
            counts=counts,
            next_cursor=_encode_cursor(rows[-1]) if more else None,
        )

    @get(
        "/{extraction_id:str}",
        summary="A stored extraction result",
        responses=problem_responses(EXTRACTION_NOT_FOUND),
    )
    async def get_result(
        self, request: Request[Principal, Any, Any], db_session: DbSession, extraction_id: ExtractionId
    ) -> Response[ExtractionResult]:
        """The result as `POST /extract` (or the job) returned it, with every review applied:
        corrected fields have `source: reviewer`, `review.status` says whether a person approved
        or rejected it, `review.revisions` who changed what. The `ETag` names the revision (send
        it as `If-Match` with a review). Another key (not of the team) gets 404, as if it did not exist."""
        record = await load_extraction(db_session, extraction_id, request.user)
        return Response(ExtractionResult.decode(record.result), headers={"ETag": etag(record.revision)})

    @get(
        "/{extraction_id:str}/export",
        summary="The extraction as a UBL or CII e-invoice, or as JSON",
        media_type="application/xml",
        responses=problem_responses(
            EXTRACTION_NOT_FOUND,
            EXPORT_INCOMPLETE,
            EXPORT_INVALID,
            EXPORT_NOT_SUPPORTED,
            SCHEMA_VERSION_NOT_FOUND,
        ),
    )
    async def export(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        registry: NamedDependency[SchemaRegistry],
        extraction_id: ExtractionId,
        format: Annotated[
            ExportFormat | None,
            Parameter(
                description="`ubl` (UBL 2.1 Invoice, Peppol BIS Billing 3.0), `cii` (Factur-X EN 16931 "
                "CII) or `json` (`data`). Default: by `Accept` (`application/json` gives json, XML ubl)."
            ),
        ] = None,
    ) -> Response[bytes]:
        """What an ERP imports. UBL and CII need an invoice schema (the built-in `invoice`, or one
        whose properties name EN 16931 business terms with `x-en16931`); terms an invoice must have
        and the extraction does not hold are derived where the data settles them (country from the
        VAT id, VAT breakdown from the lines' rates, sums), else listed in a 422 `missing`. The
        document is checked against its XSD before it is returned. Reviews are included."""
        record = await load_extraction(db_session, extraction_id, request.user)
        chosen = format or ("json" if "json" in request.headers.get("accept", "") else "ubl")
        result = ExtractionResult.decode(record.result)
        name = f"{extraction_id}.{'json' if chosen == 'json' else 'xml'}"
        disposition = {"Content-Disposition": f'attachment; filename="{chosen}-{name}"'}
        if chosen == "json":
            return Response(orjson.dumps(result.data), media_type="application/json", headers=disposition)
        version = await registry.get(SchemaRef(record.schema_name, record.schema_version))
        syntax: Syntax = "UBL" if chosen == "ubl" else "CII"
        try:
            document = await asyncio.to_thread(export_xml, result.data, version.compiled, syntax)
        except NotAnInvoice as exc:
            raise Problem(EXPORT_NOT_SUPPORTED, f"{version.ref}: {exc}") from exc
        except ExportError as exc:
            if exc.missing:
                raise Problem(
                    EXPORT_INCOMPLETE,
                    f"{syntax} needs business terms the extraction does not hold: {', '.join(exc.missing)}.",
                    missing=exc.missing,
                ) from exc
            raise Problem(EXPORT_INVALID, str(exc), violations=exc.violations) from exc
        return Response(document, media_type=EXPORT_MEDIA_TYPES[chosen], headers=disposition)

    @get(
        "/{extraction_id:str}/pages/{number:int}",
        summary="A page of the extraction's document as an image",
        media_type="image/png",
        responses=problem_responses(EXTRACTION_NOT_FOUND, PAGE_NOT_FOUND, DOCUMENT_ENCRYPTED),
    )
    async def page_image(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        extraction_id: ExtractionId,
        number: Annotated[int, Parameter(ge=1, description="1-based page number.")],
        width: Annotated[int, Parameter(ge=100, le=4000, description="Pixels (never enlarged).")] = 1200,
        format: Annotated[ImageFormat, Parameter(description="`png` or `webp`.")] = "png",
    ) -> Response[bytes]:
        """Rendered from the stored document (cached); boxes in `fields[].evidence` and in
        `.../words` are fractions of this image's width and height."""
        record, data = await _document(db_session, extraction_id, request.user)
        image = await services.page_images.image(
            services.documents, record.document_sha256, data, number, width, format
        )
        return Response(
            image,
            media_type=MEDIA_TYPES[format],
            headers={
                "Cache-Control": "private, max-age=3600",
                "ETag": f'"{record.document_sha256[:16]}-{number}-{width}"',
            },
        )

    @get(
        "/{extraction_id:str}/pages/{number:int}/words",
        summary="The words of a page, with their boxes",
        responses=problem_responses(EXTRACTION_NOT_FOUND, PAGE_NOT_FOUND, DOCUMENT_ENCRYPTED),
    )
    async def page_words(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        extraction_id: ExtractionId,
        number: Annotated[int, Parameter(ge=1, description="1-based page number.")],
    ) -> PageWords:
        """The text map of the page (text layer or OCR): what a click on the page image picks."""
        record, data = await _document(db_session, extraction_id, request.user)
        page = await services.page_images.page(services.documents, record.document_sha256, data, number)
        return PageWords(
            page=number,
            pages=page.page_count,
            width=page.width,
            height=page.height,
            words=[WordBox(w.text, [round(v, 5) for v in w.bbox]) for w in page.words],
        )

    @post(
        "/{extraction_id:str}/review",
        status_code=200,
        guards=[json_body],
        summary="Correct fields, approve or reject",
        responses=problem_responses(
            EXTRACTION_NOT_FOUND, INVALID_CORRECTION, REVIEW_CONFLICT, SCHEMA_VERSION_NOT_FOUND
        ),
    )
    async def review(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        registry: NamedDependency[SchemaRegistry],
        extraction_id: ExtractionId,
        data: Annotated[ReviewIn, Body(description="Corrections and a decision.")],
        if_match: Annotated[
            str | None,
            HeaderParameter(
                name="If-Match",
                description="The `ETag` you read: a review saved since then answers 412 (not overwritten).",
            ),
        ] = None,
    ) -> Response[ExtractionResult]:
        """Each correction is read like an extracted value and checked against the schema version;
        a bad one is a 422 naming it and nothing is saved. The review is stored as an immutable
        revision (who, when, old -> new, decision, note); a decision sends `extraction.reviewed`.
        Approving also teaches the sender memory where this sender prints each field."""
        record = await load_extraction(db_session, extraction_id, request.user)
        current = etag(record.revision)
        if if_match is not None and if_match.strip() not in ("*", current, f"W/{current}"):
            raise Problem(
                REVIEW_CONFLICT,
                f"The extraction is at revision {record.revision}; you reviewed {if_match}.",
                headers={"ETag": current},
                revision=record.revision,
            )
        version = await registry.get(SchemaRef(record.schema_name, record.schema_version))
        corrections = [
            Correction(c.pointer, c.value, msgspec.to_builtins(c.evidence) if c.evidence else None)
            for c in data.corrections
        ]
        outcome = apply_review(
            orjson.loads(record.result),
            version.compiled,
            corrections,
            data.decision,
            data.note,
            request.user,
            record.status,
            utcnow(),
        )
        result = outcome.result
        number = outcome.revision["number"]
        saved = await db_session.execute(
            update(ExtractionRecord)
            .where(ExtractionRecord.id == record.id, ExtractionRecord.revision == record.revision)
            .values(
                revision=number,
                status=outcome.status,
                result=orjson.dumps(result).decode(),
                confidence=result["confidence"],
                review_reasons=reasons_column(result["review"]["reasons"]),
            )
            .execution_options(synchronize_session=False)
        )
        if saved.rowcount != 1:  # type: ignore[attr-defined]  # another review won the race
            await db_session.rollback()
            raise Problem(
                REVIEW_CONFLICT,
                "Another review was saved at the same moment; read it again.",
                revision=number,
            )
        db_session.add(
            ExtractionRevisionRecord(
                extraction_id=record.id,
                number=number,
                reviewer=request.user.key_id,
                reviewer_name=request.user.name,
                decision=data.decision,
                note=data.note,
                changes=outcome.revision["changes"],
                status_after=outcome.status,
            )
        )
        deliveries: list[str] = []
        if data.decision is not None:
            deliveries = await emit(
                db_session,
                event_type="extraction.reviewed",
                data=reviewed_event(record, result, outcome.revision, services.settings.webhooks.public_url),
                owner=record.created_by,
                callback_url=None,
                retention=record.expires_at - utcnow(),
            )
        await db_session.commit()
        metrics.REVIEWS.labels(data.decision or "none").inc()
        if deliveries:
            services.deliverer.kick()
        if data.decision == "approve" and services.settings.app.sender_memory:
            services.after_response(_learn(services, record, result))
        logger.info(
            "extraction_reviewed",
            extraction_id=record.id,
            revision=number,
            decision=data.decision,
            changes=len(outcome.revision["changes"]),
        )
        return Response(ExtractionResult.of(result), headers={"ETag": etag(number)})


def reviewed_event(
    record: ExtractionRecord, result: dict[str, Any], revision: dict[str, Any], public_url: str | None
) -> dict[str, Any]:
    """``extraction.reviewed``: thin like every event (ids, the decision, which fields changed and
    where to fetch the approved data), never the data itself."""
    return {
        "extraction_id": record.id,
        "status": result["review"]["status"],
        "decision": revision["decision"],
        "revision": revision["number"],
        "reviewer": revision["reviewer"],
        "changed": sorted(
            {change["pointer"] for r in result["review"]["revisions"] for change in r["changes"]}
        ),
        "schema": {"name": record.schema_name, "version": record.schema_version},
        "document_name": record.document_name,
        "result_url": absolute(public_url, f"/extractions/{record.id}"),
    }


async def _learn(services: Services, record: ExtractionRecord, result: dict[str, Any]) -> None:
    """Sender memory learns from an approved document, after the answer (it analyses the document
    again): a failure costs the lesson, never the review."""
    try:
        async with services.sessions() as session:
            document = await session.get(DocumentRecord, record.document_sha256)
            if document is not None:
                await learn_from_approved(session, services.documents, record, result, document.content)
    except Exception:
        logger.warning("sender_memory_not_learnt", extraction_id=record.id, exc_info=True)


async def _document(
    session: AsyncSession, extraction_id: str, principal: Principal
) -> tuple[ExtractionRecord, bytes]:
    record = await load_extraction(session, extraction_id, principal)
    document = await session.get(DocumentRecord, record.document_sha256)
    if document is None:  # purged with an expired result; the result itself is gone as well
        raise Problem(EXTRACTION_NOT_FOUND, f"The document of {extraction_id!r} has expired.")
    return record, document.content


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise Problem(
            BAD_REQUEST,
            f"`{name}` needs a time zone (e.g. 2026-12-01T00:00:00Z).",
            errors=[{"pointer": f"/{name}", "detail": "no time zone"}],
        )
    return value
