"""Domain errors: what goes wrong inside docextract, raised where it goes wrong and mapped to an RFC 9457
problem only at the edge (``app.lib.problems.domain_error_handler`` for HTTP, the CLI and the job
executor for their own outputs).

Each error carries the problem type it becomes (``kind``), the ``detail`` for this occurrence and the
problem's extension members (``extra``: ``errors``, ``limit_bytes``, ``category``...). Its class says
in which phase of a job it happened, so a failed job reports that phase without guessing from slugs.

The hierarchy (like httpx's ``_exceptions.py``)::

    DocextractError
    ├── DocumentError     phase "ingest": the document cannot be read or is over a limit
    │   │                 (too large, corrupt, encrypted, wrong password, no pages, bad page selection)
    │   └── OcrError      phase "ingest": the OCR worker failed on a page (retryable)
    ├── SchemaError       phase "schema": the schema asked for cannot be used (not found, no such
    │                     version, recursive)
    ├── ExtractionError   phase "extraction": the extraction cannot run against this schema or engine
    │   │                 (schema deprecated, schema not supported by the engine's grammar)
    │   └── EngineUnavailable   the engine is not configured or failed (retryable unless it says not)
    └── RequestError      the caller asked for what the service refuses outside any job: an unknown
                          id, a full queue, an unsafe callback URL, an invalid key request

Engines raise their own ``app.engines.base.EngineError`` (with a public ``category``); the extraction
service turns it into an ``ExtractionError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from app.lib.problems import ErrorItem, ProblemType

Phase = Literal["ingest", "schema", "extraction", "internal"]


class DocextractError(Exception):
    """Base of the domain errors. ``extensions`` become the problem's extension members."""

    phase: ClassVar[Phase] = "internal"
    retryable_by_default: ClassVar[bool] = False

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        *,
        errors: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = headers
        self.extra: dict[str, Any] = dict(extensions)
        if errors is not None:
            self.extra["errors"] = errors

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: an explicit ``retryable`` extension wins."""
        return bool(self.extra.get("retryable", self.retryable_by_default))


class DocumentError(DocextractError):
    phase = "ingest"


class OcrError(DocumentError):
    retryable_by_default = True


class SchemaError(DocextractError):
    phase = "schema"


class ExtractionError(DocextractError):
    phase = "extraction"


class EngineUnavailable(ExtractionError):
    retryable_by_default = True


class RequestError(DocextractError):
    """Refused before any work starts (never the failure of a job)."""
