"""Sending webhook deliveries: durable, retried with backoff, signed, and SSRF-safe at send time.

Every delivery row is its own small job. A sender claims it with a compare-and-set on
``next_attempt_at`` (which then doubles as a lease), so API processes and workers sharing one
database never send the same attempt twice; a sender that dies mid-attempt loses only its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.db.models import WebhookAttemptRecord, WebhookDeliveryRecord, WebhookEndpointRecord, utcnow
from app.lib import backoff, metrics
from app.lib.settings import WebhookSettings
from app.webhooks.signing import sign
from app.webhooks.ssrf import Address, UnsafeCallback, resolve_callback
from app.webhooks.status import DeliveryStatus

logger = structlog.get_logger(__name__)

EXCERPT_BYTES = 1024
LEASE_MARGIN_S = 30.0
GONE_REASON = "receiver answered 410 Gone"
USER_AGENT = f"docextract-webhooks/{__version__}"


def backoff_s(attempt: int, settings: WebhookSettings, jitter: float | None = None) -> float:
    """Delay after failed attempt ``attempt`` (1-based): doubling from ``retry_base_s`` with a
    jitter factor in [0.8, 1.2] so receivers that failed together are not retried together. The cap
    applies after the jitter, so with the defaults the schedule spans more than a day even when
    every draw is the lowest."""
    return backoff.exponential_s(attempt, settings.retry_base_s, settings.retry_max_s, jitter=jitter)


def next_delay_s(attempt: int, settings: WebhookSettings, retry_after: float | None) -> float:
    """Backoff, stretched to what the receiver asked for in ``Retry-After`` (within the cap)."""
    return backoff.honour_retry_after(backoff_s(attempt, settings), retry_after, settings.retry_max_s)


@dataclass
class _Outcome:
    status_code: int | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None
    connect_failed: bool = False


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def purge_deliveries(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete deliveries past their retention, with their attempts (explicitly: SQLite connections
    may run without foreign-key cascades). Commits; returns how many deliveries went."""
    now = now or utcnow()
    expired = select(WebhookDeliveryRecord.id).where(WebhookDeliveryRecord.expires_at <= now)
    await session.execute(delete(WebhookAttemptRecord).where(WebhookAttemptRecord.delivery_id.in_(expired)))
    result = await session.execute(
        delete(WebhookDeliveryRecord).where(WebhookDeliveryRecord.expires_at <= now)
    )
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class Deliverer:
    """Sends due deliveries. Any number of these may run against one database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: WebhookSettings,
        *,
        concurrency: int = 10,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._ssl = httpx.create_ssl_context()

    @property
    def lease(self) -> timedelta:
        """How long a claim holds: longer than any attempt can take."""
        return timedelta(seconds=self.settings.timeout_s + LEASE_MARGIN_S)

    # -- scheduling --------------------------------------------------------------------------

    async def deliver_due(self, limit: int = 50) -> int:
        """Attempt every due delivery (up to ``limit``) that this process manages to claim."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(WebhookDeliveryRecord.id, WebhookDeliveryRecord.next_attempt_at)
                    .where(
                        WebhookDeliveryRecord.status == DeliveryStatus.PENDING,
                        WebhookDeliveryRecord.next_attempt_at <= utcnow(),
                    )
                    .order_by(WebhookDeliveryRecord.next_attempt_at)
                    .limit(limit)
                )
            ).all()
        sent = await asyncio.gather(*(self._claim_and_send(row[0], row[1]) for row in rows))
        return sum(sent)

    async def deliver(self, delivery_id: str) -> None:
        """Send one delivery now if it is due (right after the event was committed)."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(WebhookDeliveryRecord.status, WebhookDeliveryRecord.next_attempt_at).where(
                        WebhookDeliveryRecord.id == delivery_id
                    )
                )
            ).first()
        if row is not None and row[0] == DeliveryStatus.PENDING and row[1] <= utcnow():
            await self._claim_and_send(delivery_id, row[1])

    def kick(self) -> None:
        """Wake ``run`` now (from its own loop or any thread), e.g. after a replay."""
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop is running:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                loop.call_soon_threadsafe(self._wake.set)

    async def run(self, poll_s: float) -> None:
        """Deliver forever: whatever is due, then sleep until the next is due, a kick, or ``poll_s``.
        Cancelling it mid-attempt is safe: the claim lapses and the attempt is made again."""
        self._loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            wait = poll_s
            try:
                limit = 50
                if await self.deliver_due(limit) < limit:
                    wait = await self._until_next_due(poll_s)
                else:
                    wait = 0
            except Exception:
                logger.exception("webhook_delivery_loop_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _until_next_due(self, poll_s: float) -> float:
        async with self.sessions() as session:
            earliest = await session.scalar(
                select(func.min(WebhookDeliveryRecord.next_attempt_at)).where(
                    WebhookDeliveryRecord.status == DeliveryStatus.PENDING
                )
            )
        if earliest is None:
            return poll_s
        return min(poll_s, max(0.0, (earliest - utcnow()).total_seconds()))

    async def _claim_and_send(self, delivery_id: str, seen: datetime) -> int:
        async with self._slots:
            try:
                lease_until = await self._claim(delivery_id, seen)
                if lease_until is None:
                    return 0
                await self._attempt(delivery_id, lease_until)
            except Exception:
                logger.exception("webhook_delivery_failed", delivery_id=delivery_id)
            return 1

    async def _claim(self, delivery_id: str, seen: datetime) -> datetime | None:
        """Compare-and-set: only the process that moves ``next_attempt_at`` from the value it read
        to its lease owns this attempt."""
        lease_until = utcnow() + self.lease
        async with self.sessions() as session:
            result = await session.execute(
                update(WebhookDeliveryRecord)
                .where(
                    WebhookDeliveryRecord.id == delivery_id,
                    WebhookDeliveryRecord.status == DeliveryStatus.PENDING,
                    WebhookDeliveryRecord.next_attempt_at == seen,
                )
                .values(next_attempt_at=lease_until)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return lease_until if result.rowcount == 1 else None  # type: ignore[attr-defined]

    # -- one attempt -------------------------------------------------------------------------

    async def _attempt(self, delivery_id: str, lease_until: datetime) -> None:
        async with self.sessions() as session:
            delivery = await session.get(WebhookDeliveryRecord, delivery_id)
            if delivery is None:
                return
            endpoint = await session.get(WebhookEndpointRecord, delivery.endpoint_id)
            if endpoint is None or (endpoint.url is not None and endpoint.disabled_at is not None):
                reason = "endpoint deleted" if endpoint is None else "endpoint disabled"
                await self._finish(
                    session,
                    delivery_id,
                    lease_until,
                    {"status": DeliveryStatus.CANCELLED, "last_error": reason},
                )
                return
            now = utcnow()
            keys = [endpoint.secret]
            expires = endpoint.previous_secret_expires_at
            if endpoint.previous_secret and expires is not None and expires > now:
                keys.append(endpoint.previous_secret)
            attempt = delivery.attempts + 1
            url, body = delivery.url, delivery.payload.encode()
            is_callback = endpoint.url is None
            endpoint_id = endpoint.id
        # No database connection is held while the receiver takes its time.
        started_at = utcnow()
        clock = time.monotonic()
        outcome = await self._post(url, body, sign(keys, delivery_id, body))
        duration_ms = int((time.monotonic() - clock) * 1000)
        finished = utcnow()
        code = outcome.status_code
        values: dict[str, Any] = {
            "attempts": attempt,
            "last_status_code": code,
            "last_error": outcome.error or (None if code is None or code < 300 else f"HTTP {code}"),
            "next_attempt_at": finished,
        }
        if code is not None and 200 <= code < 300:
            values.update(status=DeliveryStatus.DELIVERED, delivered_at=finished, last_error=None)
        elif code == 410 or attempt >= self.settings.max_attempts:
            values["status"] = DeliveryStatus.FAILED
        else:
            delay = next_delay_s(attempt, self.settings, outcome.retry_after)
            values["next_attempt_at"] = finished + timedelta(seconds=delay)
        async with self.sessions() as session:
            session.add(
                WebhookAttemptRecord(
                    delivery_id=delivery_id,
                    attempt=attempt,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    status_code=code,
                    error=outcome.error,
                    response_excerpt=outcome.excerpt,
                )
            )
            if code == 410 and not is_callback:
                # A callback URL's 410 ends only that delivery; the key's secret stays usable.
                await session.execute(
                    update(WebhookEndpointRecord)
                    .where(
                        WebhookEndpointRecord.id == endpoint_id,
                        WebhookEndpointRecord.disabled_at.is_(None),
                    )
                    .values(disabled_at=finished, disabled_reason=GONE_REASON)
                    .execution_options(synchronize_session=False)
                )
                logger.warning("webhook_endpoint_disabled", endpoint_id=endpoint_id, reason=GONE_REASON)
            await self._finish(session, delivery_id, lease_until, values)
        metrics.WEBHOOK_DELIVERIES.labels(str(values.get("status", "retrying"))).inc()  # delivered, failed
        logger.info(
            "webhook_attempt",
            delivery_id=delivery_id,
            attempt=attempt,
            status_code=code,
            error=outcome.error,
            status=values.get("status", DeliveryStatus.PENDING),
        )

    async def _finish(
        self, session: AsyncSession, delivery_id: str, lease_until: datetime, values: dict[str, Any]
    ) -> None:
        """Write the outcome unless someone changed the delivery meanwhile (cancelled, replayed)."""
        await session.execute(
            update(WebhookDeliveryRecord)
            .where(
                WebhookDeliveryRecord.id == delivery_id,
                WebhookDeliveryRecord.status == DeliveryStatus.PENDING,
                WebhookDeliveryRecord.next_attempt_at == lease_until,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        await session.commit()

    async def _post(self, url: str, body: bytes, signature_headers: dict[str, str]) -> _Outcome:
        """POST to an address resolved and checked now, never to whatever DNS says later."""
        try:
            addresses = await asyncio.to_thread(resolve_callback, url, self.settings.allowed)
        except UnsafeCallback as exc:
            return _Outcome(error=f"refused, not connected: {exc}"[:500])
        parts = urlsplit(url)
        host = parts.hostname or ""
        headers = {
            "host": parts.netloc,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "accept-encoding": "identity",
            **signature_headers,
        }
        extensions = {"sni_hostname": host} if parts.scheme == "https" and not _is_ip(host) else {}
        outcome = _Outcome(error="no address to connect to")
        for address in addresses:
            outcome = await self._post_to(address, url, body, headers, extensions)
            if not outcome.connect_failed:
                break
        return outcome

    async def _post_to(
        self,
        address: Address,
        url: str,
        body: bytes,
        headers: dict[str, str],
        extensions: dict[str, Any],
    ) -> _Outcome:
        target = httpx.URL(url).copy_with(host=str(address))
        try:
            async with (
                asyncio.timeout(self.settings.timeout_s),
                httpx.AsyncClient(
                    follow_redirects=False,
                    timeout=self.settings.timeout_s,
                    verify=self._ssl,
                    trust_env=False,
                ) as client,
                client.stream(
                    "POST", target, content=body, headers=headers, extensions=extensions
                ) as response,
            ):
                excerpt = bytearray()
                async for chunk in response.aiter_raw():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
                text = bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", "replace")
                return _Outcome(
                    status_code=response.status_code,
                    excerpt=text.replace("\x00", "\ufffd") or None,
                    retry_after=backoff.parse_retry_after(response.headers.get("retry-after"), utcnow()),
                )
        except TimeoutError:
            return _Outcome(error=f"no answer within {self.settings.timeout_s:g} s")
        except httpx.ConnectError as exc:
            return _Outcome(error=_error(exc), connect_failed=True)
        except (httpx.HTTPError, OSError) as exc:
            return _Outcome(error=_error(exc))
