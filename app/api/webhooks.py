"""HTTP routes to register webhook endpoints, manage their secrets and inspect or replay deliveries.

An endpoint belongs to the API key that created it; admin keys see every endpoint. Secrets are
shown only when created or rotated.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.common import json_body, problem_responses
from app.auth.keys import Principal, Scope
from app.auth.middleware import requires
from app.db.models import WebhookAttemptRecord, WebhookDeliveryRecord, WebhookEndpointRecord, utcnow
from app.jobs.services import Services
from app.lib.problems import (
    BAD_REQUEST,
    DELIVERY_NOT_FOUND,
    INVALID_REQUEST,
    UNKNOWN_EVENT_TYPE,
    UNSAFE_CALLBACK_URL,
    UNSUPPORTED_MEDIA_TYPE,
    WEBHOOK_NOT_FOUND,
    Problem,
)
from app.webhooks.events import EVENT_TYPES, callback_endpoint, check_url
from app.webhooks.signing import new_secret
from app.webhooks.status import DeliveryStatus

DbSession = NamedDependency[AsyncSession]
EndpointId = Annotated[str, Parameter(description="The endpoint's id (`wh_...`).")]
DeliveryId = Annotated[str, Parameter(description="The delivery's id, its `webhook-id` (`msg_...`).")]


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(max_length=2048, description="The receiver, an http(s) URL.")]
    events: list[str] | None = None
    """Event types to send; all of them when omitted."""
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class WebhookOut(msgspec.Struct):
    id: str
    url: str | None
    events: list[str]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None

    @classmethod
    def of(cls, r: WebhookEndpointRecord) -> WebhookOut:
        return cls(r.id, r.url, list(r.events), r.description, r.created_at, r.disabled_at, r.disabled_reason)


class WebhookCreatedOut(msgspec.Struct):
    id: str
    url: str | None
    events: list[str]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None
    secret: str
    """The signing secret. It is shown only in this response; store it now."""


class SecretOut(msgspec.Struct):
    id: str
    secret: str
    """The new signing secret, shown only in this response."""
    previous_secret_expires_at: datetime | None
    """Until then the previous secret signs too (both signatures are sent)."""


class AttemptOut(msgspec.Struct):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class WebhookList(msgspec.Struct):
    items: list[WebhookOut]


class DeliveryOut(msgspec.Struct):
    id: str
    """The `webhook-id` header, the same on every attempt."""
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    """When it is tried next; empty once delivered, failed or cancelled."""
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts_log: list[AttemptOut]

    @classmethod
    def of(cls, r: WebhookDeliveryRecord, log: list[WebhookAttemptRecord]) -> DeliveryOut:
        return cls(
            id=r.id,
            event_type=r.event_type,
            status=r.status,
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at if r.status == DeliveryStatus.PENDING else None,
            last_status_code=r.last_status_code,
            last_error=r.last_error,
            created_at=r.created_at,
            delivered_at=r.delivered_at,
            attempts_log=[
                AttemptOut(a.attempt, a.started_at, a.duration_ms, a.status_code, a.error, a.response_excerpt)
                for a in log
            ],
        )


class DeliveryList(msgspec.Struct):
    items: list[DeliveryOut]


def _new_id() -> str:
    return "wh_" + secrets.token_urlsafe(16)


def _events(requested: list[str] | None) -> list[str]:
    if requested is None:
        return list(EVENT_TYPES)
    if not requested:
        raise Problem(
            INVALID_REQUEST,
            "Subscribe to at least one event type, or omit `events` for all of them.",
            errors=[{"pointer": "/events", "detail": "empty"}],
        )
    unknown = [(i, e) for i, e in enumerate(requested) if e not in EVENT_TYPES]
    if unknown:
        raise Problem(
            UNKNOWN_EVENT_TYPE,
            f"Unknown event types {[e for _, e in unknown]}; known: {list(EVENT_TYPES)}.",
            errors=[{"pointer": f"/events/{i}", "detail": f"unknown event type {e!r}"} for i, e in unknown],
        )
    return list(dict.fromkeys(requested))


def _rotate(endpoint: WebhookEndpointRecord, overlap_s: int) -> str:
    """The old secret keeps signing for the overlap, so receivers can switch without losing any."""
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap_s)
    endpoint.secret = new_secret()
    return endpoint.secret


async def _owned(session: AsyncSession, principal: Principal, endpoint_id: str) -> WebhookEndpointRecord:
    """The endpoint if the caller may see it; another key's endpoint is "not found", not 403."""
    endpoint = await session.get(WebhookEndpointRecord, endpoint_id)
    if endpoint is None or not principal.sees(endpoint.created_by):
        raise Problem(WEBHOOK_NOT_FOUND, f"No webhook endpoint has the id {endpoint_id!r}.")
    return endpoint


async def _delivery(session: AsyncSession, endpoint_id: str, delivery_id: str) -> WebhookDeliveryRecord:
    delivery = await session.get(WebhookDeliveryRecord, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise Problem(DELIVERY_NOT_FOUND, f"The endpoint has no delivery {delivery_id!r}.")
    return delivery


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]
    guards = [requires(Scope.EXTRACT)]

    @post(
        "/",
        guards=[json_body],
        summary="Register a webhook endpoint",
        responses=problem_responses(
            BAD_REQUEST, INVALID_REQUEST, UNKNOWN_EVENT_TYPE, UNSAFE_CALLBACK_URL, UNSUPPORTED_MEDIA_TYPE
        ),
    )
    async def create_webhook(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        data: Annotated[
            WebhookCreate,
            Body(
                examples=[
                    Example(
                        summary="Completed and failed extractions to the ERP",
                        value={
                            "url": "https://erp.example.com/hooks/docextract",
                            "events": ["extraction.completed", "extraction.failed"],
                            "description": "ERP inbox",
                        },
                    )
                ]
            ),
        ],
    ) -> Response[WebhookCreatedOut]:
        """The URL must resolve to public addresses only (checked now and again at every send).
        The answer holds the `whsec_...` signing secret: it is shown only this once."""
        events = _events(data.events)
        await check_url(data.url, services.settings.webhooks, "/url")
        endpoint = WebhookEndpointRecord(
            id=_new_id(),
            url=data.url,
            description=data.description,
            events=events,
            secret=new_secret(),
            created_by=request.user.key_id,
            created_at=utcnow(),
        )
        db_session.add(endpoint)
        await db_session.commit()
        out = WebhookCreatedOut(
            endpoint.id,
            endpoint.url,
            events,
            endpoint.description,
            endpoint.created_at,
            None,
            endpoint.secret,
        )
        return Response(out, status_code=201, headers={"Location": f"/webhooks/{endpoint.id}"})

    @get("/", summary="List webhook endpoints")
    async def list_webhooks(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> WebhookList:
        """The caller's registered endpoints (every key's for admin keys), without secrets."""
        query = select(WebhookEndpointRecord).where(WebhookEndpointRecord.url.is_not(None))
        query = query.where(request.user.owned(WebhookEndpointRecord.created_by))
        query = query.order_by(WebhookEndpointRecord.created_at, WebhookEndpointRecord.id)
        return WebhookList([WebhookOut.of(r) for r in await db_session.scalars(query)])

    @post(
        "/callback-secret",
        status_code=200,
        summary="Create or rotate the secret that signs callback_url deliveries",
        responses={201: ResponseSpec(data_container=SecretOut, description="The first secret of this key.")},
    )
    async def callback_secret(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
    ) -> Response[SecretOut]:
        """Per-request `callback_url`s are signed with this key's callback secret: 201 the first
        time, 200 with a new secret on later calls (the previous one keeps signing for the
        rotation overlap)."""
        endpoint = await callback_endpoint(db_session, request.user.key_id)
        if endpoint is None:
            endpoint = WebhookEndpointRecord(
                id=_new_id(),
                url=None,
                description="callback_url signing secret",
                events=list(EVENT_TYPES),
                secret=new_secret(),
                created_by=request.user.key_id,
                created_at=utcnow(),
            )
            db_session.add(endpoint)
            status = 201
        else:
            _rotate(endpoint, services.settings.webhooks.rotation_overlap_s)
            status = 200
        await db_session.commit()
        out = SecretOut(endpoint.id, endpoint.secret, endpoint.previous_secret_expires_at)
        return Response(out, status_code=status)

    @get(
        "/{endpoint_id:str}", summary="Get a webhook endpoint", responses=problem_responses(WEBHOOK_NOT_FOUND)
    )
    async def get_webhook(
        self, request: Request[Principal, Any, Any], db_session: DbSession, endpoint_id: EndpointId
    ) -> WebhookOut:
        return WebhookOut.of(await _owned(db_session, request.user, endpoint_id))

    @delete(
        "/{endpoint_id:str}",
        summary="Delete a webhook endpoint",
        responses=problem_responses(WEBHOOK_NOT_FOUND),
    )
    async def delete_webhook(
        self, request: Request[Principal, Any, Any], db_session: DbSession, endpoint_id: EndpointId
    ) -> None:
        """Nothing more is sent to it: its pending deliveries are cancelled."""
        endpoint = await _owned(db_session, request.user, endpoint_id)
        await db_session.execute(
            update(WebhookDeliveryRecord)
            .where(
                WebhookDeliveryRecord.endpoint_id == endpoint.id,
                WebhookDeliveryRecord.status == DeliveryStatus.PENDING,
            )
            .values(status=DeliveryStatus.CANCELLED, last_error="endpoint deleted")
            .execution_options(synchronize_session=False)
        )
        await db_session.delete(endpoint)
        await db_session.commit()

    @post(
        "/{endpoint_id:str}/rotate",
        status_code=200,
        summary="Rotate an endpoint's signing secret",
        responses=problem_responses(WEBHOOK_NOT_FOUND),
    )
    async def rotate_secret(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        endpoint_id: EndpointId,
    ) -> SecretOut:
        """Returns the new secret (shown once); the previous one keeps signing until
        `previous_secret_expires_at`, so both signatures arrive meanwhile."""
        endpoint = await _owned(db_session, request.user, endpoint_id)
        _rotate(endpoint, services.settings.webhooks.rotation_overlap_s)
        await db_session.commit()
        return SecretOut(endpoint.id, endpoint.secret, endpoint.previous_secret_expires_at)

    @post(
        "/{endpoint_id:str}/enable",
        status_code=200,
        summary="Re-enable an endpoint",
        responses=problem_responses(WEBHOOK_NOT_FOUND),
    )
    async def enable_webhook(
        self, request: Request[Principal, Any, Any], db_session: DbSession, endpoint_id: EndpointId
    ) -> WebhookOut:
        """After a receiver answered 410 Gone, deliveries to it stop until it is enabled again."""
        endpoint = await _owned(db_session, request.user, endpoint_id)
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        await db_session.commit()
        return WebhookOut.of(endpoint)

    @get(
        "/{endpoint_id:str}/deliveries",
        summary="List an endpoint's deliveries, newest first",
        responses=problem_responses(WEBHOOK_NOT_FOUND, BAD_REQUEST),
    )
    async def list_deliveries(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        endpoint_id: EndpointId,
        status: Annotated[
            DeliveryStatus | None, Parameter(description="Only deliveries in this state.")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=500, description="At most this many.")] = 50,
    ) -> DeliveryList:
        """Each delivery with its attempts (status code or error, duration, the start of the body)."""
        endpoint = await _owned(db_session, request.user, endpoint_id)
        query = select(WebhookDeliveryRecord).where(WebhookDeliveryRecord.endpoint_id == endpoint.id)
        if status is not None:
            query = query.where(WebhookDeliveryRecord.status == status.value)
        query = query.order_by(WebhookDeliveryRecord.created_at.desc(), WebhookDeliveryRecord.id.desc())
        deliveries = list(await db_session.scalars(query.limit(limit)))
        logs: dict[str, list[WebhookAttemptRecord]] = {d.id: [] for d in deliveries}
        if deliveries:
            attempts = await db_session.scalars(
                select(WebhookAttemptRecord)
                .where(WebhookAttemptRecord.delivery_id.in_(list(logs)))
                .order_by(WebhookAttemptRecord.attempt, WebhookAttemptRecord.id)
            )
            for attempt in attempts:
                logs[attempt.delivery_id].append(attempt)
        return DeliveryList([DeliveryOut.of(d, logs[d.id]) for d in deliveries])

    @post(
        "/{endpoint_id:str}/deliveries/{delivery_id:str}/replay",
        status_code=202,
        summary="Send a delivery again",
        responses=problem_responses(WEBHOOK_NOT_FOUND, DELIVERY_NOT_FOUND),
    )
    async def replay_delivery(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        db_session: DbSession,
        endpoint_id: EndpointId,
        delivery_id: DeliveryId,
    ) -> DeliveryOut:
        """The same message (same `webhook-id` and body, signed afresh) is queued to go out now;
        the attempt count continues. A disabled endpoint must be enabled first or it is cancelled."""
        endpoint = await _owned(db_session, request.user, endpoint_id)
        delivery = await _delivery(db_session, endpoint.id, delivery_id)
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = utcnow()
        delivery.delivered_at = None
        await db_session.commit()
        services.deliverer.kick()
        attempts = await db_session.scalars(
            select(WebhookAttemptRecord)
            .where(WebhookAttemptRecord.delivery_id == delivery.id)
            .order_by(WebhookAttemptRecord.attempt, WebhookAttemptRecord.id)
        )
        return DeliveryOut.of(delivery, list(attempts))
