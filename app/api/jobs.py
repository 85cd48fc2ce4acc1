"""``/jobs``: status, progress, result and cancellation of asynchronous extractions."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.common import problem_responses
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.db.models import ExtractionRecord, JobRecord, utcnow
from app.extraction.models import ExtractionResult
from app.jobs import store
from app.jobs.executor import finish_events
from app.jobs.models import JobPage, JobView
from app.jobs.services import Services
from app.jobs.views import job_view
from app.lib.problems import (
    JOB_CANCELLED,
    JOB_FAILED,
    JOB_FINISHED,
    JOB_NOT_FINISHED,
    JOB_NOT_FOUND,
    Problem,
)

DbSession = NamedDependency[AsyncSession]
JobId = Annotated[str, Parameter(description="`job_...`")]
POLL_AFTER_S = 2


async def load_job(session: AsyncSession, job_id: str, principal: Principal) -> JobRecord:
    job = await session.get(JobRecord, job_id)
    if job is None or job.expires_at <= utcnow() or not principal.sees(job.created_by):
        raise Problem(JOB_NOT_FOUND, f"No job has the id {job_id!r}.")
    return job


class JobController(Controller):
    path = "/jobs"
    tags = ["jobs"]
    guards = [requires(Scope.EXTRACT)]

    @get("/", summary="Recent jobs of this key")
    async def list_jobs(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        status: Annotated[
            str | None, Parameter(description="Only jobs in this status (`queued`, `running`, ...).")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> JobPage:
        query = select(JobRecord).where(JobRecord.expires_at > utcnow())
        query = query.where(request.user.owned(JobRecord.created_by))
        if status is not None:
            query = query.where(JobRecord.status == status)
        jobs = await db_session.scalars(query.order_by(JobRecord.created_at.desc()).limit(limit))
        public_url = services.settings.webhooks.public_url
        return JobPage(items=[job_view(job, public_url) for job in jobs])

    @get("/{job_id:str}", summary="A job's status and progress", responses=problem_responses(JOB_NOT_FOUND))
    async def get_job(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        job_id: JobId,
    ) -> JobView:
        """`status` is `queued`, `running`, `succeeded`, `needs_review`, `failed` or `cancelled`;
        `progress` counts pages; a failed job's `error` says in which phase, why, and whether to
        submit again (`retryable`); a job waiting for a retry shows its `last_error`."""
        job = await load_job(db_session, job_id, request.user)
        return job_view(job, services.settings.webhooks.public_url)

    @get(
        "/{job_id:str}/result",
        summary="A finished job's extraction result",
        responses=problem_responses(JOB_NOT_FOUND, JOB_NOT_FINISHED, JOB_FAILED, JOB_CANCELLED),
    )
    async def get_result(
        self, request: Request[Principal, Any, Any], db_session: DbSession, job_id: JobId
    ) -> ExtractionResult:
        """The same body the synchronous `POST /extract` returns."""
        job = await load_job(db_session, job_id, request.user)
        if job.status in store.ACTIVE:
            raise Problem(
                JOB_NOT_FINISHED,
                f"The job is {job.status}.",
                headers={"Retry-After": str(POLL_AFTER_S)},
                job_status=job.status,
            )
        if job.status == store.FAILED:
            raise Problem(JOB_FAILED, "The job failed; see `error`.", error=job.error)
        if job.status == store.CANCELLED:
            raise Problem(JOB_CANCELLED, "The job was cancelled.")
        record = await db_session.get(ExtractionRecord, job.extraction_id)
        if record is None:
            raise Problem(JOB_NOT_FOUND, f"The result of {job_id!r} has expired.")
        return ExtractionResult.decode(record.result)

    @delete(
        "/{job_id:str}",
        status_code=200,
        summary="Cancel a job",
        responses=problem_responses(JOB_NOT_FOUND, JOB_FINISHED),
    )
    async def cancel_job(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        job_id: JobId,
    ) -> JobView:
        """A queued job never runs; a running one stops at its runner's next lease renewal (within
        2 s by default) and its result, if it was just finishing, is discarded. Returns the job."""
        await load_job(db_session, job_id, request.user)
        settings = services.settings
        job = await store.cancel(db_session, job_id)
        if job is None:
            raise Problem(JOB_FINISHED, f"The job {job_id!r} has already finished; its result stays.")
        deliveries = await finish_events(db_session, job, None, settings, [])
        await db_session.commit()
        if deliveries:
            services.deliverer.kick()
        return job_view(job, settings.webhooks.public_url)
