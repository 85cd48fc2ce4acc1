"""Webhook events: one durable ``pending`` delivery row per receiver, written in the caller's
transaction, so an event exists exactly when the state change that caused it is committed."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import WebhookDeliveryRecord, WebhookEndpointRecord
from app.lib.errors import RequestError
from app.lib.problems import CALLBACK_SECRET_MISSING, UNSAFE_CALLBACK_URL
from app.lib.settings import WebhookSettings
from app.webhooks.ssrf import UnsafeCallback, resolve_callback
from app.webhooks.status import DeliveryStatus

logger = structlog.get_logger(__name__)

MAX_URL_LENGTH = 2048  # the column's size
EVENT_TYPES = (
    "extraction.completed",
    "extraction.needs_review",
    "extraction.failed",
    "extraction.reviewed",
    "batch.completed",
)


def new_delivery_id() -> str:
    """The ``webhook-id``: the same on every attempt, so receivers can deduplicate."""
    return "msg_" + secrets.token_urlsafe(20)[:26]


def _owned_by(owner: str | None) -> Any:
    column = WebhookEndpointRecord.created_by
    return column.is_(None) if owner is None else column == owner


async def callback_endpoint(session: AsyncSession, owner: str | None) -> WebhookEndpointRecord | None:
    """The owner's secret for per-request ``callback_url``s (the endpoint row without a URL)."""
    query = select(WebhookEndpointRecord).where(_owned_by(owner), WebhookEndpointRecord.url.is_(None))
    return (await session.scalars(query.order_by(WebhookEndpointRecord.created_at).limit(1))).first()


def payload(event_type: str, data: dict[str, Any]) -> str:
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event_type, "timestamp": timestamp, "data": data}).decode()


async def emit(
    session: AsyncSession,
    *,
    event_type: str,
    data: dict[str, Any],
    owner: str | None,
    callback_url: str | None,
    retention: timedelta,
) -> list[str]:
    """Queue ``event_type`` for the owner's subscribed endpoints and the request's ``callback_url``.

    Flushes but never commits: the caller commits the deliveries with the state change they report.
    Returns the delivery ids (hand them to ``Deliverer.deliver`` after the commit to send at once).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = datetime.now(UTC)
    body = payload(event_type, data)
    query = select(WebhookEndpointRecord).where(
        _owned_by(owner),
        WebhookEndpointRecord.url.is_not(None),
        WebhookEndpointRecord.disabled_at.is_(None),
    )
    receivers = [
        (endpoint.id, endpoint.url)
        for endpoint in await session.scalars(query.order_by(WebhookEndpointRecord.created_at))
        if endpoint.url is not None and event_type in endpoint.events
    ]
    if callback_url is not None:
        secret_row = await callback_endpoint(session, owner)
        if secret_row is None:
            logger.warning("callback_secret_missing", owner=owner, event_type=event_type)
        else:
            receivers.append((secret_row.id, callback_url))
    ids: list[str] = []
    for endpoint_id, url in receivers:
        delivery_id = new_delivery_id()
        session.add(
            WebhookDeliveryRecord(
                id=delivery_id,
                endpoint_id=endpoint_id,
                url=url,
                event_type=event_type,
                payload=body,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                expires_at=now + retention,
            )
        )
        ids.append(delivery_id)
    await session.flush()
    return ids


async def check_url(url: str, settings: WebhookSettings, pointer: str) -> None:
    """A ``RequestError`` (unsafe-callback-url) unless ``url`` resolves only to addresses we may call."""
    if len(url) > MAX_URL_LENGTH:
        raise RequestError(
            UNSAFE_CALLBACK_URL,
            f"Callback URLs have at most {MAX_URL_LENGTH} characters.",
            errors=[{"pointer": pointer, "detail": "too long"}],
        )
    try:
        await asyncio.to_thread(resolve_callback, url, settings.allowed)
    except UnsafeCallback as exc:
        raise RequestError(
            UNSAFE_CALLBACK_URL,
            f"The callback URL is refused: {exc}",
            errors=[{"pointer": pointer, "detail": str(exc)}],
        ) from exc


async def require_callback(
    session: AsyncSession, owner: str | None, url: str, settings: WebhookSettings
) -> None:
    """Refuse a job's ``callback_url`` up front (never connecting to it): the address must be
    callable and the owner must have a callback secret to sign with."""
    await check_url(url, settings, "/callback_url")
    if await callback_endpoint(session, owner) is None:
        raise RequestError(
            CALLBACK_SECRET_MISSING,
            "Create this key's callback secret with POST /webhooks/callback-secret first.",
            errors=[{"pointer": "/callback_url", "detail": "no callback secret for this API key"}],
        )
