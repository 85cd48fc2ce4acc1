"""RFC 9457 problem details: the one error shape of the API.

Every problem has a stable ``type`` (``/problems/<slug>``, documented at that path by the server
itself), the HTTP status, a title shared by all problems of the type, a ``detail`` for this
occurrence, the ``instance`` path, the ``request_id`` and, for validation problems, ``errors``: a list
of ``{"pointer", "detail"}`` naming each offending place by JSON Pointer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, TypedDict

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException

from app.lib.errors import DocextractError
from app.lib.jsonpointer import pointer

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


CATALOGUE: dict[str, ProblemType] = {}


def _define(slug: str, status: int, title: str, description: str) -> ProblemType:
    kind = ProblemType(slug, status, title, description)
    CATALOGUE[slug] = kind
    return kind


BAD_REQUEST = _define(
    "bad-request",
    400,
    "Malformed request",
    "The body is not valid JSON, or its fields have the wrong names or types; `errors` points at them.",
)
INVALID_SCHEMA_REFERENCE = _define(
    "invalid-schema-reference",
    400,
    "Invalid schema reference",
    "A schema is addressed as `name` (latest version) or `name@version` with a version from 1 to "
    "999999999; some routes accept only `name`.",
)
UNAUTHENTICATED = _define(
    "unauthenticated",
    401,
    "Authentication required",
    "Send a valid, unrevoked API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
)
FORBIDDEN = _define(
    "forbidden",
    403,
    "Missing scope",
    "The API key is valid but lacks the scope this route needs (`admin` or `extract`).",
)
CSRF_TOKEN_INVALID = _define(
    "csrf-token-invalid",
    403,
    "CSRF token missing or wrong",
    "A request that changes something and is authenticated by the review page's session cookie "
    "must send that session's token in `X-CSRF-Token` (`GET /review/session` gives it); sign-in "
    "is refused from another site. Requests with an API key need no token.",
)
NOT_FOUND = _define("not-found", 404, "Not found", "No route matches this path.")
SCHEMA_NOT_FOUND = _define(
    "schema-not-found", 404, "Schema not found", "No schema is registered under this name."
)
SCHEMA_VERSION_NOT_FOUND = _define(
    "schema-version-not-found",
    404,
    "Schema version not found",
    "The schema exists but has no such version.",
)
API_KEY_NOT_FOUND = _define("api-key-not-found", 404, "API key not found", "No API key has this id.")
METHOD_NOT_ALLOWED = _define(
    "method-not-allowed", 405, "Method not allowed", "The route exists but not for this method."
)
SCHEMA_EXISTS = _define(
    "schema-exists",
    409,
    "Schema already exists",
    "A schema with this name is registered; add a version with `POST /schemas/{name}/versions`.",
)
SCHEMA_DEPRECATED = _define(
    "schema-deprecated",
    409,
    "Schema deprecated",
    "The schema was deprecated: its versions stay readable, but it takes no new versions or "
    "extractions until restored with `POST /schemas/{name}/restore`.",
)
REQUEST_TOO_LARGE = _define(
    "request-too-large",
    413,
    "Request too large",
    "The request body is larger than the server accepts.",
)
SCHEMA_TOO_LARGE = _define(
    "schema-too-large",
    413,
    "Schema too large",
    "The schema's JSON is larger than the limit (`DOCEXTRACT_SCHEMAS_MAX_BYTES`, 256 KiB by default).",
)
UNSUPPORTED_MEDIA_TYPE = _define(
    "unsupported-media-type",
    415,
    "Unsupported media type",
    "This route takes `application/json` bodies.",
)
INVALID_SCHEMA = _define(
    "invalid-schema",
    422,
    "Invalid JSON Schema",
    "The schema is not a valid JSON Schema 2020-12 document with an object root, or a local "
    "`$ref` does not resolve; `errors` points at each place.",
)
SCHEMA_REMOTE_REF = _define(
    "schema-remote-ref",
    422,
    "Remote reference not allowed",
    "Schemas must be self-contained: `$ref` may only point inside the document (`#...`). The "
    "server never fetches a URL.",
)
SCHEMA_TOO_COMPLEX = _define(
    "schema-too-complex",
    422,
    "Schema too complex",
    "The schema nests deeper or declares more properties than the limits "
    "(`DOCEXTRACT_SCHEMAS_MAX_DEPTH`, `DOCEXTRACT_SCHEMAS_MAX_PROPERTIES`).",
)
INVALID_SCHEMA_NAME = _define(
    "invalid-schema-name",
    422,
    "Invalid schema name",
    "Names are 1 to 64 characters: lowercase letters, digits, `_` and `-`, starting with a letter or digit.",
)
INVALID_REQUEST = _define(
    "invalid-request",
    422,
    "Invalid request",
    "The request is well formed but its values are not acceptable.",
)
DOCUMENT_TOO_LARGE = _define(
    "document-too-large",
    413,
    "Document too large",
    "The file is larger than the limit (`DOCEXTRACT_INGEST_MAX_BYTES`, 50 MiB by default).",
)
TOO_MANY_PAGES = _define(
    "too-many-pages",
    413,
    "Too many pages",
    "The document has more pages than the limit (`DOCEXTRACT_INGEST_MAX_PAGES`); select fewer with `pages`.",
)
IMAGE_TOO_LARGE = _define(
    "image-too-large",
    413,
    "Image too large",
    "An image has more pixels than the limit (`DOCEXTRACT_INGEST_MAX_PIXELS`); this also stops "
    "decompression bombs.",
)
UNSUPPORTED_DOCUMENT_TYPE = _define(
    "unsupported-document-type",
    415,
    "Unsupported document type",
    "Documents are PDF, PNG, JPEG, TIFF, WebP or e-invoice XML (UBL 2.1, UN/CEFACT CII), recognised by "
    "their content (not name or Content-Type).",
)
EINVOICE_INVALID = _define(
    "einvoice-invalid",
    422,
    "Unreadable e-invoice XML",
    "The XML upload is not a UBL 2.1 Invoice/CreditNote or a CII CrossIndustryInvoice, is malformed, "
    "declares a DTD (refused: no entities, nothing fetched) or exceeds the size or depth limits; "
    "`reason` says which. Nothing was stored.",
)
EXPORT_INCOMPLETE = _define(
    "export-incomplete",
    422,
    "Business terms missing for the export",
    "The extraction lacks business terms that EN 16931 makes mandatory for a UBL or CII invoice; "
    "`missing` lists them (e.g. `BT-40` seller country code). Correct the extraction (review) and retry.",
)
EXPORT_INVALID = _define(
    "export-invalid",
    422,
    "The extraction does not make a valid e-invoice",
    "The document built from the extraction breaks the UBL or CII XSD (e.g. a currency that is not an "
    "ISO 4217 code); `violations` lists the findings. Correct the extraction (review) and retry.",
)
EXPORT_NOT_SUPPORTED = _define(
    "export-not-supported",
    422,
    "The schema cannot be exported as an e-invoice",
    "UBL and CII exports need an invoice: the built-in `invoice` schema or a schema whose properties "
    "hold EN 16931 business terms (`x-en16931`). JSON export works for every schema.",
)
DOCUMENT_ENCRYPTED = _define(
    "document-encrypted",
    422,
    "Document is encrypted",
    "The PDF needs a password: send it in the `X-Document-Password` header (`--password` in the CLI).",
)
DOCUMENT_PASSWORD_INCORRECT = _define(
    "document-password-incorrect", 422, "Wrong document password", "The password does not open the PDF."
)
DOCUMENT_CORRUPT = _define(
    "document-corrupt",
    422,
    "Document corrupt",
    "The file is damaged or truncated and cannot be read.",
)
DOCUMENT_EMPTY = _define("document-empty", 422, "Document has no pages", "The document has zero pages.")
INVALID_PAGE_SELECTION = _define(
    "invalid-page-selection",
    422,
    "Invalid page selection",
    "`pages` is a comma-separated list of 1-based pages and ranges, e.g. `1-3,7`, within the document.",
)
OCR_FAILED = _define(
    "ocr-failed",
    503,
    "OCR failed",
    "The OCR worker failed on this document; nothing was stored. Retry; if it persists, check the logs.",
)
ENGINE_UNAVAILABLE = _define(
    "engine-unavailable",
    503,
    "Extraction engine unavailable",
    "No extraction engine is configured, or it cannot be reached; nothing was lost: retry later "
    "(`Retry-After`), and see `/ready`.",
)
SCHEMA_NOT_SUPPORTED = _define(
    "schema-not-supported",
    422,
    "Schema not supported by the engine",
    "The engine's grammar cannot compile this schema; simplify it (see `post_decoding_keywords`).",
)
SCHEMA_RECURSIVE = _define(
    "schema-recursive",
    422,
    "Recursive schema",
    "A `$ref` leads back to where it is (the schema describes an endlessly nested shape); an "
    "extraction needs a finite one: write the nesting out to the depth your documents use.",
)
EXTRACTION_NOT_FOUND = _define(
    "extraction-not-found", 404, "Extraction not found", "No extraction has this id (or it expired)."
)
NOT_READY = _define(
    "not-ready",
    503,
    "Service not ready",
    "A dependency is unreachable or the database is not migrated; see `checks`.",
)
PAGE_NOT_FOUND = _define(
    "page-not-found", 404, "Page not found", "The document has no page with this number."
)
INVALID_CORRECTION = _define(
    "invalid-correction",
    422,
    "Invalid correction",
    "A correction names no field of the schema, or its value cannot be read as the field's kind "
    "or breaks the schema; `errors` points at each (`/corrections/<i>/...`) and names the field.",
)
REVIEW_CONFLICT = _define(
    "review-conflict",
    412,
    "Reviewed meanwhile",
    "`If-Match` names an older revision: someone reviewed the extraction since you read it. "
    "Read it again (`GET /extractions/{id}`, its `ETag`) and review that.",
)
SENDER_NOT_FOUND = _define(
    "sender-not-found",
    404,
    "Sender memory not found",
    "No sender memory of yours has this id (`GET /senders`); it may have been forgotten already.",
)
JOB_NOT_FOUND = _define("job-not-found", 404, "Job not found", "No job has this id (or it expired).")
JOB_NOT_FINISHED = _define(
    "job-not-finished",
    409,
    "Job not finished",
    "The job is still queued or running; poll `GET /jobs/{id}` (see `Retry-After`) or wait for the webhook.",
)
JOB_FAILED = _define(
    "job-failed",
    409,
    "Job failed",
    "The job ended without a result; `error` says in which phase, why, and whether submitting again "
    "may succeed (`retryable`).",
)
JOB_CANCELLED = _define("job-cancelled", 409, "Job cancelled", "The job was cancelled; it has no result.")
JOB_FINISHED = _define(
    "job-finished", 409, "Job already finished", "A finished job cannot be cancelled; its result stays."
)
QUEUE_FULL = _define(
    "queue-full",
    429,
    "Too many jobs waiting",
    "The queue is at its limit (DOCEXTRACT_JOBS_MAX_QUEUED); nothing was stored. Retry after "
    "`Retry-After` seconds.",
)
TOO_MANY_JOBS_IN_FLIGHT = _define(
    "too-many-jobs-in-flight",
    429,
    "Too many jobs in flight for this key",
    "This API key has as many queued or running jobs as allowed (DOCEXTRACT_JOBS_MAX_IN_FLIGHT_PER_KEY); "
    "nothing was stored. Retry when some have finished.",
)
BATCH_NOT_FOUND = _define("batch-not-found", 404, "Batch not found", "No batch has this id (or it expired).")
INVALID_BATCH = _define(
    "invalid-batch",
    422,
    "Invalid batch",
    "A batch is several `file` parts of a multipart form, or one zip archive; it needs at least one "
    "document. `errors` names the offending files.",
)
BATCH_TOO_LARGE = _define(
    "batch-too-large",
    413,
    "Batch too large",
    "The batch has more documents or bytes than allowed (DOCEXTRACT_JOBS_MAX_BATCH_DOCUMENTS, "
    "DOCEXTRACT_JOBS_MAX_BATCH_BYTES), or a zip entry unpacks far beyond its compressed size.",
)
INVALID_EXPORT_OPTION = _define(
    "invalid-export-option",
    400,
    "Invalid export option",
    "`GET /batches/{id}/export` takes `format` `csv` or `jsonl` (without it, `Accept: text/csv`, "
    "`application/x-ndjson` or `application/jsonl`; else CSV), `rows` `documents`, `line_items` or an "
    "array of objects by its dotted name, `decimal` `.` or `,`, `delimiter` `,`, `;` or `tab`, "
    "`date_format` `iso`, `dmy` or `mdy`, and `bom` `true` or `false`; `errors` names each wrong one.",
)
NO_LINE_ITEMS = _define(
    "no-line-items",
    400,
    "No line items to export",
    "`rows=line_items` needs an array of objects in the batch's schema (`line_items`, else the first "
    "one); `rows=<name>` names one by its dotted name. The schema has none, or not that one: "
    "`available` lists the names it has.",
)
UNSAFE_ARCHIVE = _define(
    "unsafe-archive",
    422,
    "Unsafe archive",
    "The zip has absolute paths, `..` components, links, encrypted or nested archives; nothing was stored.",
)
UNSAFE_CALLBACK_URL = _define(
    "unsafe-callback-url",
    422,
    "Callback URL refused",
    "Callbacks are http(s) URLs whose host resolves only to public addresses (no loopback, private, "
    "link-local, multicast or reserved ones) unless DOCEXTRACT_WEBHOOKS_ALLOW_NETWORKS admits them.",
)
CALLBACK_SECRET_MISSING = _define(
    "callback-secret-missing",
    422,
    "No callback signing secret",
    "A `callback_url` is signed with this API key's callback secret: create it once with "
    "`POST /webhooks/callback-secret` and keep it to verify the signatures.",
)
WEBHOOK_NOT_FOUND = _define(
    "webhook-not-found", 404, "Webhook endpoint not found", "No webhook endpoint has this id."
)
DELIVERY_NOT_FOUND = _define(
    "delivery-not-found", 404, "Delivery not found", "This endpoint has no delivery with this id."
)
UNKNOWN_EVENT_TYPE = _define(
    "unknown-event-type",
    422,
    "Unknown event type",
    "Subscribe to `extraction.completed`, `extraction.needs_review`, `extraction.failed` and/or "
    "`batch.completed`.",
)
IDEMPOTENCY_KEY_REUSED = _define(
    "idempotency-key-reused",
    422,
    "Idempotency key reused with another request",
    "This `Idempotency-Key` was already used for a request with a different body or target; use a "
    "new key for a new request.",
)
IDEMPOTENCY_KEY_IN_USE = _define(
    "idempotency-key-in-use",
    409,
    "Request with this idempotency key in progress",
    "A request with the same `Idempotency-Key` is still being processed; retry after `Retry-After`.",
)
INVALID_IDEMPOTENCY_KEY = _define(
    "invalid-idempotency-key",
    400,
    "Invalid idempotency key",
    "An `Idempotency-Key` is 1 to 255 printable ASCII characters.",
)
INTERNAL_ERROR = _define(
    "internal-error",
    500,
    "Internal error",
    "An unexpected failure on the server; the `request_id` finds it in the logs.",
)


class ErrorItem(TypedDict):
    pointer: str
    detail: str


class Problem(ProblemDetailsException):
    """An HTTP error that renders as problem+json of a catalogued type: raised by controllers and
    middleware; errors inside the domain are ``app.lib.errors.DocextractError``, mapped by ``problem_of``."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        *,
        errors: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        extra: dict[str, Any] = dict(extensions)
        if errors is not None:
            extra["errors"] = errors
        super().__init__(
            detail=detail,
            status_code=kind.status,
            headers=headers,
            extra=extra,
            type_=kind.uri,
            title=kind.title,
        )
        self.kind = kind


def problem_of(exc: DocextractError) -> Problem:
    """The problem a domain error becomes at the edge: same type, detail, headers and extensions."""
    return Problem(exc.kind, exc.detail, headers=exc.headers, **exc.extra)


def domain_error_handler(request: Request[Any, Any, Any], exc: DocextractError) -> Response[Any]:
    """The one mapping of domain errors to HTTP answers."""
    return problem_response(request, problem_of(exc))


def request_id_of(request: Request[Any, Any, Any]) -> str:
    """The id the request-id middleware assigned, or a fresh one (routing errors skip middleware)."""
    state = request.scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex
    return str(state["request_id"])


def problem_response(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    """Render any problem exception with ``instance`` and ``request_id`` filled in."""
    if not isinstance(exc, Problem):
        exc = _from_http_exception(exc)
    exc.instance = request.url.path
    response = exc.to_response(request)
    response.content["request_id"] = request_id_of(request)
    response.headers["X-Request-ID"] = response.content["request_id"]
    return response


_BY_STATUS = {
    400: BAD_REQUEST,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: REQUEST_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: INVALID_REQUEST,
    429: QUEUE_FULL,
    503: NOT_READY,
}


def _from_http_exception(exc: HTTPException) -> Problem:
    """Litestar's own errors (routing, body parsing, auth middleware) in our catalogue."""
    if exc.status_code == 400 and "JSON is malformed" in (exc.detail or ""):
        return Problem(
            BAD_REQUEST,
            f"The request body is not valid JSON: {exc.detail}",
            errors=[{"pointer": "", "detail": exc.detail}],
        )
    if isinstance(exc, ValidationException):
        return Problem(
            BAD_REQUEST,
            "The request does not have the expected fields and types.",
            errors=_validation_errors(exc) or [{"pointer": "", "detail": exc.detail}],
        )
    kind = _BY_STATUS.get(exc.status_code)
    if kind is None:
        kind = BAD_REQUEST if exc.status_code < 500 else INTERNAL_ERROR
    detail = exc.detail if exc.status_code < 500 else kind.description
    return Problem(kind, detail, headers=exc.headers)


_MISSING = re.compile(r"(?:missing required|unknown) field `([^`]+)`")
_MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '([^']+)'")


def _validation_errors(exc: ValidationException) -> list[ErrorItem]:
    """Litestar's ``{"key": "data.items.0", "message": ...}`` entries as JSON Pointers (a query
    parameter ``limit`` is ``/limit``); a missing parameter, which Litestar reports in ``detail``
    only, is named the same way."""
    extra = exc.extra
    if not extra and (missing_parameter := _MISSING_PARAMETER.search(exc.detail)):
        return [{"pointer": pointer([missing_parameter.group(1)]), "detail": "missing"}]
    errors: list[ErrorItem] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        parts = [p for p in str(item.get("key") or "").split(".") if p]
        if parts[:1] == ["data"]:  # the body as a whole
            parts = parts[1:]
        if missing := _MISSING.search(message):
            parts.append(missing.group(1))
        errors.append({"pointer": pointer(parts), "detail": message})
    return errors


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return problem_response(request, _from_http_exception(exc))


def too_deep_handler(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """The JSON parser gives up on pathologically nested bodies; that is the client's doing."""
    logger.warning("request_nested_too_deeply", path=request.url.path)
    return problem_response(
        request,
        Problem(
            BAD_REQUEST,
            "The request body is nested too deeply to parse.",
            errors=[{"pointer": "", "detail": "nesting exceeds the parser's limit"}],
        ),
    )


def unexpected_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unforeseen: log it whole, tell the client only the request id."""
    logger.exception("unhandled_exception", path=request.url.path, exc_info=exc)
    return problem_response(request, Problem(INTERNAL_ERROR, INTERNAL_ERROR.description))
