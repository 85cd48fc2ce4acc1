"""``POST /documents/analyze``: the text map of an uploaded document."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Router, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter

from app.api.common import pages_parameter, problem_responses
from app.api.upload import FileTooLarge, TooManyFiles, Upload, UploadTooLarge, read_uploads
from app.auth.keys import Scope
from app.auth.middleware import requires
from app.documents.analyze import Analysis, AnalyzeOptions
from app.documents.textmap import DocumentMap
from app.documents.views import AnalysisView
from app.extraction import einvoice
from app.extraction.models import EInvoiceReport
from app.jobs.services import Services
from app.lib.problems import (
    BAD_REQUEST,
    DOCUMENT_CORRUPT,
    DOCUMENT_EMPTY,
    DOCUMENT_ENCRYPTED,
    DOCUMENT_PASSWORD_INCORRECT,
    DOCUMENT_TOO_LARGE,
    EINVOICE_INVALID,
    IMAGE_TOO_LARGE,
    INVALID_PAGE_SELECTION,
    TOO_MANY_PAGES,
    UNSUPPORTED_DOCUMENT_TYPE,
    Problem,
)

MULTIPART_OVERHEAD = 64 * 1024
DOCUMENT_PROBLEMS = (
    BAD_REQUEST,
    DOCUMENT_TOO_LARGE,
    TOO_MANY_PAGES,
    IMAGE_TOO_LARGE,
    UNSUPPORTED_DOCUMENT_TYPE,
    EINVOICE_INVALID,
    DOCUMENT_ENCRYPTED,
    DOCUMENT_PASSWORD_INCORRECT,
    DOCUMENT_CORRUPT,
    DOCUMENT_EMPTY,
    INVALID_PAGE_SELECTION,
)


async def read_document(request: Request[Any, Any, Any], max_bytes: int) -> Upload:
    """The uploaded file: the raw body, or the one `file` part of a multipart form (with its file
    name). Reading stops at the first chunk past ``max_bytes`` (a raw body announcing more is
    refused unread)."""
    multipart = request.content_type[0] == "multipart/form-data"
    announced = request.content_length
    try:
        if not multipart and announced is not None and announced > max_bytes:
            raise FileTooLarge(None, max_bytes)
        uploads = await read_uploads(request, lambda head: max_bytes, max_files=1)
    except UploadTooLarge as exc:  # the file's limit, or the body's (the file's plus the form's)
        raise Problem(
            DOCUMENT_TOO_LARGE,
            f"The upload is larger than the limit of {max_bytes} bytes.",
            limit_bytes=max_bytes,
        ) from exc
    except TooManyFiles as exc:
        raise Problem(
            BAD_REQUEST,
            "The form has more than one `file` part; this route reads one document per request "
            "(`POST /batches` takes several).",
            errors=[{"pointer": "/file", "detail": "more than one `file` part"}],
        ) from exc
    if not uploads and multipart:
        raise Problem(
            BAD_REQUEST,
            "The multipart form has no `file` part.",
            errors=[{"pointer": "/file", "detail": "missing"}],
        )
    if not uploads or not uploads[0].data:
        raise Problem(BAD_REQUEST, "The request carries no document.")
    return uploads[0]


class DocumentAnalysis(AnalysisView):
    einvoice: Annotated[
        EInvoiceReport | None,
        msgspec.Meta(
            description="The structured invoice found: the standard XML attachment of a Factur-X / "
            "ZUGFeRD / XRechnung PDF (its profile, XSD findings), or an XML upload; null when none."
        ),
    ] = None


class DocumentController(Controller):
    path = "/documents"
    tags = ["documents"]

    @post(
        "/analyze",
        guards=[requires(Scope.EXTRACT)],
        status_code=200,
        summary="Analyze a document",
        responses=problem_responses(*DOCUMENT_PROBLEMS),
    )
    async def analyze(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        pages: Annotated[
            str | None, pages_parameter("Pages to analyze, e.g. `1-3,7` (default: all).")
        ] = None,
        ocr: Annotated[bool, Parameter(description="OCR pages that have no text layer.")] = True,
        layout: Annotated[bool, Parameter(description="Find layout regions.")] = True,
        password: Annotated[
            str | None, HeaderParameter(name="X-Document-Password", description="For encrypted PDFs.")
        ] = None,
    ) -> DocumentAnalysis:
        """The document's text map: for each page its words (text, box, confidence, source) in
        reading order and its layout regions, and the e-invoice it carries (`einvoice`). Send the
        file as the raw body (any Content-Type) or as the `file` part of a multipart form; its type
        is recognised from its content. An XML upload (UBL, CII) has no pages, only `einvoice`."""
        analyzer = services.documents
        data = (await read_document(request, analyzer.limits.max_bytes)).data
        found = await einvoice.find(data, analyzer.limits, password)
        analysis = (
            Analysis(DocumentMap(page_count=0), "xml")
            if found is not None and not found.pages
            else await analyzer.analyze(
                data, AnalyzeOptions(pages=pages, password=password, ocr=ocr, layout=layout)
            )
        )
        view = AnalysisView.of(analysis, ocr_requested=ocr)
        return DocumentAnalysis(
            **msgspec.structs.asdict(view),
            einvoice=msgspec.convert(found.report, EInvoiceReport) if found is not None else None,
        )


def documents_router(max_bytes: int) -> Router:
    """The documents routes with the body limit of this deployment (file limit plus form overhead)."""
    return Router(
        path="/", route_handlers=[DocumentController], request_max_body_size=max_bytes + MULTIPART_OVERHEAD
    )
