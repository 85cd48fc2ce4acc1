"""Jobs and batches as clients see them, typed so the OpenAPI spec describes every field.

Field order is the order on the wire. ``UNSET`` fields are left out of the JSON (not null): a job
shows either its final ``error`` or, while a retry is scheduled, its ``last_error``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

JobStatus = Literal["queued", "running", "succeeded", "needs_review", "failed", "cancelled"]
Timestamp = Annotated[str, msgspec.Meta(description="ISO 8601, UTC.")]


class SchemaRef(msgspec.Struct):
    name: str
    version: int


class JobProgress(msgspec.Struct):
    pages_done: int
    pages_total: Annotated[int | None, msgspec.Meta(description="Null until the document is opened.")]


class JobError(msgspec.Struct, forbid_unknown_fields=True):
    """Why a job failed (or, as ``last_error``, why its last attempt did). Converted from the stored
    error: a key it does not declare is an error, never silently dropped."""

    type: Annotated[str, msgspec.Meta(description="The problem type, e.g. `/problems/engine-unavailable`.")]
    category: str
    detail: str
    retryable: Annotated[bool, msgspec.Meta(description="Whether submitting again may succeed.")]
    phase: Annotated[str, msgspec.Meta(description="`ingest`, `schema`, `extraction` or `internal`.")]
    attempts: int


class JobLinks(msgspec.Struct):
    self: str
    result: str


class JobView(msgspec.Struct, kw_only=True):
    """An asynchronous extraction: ``GET /jobs/{id}``, and the 202 of ``POST /extract``."""

    id: Annotated[str, msgspec.Meta(description="`job_...`")]
    status: JobStatus
    schema: SchemaRef
    filename: str | None
    progress: JobProgress
    attempts: int
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    expires_at: Timestamp
    batch_id: str | None
    callback_url: str | None
    extraction_id: Annotated[
        str | None, msgspec.Meta(description="The result's id (`GET /extractions/{id}`) once finished.")
    ]
    error: JobError | UnsetType | None = UNSET
    """The final error; absent while a retry is scheduled."""
    links: JobLinks
    last_error: JobError | UnsetType = UNSET
    """Only while a retry is scheduled: the error of the last attempt."""


class JobPage(msgspec.Struct):
    items: list[JobView]


class BatchJob(msgspec.Struct):
    id: str
    filename: str | None
    status: JobStatus
    result_url: str
    error: Annotated[JobError | None, msgspec.Meta(description="Set when the job failed.")]


class BatchView(msgspec.Struct):
    """Many documents, one job each: ``GET /batches/{id}`` and the 202 of ``POST /batches``."""

    batch_id: Annotated[str, msgspec.Meta(description="`bat_...`")]
    status: Literal["running", "completed"]
    schema: SchemaRef
    jobs_total: int
    jobs_finished: int
    counts: Annotated[dict[str, int], msgspec.Meta(description="Jobs per status.")]
    created_at: Timestamp
    completed_at: Timestamp | None
    batch_url: str
    jobs: list[BatchJob] | UnsetType = UNSET
