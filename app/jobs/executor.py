"""Run one job: claim it, extract while renewing the lease, then record the outcome exactly once.

Every runner (in-process tasks, Redis workers) calls ``JobExecutor.run(job_id)``; the runners only
decide *when* and *where*. The outcome, the stored result, the webhook deliveries and the batch
count are written in one transaction guarded by the lease token, so a runner that lost its lease
(it stalled, or the job was cancelled) writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import BatchRecord, DocumentRecord, ExtractionRecord, JobRecord, utcnow
from app.extraction.service import Extraction, Extractor
from app.extraction.store import reasons_column
from app.jobs import store
from app.jobs.passwords import ENCRYPTED, LEGACY, JobPasswords, PasswordUnreadable
from app.jobs.views import batch_summary, event_data
from app.lib import backoff
from app.lib.errors import DocextractError
from app.lib.settings import Settings
from app.memory.service import memory_lookup, memory_owner_of
from app.registry.refs import SchemaRef
from app.registry.service import SchemaRegistry, SchemaVersion
from app.registry.validation import schema_limits
from app.trust.assess import ReviewPolicy
from app.webhooks.events import emit

logger = structlog.get_logger(__name__)

PROGRESS_INTERVAL_S = 2.0


@dataclass(frozen=True)
class PublicError:
    """What a client learns about a failed job: which phase, what kind, whether to try again."""

    type: str
    category: str
    detail: str
    retryable: bool
    phase: str

    def to_dict(self, attempts: int) -> dict[str, Any]:
        return {**self.__dict__, "attempts": attempts}


PASSWORD_UNREADABLE = PublicError(
    "/problems/internal-error",
    "password_unreadable",
    "the document password kept with the job cannot be decrypted (the server's jobs secret key "
    "changed); submit the document again",
    retryable=True,  # submitting again may help; running this job again cannot
    phase="internal",
)


def public_error(exc: BaseException) -> PublicError:
    """A failure as the client sees it: a domain error says its problem type, phase and whether to
    retry; anything else is an internal error worth retrying."""
    if isinstance(exc, PasswordUnreadable):
        return PASSWORD_UNREADABLE
    if isinstance(exc, DocextractError):
        category = str(exc.extra.get("category", exc.kind.slug.replace("-", "_")))
        return PublicError(exc.kind.uri, category, exc.detail or exc.kind.title, exc.retryable, exc.phase)
    return PublicError("/problems/internal-error", "internal_error", "unexpected failure", True, "internal")


UNREACHABLE = PublicError(
    "/problems/internal-error", "document_missing", "the stored document is gone", False, "ingest"
)


class JobExecutor:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        extractor: Extractor,
        passwords: JobPasswords,
        *,
        on_requeued: Callable[[str, float], Awaitable[None]] | None = None,
        on_deliveries: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``on_requeued(job_id, delay_s)`` tells the runner when a retry is due (the Redis runner
        schedules it); ``on_deliveries`` gets new webhook deliveries to send at once."""
        self.settings = settings
        self.sessions = sessions
        self.extractor = extractor
        self.passwords = passwords
        self.lease = timedelta(seconds=settings.jobs.lease_s)
        # Renew a third into the lease, and often enough that pollers see progress move.
        self.heartbeat_s = min(settings.jobs.lease_s / 3, PROGRESS_INTERVAL_S)
        self.on_requeued = on_requeued
        self.on_deliveries = on_deliveries

    async def run(self, job_id: str) -> str | None:
        """Run the job if it is due; the status it ended in, or ``None`` when it was not ours."""
        async with self.sessions() as session:
            held = await store.claim(session, job_id, self.lease)
            if held is None:
                return None
            job = await session.get(JobRecord, job_id)
            assert job is not None
            log = logger.bind(job_id=job_id, attempt=held.attempt)
            document = await session.get(DocumentRecord, job.document_sha256)
            refusal = self._refusal(held, document)
            ref, params = SchemaRef(job.schema_name, job.schema_version), dict(job.params)
            memory_owner = await memory_owner_of(session, job.created_by)
        if refusal is not None or document is None:
            return await self._fail(held, refusal or UNREACHABLE, log)
        log.info("job_started")
        try:
            password = self._password(params)
            async with self.sessions() as session:
                version = await SchemaRegistry(session, schema_limits(self.settings)).get(ref)
            extraction = await self._extract_holding_lease(
                held, document.content, version, params, password, memory_owner
            )
        except _LeaseLost:
            log.info("job_lease_lost")
            return None
        except Exception as exc:  # every failure becomes a recorded outcome, never a silent loss
            error = public_error(exc)
            unreadable = isinstance(exc, PasswordUnreadable)  # no later attempt has another key
            if unreadable:  # the key is the cause, not the code: no traceback
                log.error("job_password_unreadable", hint="DOCEXTRACT_JOBS_SECRET_KEY differs or changed")  # noqa: TRY400
            elif not isinstance(exc, DocextractError):
                log.exception("job_crashed")
            if error.retryable and not unreadable and held.attempt < self.settings.jobs.max_attempts:
                return await self._requeue(held, error, log)
            return await self._fail(held, error, log)
        return await self._succeed(held, extraction, log)

    def _password(self, params: dict[str, Any]) -> str | None:
        """The document password, decrypted only now that the job runs (never stored in clear)."""
        token, legacy = params.get(ENCRYPTED), params.get(LEGACY)
        if token is not None:
            return self.passwords.open(str(token))
        return None if legacy is None else str(legacy)  # queued by a release that kept it in clear

    def _refusal(self, held: store.Claim, document: DocumentRecord | None) -> PublicError | None:
        if held.attempt > self.settings.jobs.max_attempts:
            # Its runners kept dying (a document that kills the worker): stop, and say so.
            return PublicError(
                "/problems/internal-error",
                "worker_lost",
                "the job's runner stopped (crashed or was killed) on every attempt",
                retryable=False,
                phase="internal",
            )
        if document is None:  # kept as long as the job: only a manual deletion gets here
            return UNREACHABLE
        return None

    async def _extract_holding_lease(
        self,
        held: store.Claim,
        data: bytes,
        version: SchemaVersion,
        params: dict[str, Any],
        password: str | None,
        memory_owner: str,
    ) -> Extraction:
        """``memory_owner``: whose sender memory reads the document (the job's creator's team)."""
        progress = [0, 0]

        def on_progress(done: int, total: int) -> None:
            progress[0], progress[1] = done, total

        review = ReviewPolicy.of(
            version.schema, params.get("min_confidence"), params.get("require"), params.get("checks")
        )
        task = asyncio.create_task(
            self.extractor.extract(
                data,
                version,
                pages=params.get("pages"),
                password=password,
                on_progress=on_progress,
                review=review,
                memory=memory_lookup(memory_owner, version.name, sessions=self.sessions)
                if self.settings.app.sender_memory
                else None,
            )
        )
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.heartbeat_s)
                if done:
                    return task.result()
                async with self.sessions() as session:
                    ours = await store.renew(session, held, self.lease, progress[0], progress[1] or None)
                if not ours:
                    raise _LeaseLost
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _succeed(self, held: store.Claim, extraction: Extraction, log: Any) -> str | None:
        result = extraction.result
        pages = len(result.get("pages", []))
        async with self.sessions() as session:
            job = await store.release(
                session,
                held,
                {
                    "status": result["status"],
                    "extraction_id": result["id"],
                    "finished_at": utcnow(),
                    "pages_done": pages,
                    "pages_total": pages,
                    "error": None,
                },
            )
            if job is None:
                log.info("job_lease_lost")
                return None
            session.add(
                ExtractionRecord(
                    id=result["id"],
                    schema_name=job.schema_name,
                    schema_version=job.schema_version,
                    status=result["status"],
                    document_sha256=job.document_sha256,
                    document_name=job.filename,
                    confidence=result["confidence"],
                    review_reasons=reasons_column(result["review"]["reasons"]),
                    result=orjson.dumps(result).decode(),
                    created_by=job.created_by,
                    expires_at=job.expires_at,
                )
            )
            event = (
                "extraction.completed" if result["status"] == store.SUCCEEDED else "extraction.needs_review"
            )
            deliveries = await finish_events(session, job, event, self.settings, result["review"]["reasons"])
            await session.commit()
        log.info("job_finished", status=result["status"])
        self._deliver(deliveries)
        return str(result["status"])

    async def _fail(self, held: store.Claim, error: PublicError, log: Any) -> str | None:
        async with self.sessions() as session:
            job = await store.release(
                session,
                held,
                {"status": store.FAILED, "finished_at": utcnow(), "error": error.to_dict(held.attempt)},
            )
            if job is None:
                return None
            deliveries = await finish_events(session, job, "extraction.failed", self.settings, [])
            await session.commit()
        log.warning("job_failed", category=error.category, phase=error.phase)
        self._deliver(deliveries)
        return store.FAILED

    async def _requeue(self, held: store.Claim, error: PublicError, log: Any) -> str | None:
        delay = backoff.exponential_s(held.attempt, self.settings.jobs.retry_base_s)
        async with self.sessions() as session:
            job = await store.release(
                session,
                held,
                {
                    "status": store.QUEUED,
                    "not_before": utcnow() + timedelta(seconds=delay),
                    "error": error.to_dict(held.attempt),
                },
                password_kept=True,
            )
            if job is None:
                return None
            await session.commit()
        log.info("job_retry_scheduled", delay_s=round(delay, 2), category=error.category)
        if self.on_requeued is not None:
            await self.on_requeued(held.job_id, delay)
        return store.QUEUED

    def _deliver(self, deliveries: list[str]) -> None:
        if deliveries and self.on_deliveries is not None:
            self.on_deliveries(deliveries)


class _LeaseLost(Exception):
    """The job was cancelled, or another runner took it over after our lease expired."""


async def finish_events(
    session: AsyncSession, job: JobRecord, event: str | None, settings: Settings, reasons: list[str]
) -> list[str]:
    """In the finishing transaction: the job's event (none for a cancellation), its batch's count,
    and ``batch.completed`` when this was the batch's last job. Returns the new deliveries."""
    retention = timedelta(days=settings.app.retention_days)
    deliveries: list[str] = []
    if event is not None:
        deliveries += await emit(
            session,
            event_type=event,
            data=event_data(job, settings.webhooks.public_url, reasons),
            owner=job.created_by,
            callback_url=job.callback_url,
            retention=retention,
        )
    if job.batch_id is not None and await store.count_batch_finished(session, job.batch_id):
        batch = await session.get(BatchRecord, job.batch_id)
        assert batch is not None
        deliveries += await emit(
            session,
            event_type="batch.completed",
            data=await batch_summary(session, batch, settings.webhooks.public_url, with_jobs=False),
            owner=batch.created_by,
            callback_url=batch.callback_url,
            retention=retention,
        )
    return deliveries
