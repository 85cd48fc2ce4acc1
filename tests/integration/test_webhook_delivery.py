"""Webhook delivery against real HTTP receivers on loopback, on SQLite and on PostgreSQL: retries with
growing delays, signatures, 410, Retry-After, no redirects, the response cap, secret rotation, claims
shared by several senders, and the SSRF guard at registration, at acceptance and at send time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Scope, split_key
from app.db.models import (
    WebhookAttemptRecord,
    WebhookDeliveryRecord,
    WebhookEndpointRecord,
    utcnow,
)
from app.lib.errors import DocextractError
from app.lib.problems import UNSAFE_CALLBACK_URL
from app.lib.settings import JobSettings, Settings, WebhookSettings
from app.server.core import create_app
from app.webhooks.delivery import EXCERPT_BYTES, GONE_REASON, Deliverer, purge_deliveries
from app.webhooks.events import EVENT_TYPES, emit, require_callback
from app.webhooks.signing import InvalidSignature, new_secret, verify
from tests.conftest import issue_key, make_settings
from tests.helpers import assert_problem
from tests.webhook_receiver import Receiver, Reply, eventually

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
LOOPBACK = WebhookSettings(
    allow_networks=["127.0.0.0/8", "::1/128"], retry_base_s=0.5, retry_max_s=5, timeout_s=2
)
STRICT = WebhookSettings(allow_networks=[], timeout_s=1)
PUBLIC_ADDRESS = "93.184.215.14"


# The app runs a deliverer of its own; it sleeps until kicked (nothing here kicks it), so each test
# drives the Deliverer it builds with the settings it is about.
DORMANT = JobSettings(poll_s=60)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, webhooks=LOOPBACK, jobs=DORMANT)


@pytest.fixture
async def strict_client(tmp_path: Path, database_url: str) -> AsyncIterator[Client]:
    """The API with the default guard (no allow-list) on the same database."""
    strict = make_settings(tmp_path / "strict", database_url, jobs=DORMANT)
    async with AsyncTestClient(create_app(strict)) as client:
        yield client


async def new_key(db: Sessions) -> tuple[dict[str, str], str]:
    key = await issue_key(db, Scope.EXTRACT)
    parts = split_key(key)
    assert parts is not None
    return {"X-API-Key": key}, parts[0]


async def register(client: Client, headers: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/webhooks", json={"url": url, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def emit_one(
    db: Sessions, owner: str, callback_url: str | None = None, event_type: str = "extraction.completed"
) -> list[str]:
    async with db() as session:
        ids = await emit(
            session,
            event_type=event_type,
            data={"job_id": "job_1", "status": "succeeded"},
            owner=owner,
            callback_url=callback_url,
            retention=timedelta(days=1),
        )
        await session.commit()
    return ids


async def delivery_of(db: Sessions, delivery_id: str) -> WebhookDeliveryRecord:
    async with db() as session:
        record = await session.get(WebhookDeliveryRecord, delivery_id)
    assert record is not None
    return record


async def attempts_of(db: Sessions, delivery_id: str) -> list[WebhookAttemptRecord]:
    async with db() as session:
        return list(
            await session.scalars(
                select(WebhookAttemptRecord)
                .where(WebhookAttemptRecord.delivery_id == delivery_id)
                .order_by(WebhookAttemptRecord.attempt)
            )
        )


def status_is(db: Sessions, delivery_id: str, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await delivery_of(db, delivery_id)).status == status

    return check


@contextlib.asynccontextmanager
async def running(deliverer: Deliverer, poll_s: float = 0.05) -> AsyncIterator[None]:
    task = asyncio.create_task(deliverer.run(poll_s))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failing_receiver_gets_four_signed_attempts_with_growing_delays(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    with Receiver(replies=[Reply(500, body=b"oops")] * 3) as receiver:
        hook = await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        async with running(Deliverer(db, settings.webhooks)):
            await eventually(status_is(db, delivery_id, "delivered"))
    requests = receiver.requests
    assert len(requests) == 4
    assert {r.headers["webhook-id"] for r in requests} == {delivery_id}
    assert len({r.body for r in requests}) == 1
    for r in requests:
        verify(hook["secret"], r.headers, r.body)
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"].startswith("docextract-webhooks/")
    payload = json.loads(requests[0].body)
    assert payload["type"] == "extraction.completed"
    assert payload["data"] == {"job_id": "job_1", "status": "succeeded"}
    assert payload["timestamp"].endswith("Z")
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert gaps[0] >= 0.5 * 0.8, gaps  # the first backoff, jitter included

    delivery = await delivery_of(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    assert delivery.delivered_at is not None
    log = await client.get(f"/webhooks/{hook['id']}/deliveries", headers=headers)
    assert log.status_code == 200, log.text
    [entry] = log.json()["items"]
    assert (entry["id"], entry["status"], entry["attempts"]) == (delivery_id, "delivered", 4)
    assert [(a["attempt"], a["status_code"]) for a in entry["attempts_log"]] == [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 200),
    ]
    assert entry["attempts_log"][0]["response_excerpt"] == "oops"


async def test_410_disables_the_endpoint_and_cancels_what_was_queued(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    with Receiver(default=Reply(410)) as receiver:
        hook = await register(client, headers, receiver.url())
        first, second = [(await emit_one(db, owner))[0] for _ in range(2)]
        deliverer = Deliverer(db, settings.webhooks)
        await deliverer.deliver(first)
        await deliverer.deliver(second)
    assert len(receiver.requests) == 1
    assert (await delivery_of(db, first)).status == "failed"
    assert (await delivery_of(db, second)).status == "cancelled"
    shown = (await client.get(f"/webhooks/{hook['id']}", headers=headers)).json()
    assert shown["disabled_at"] is not None
    assert shown["disabled_reason"] == GONE_REASON
    assert await emit_one(db, owner) == []  # a disabled endpoint gets no new deliveries

    enabled = await client.post(f"/webhooks/{hook['id']}/enable", headers=headers)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled_at"] is None
    assert len(await emit_one(db, owner)) == 1


async def test_410_from_a_callback_url_ends_only_that_delivery(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    created = await client.post("/webhooks/callback-secret", headers=headers)
    assert created.status_code == 201, created.text
    with Receiver(default=Reply(410)) as receiver:
        [delivery_id] = await emit_one(db, owner, callback_url=receiver.url("/cb"))
        await Deliverer(db, settings.webhooks).deliver(delivery_id)
    [request] = receiver.requests
    assert request.path == "/cb"
    verify(created.json()["secret"], request.headers, request.body)
    assert (await delivery_of(db, delivery_id)).status == "failed"
    async with db() as session:
        secret_row = await session.get(WebhookEndpointRecord, created.json()["id"])
    assert secret_row is not None and secret_row.disabled_at is None
    assert len(await emit_one(db, owner, callback_url=receiver.url("/cb"))) == 1


async def test_retry_after_is_honoured_within_the_cap(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    later = utcnow() + timedelta(seconds=3)
    replies = [
        Reply(503, {"Retry-After": "1"}),
        Reply(429, {"Retry-After": format_datetime(later, usegmt=True)}),
        Reply(503, {"Retry-After": "3600"}),
        Reply(503),
    ]
    with Receiver(replies=replies) as receiver:
        await register(client, headers, receiver.url())
        ids = [(await emit_one(db, owner))[0] for _ in replies]
        deliverer = Deliverer(db, settings.webhooks)
        for delivery_id in ids:
            await deliverer.deliver(delivery_id)
    assert len(receiver.requests) == 4
    waits, next_attempts = [], []
    for delivery_id in ids:
        delivery = await delivery_of(db, delivery_id)
        [attempt] = await attempts_of(db, delivery_id)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        waits.append((delivery.next_attempt_at - attempt.started_at).total_seconds())
        next_attempts.append(delivery.next_attempt_at)
    assert waits[0] >= 1.0, waits  # base 0.5 s alone would retry after at most 0.6 s
    assert next_attempts[1] >= later - timedelta(seconds=1)  # an HTTP date, in whole seconds
    assert 4.0 <= waits[2] <= 5.0 + 2.0, waits  # capped at retry_max_s (5 s)
    assert waits[3] < 1.0, waits  # no Retry-After: the plain backoff


async def test_redirects_are_not_followed(client: Client, db: Sessions, settings: Settings) -> None:
    headers, owner = await new_key(db)
    with Receiver() as target, Receiver(default=Reply(302, {"Location": target.url()})) as receiver:
        await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        await Deliverer(db, settings.webhooks).deliver(delivery_id)
    assert len(receiver.requests) == 1
    assert target.connections == 0
    delivery = await delivery_of(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 302)
    assert delivery.last_error == "HTTP 302"


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    impatient = settings.webhooks.model_copy(update={"timeout_s": 0.5})
    with Receiver(default=Reply(200, delay_s=3.0)) as receiver:
        await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        await Deliverer(db, impatient).deliver(delivery_id)
    # Gave up at the timeout, did not wait for the answer: no status code, a timeout error.
    delivery = await delivery_of(db, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    [attempt] = await attempts_of(db, delivery_id)
    assert attempt.error == "no answer within 0.5 s"


async def test_a_huge_response_is_read_only_up_to_the_cap(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    with Receiver(default=Reply(200, body=b"x" * 5_000_000)) as receiver:
        await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        await Deliverer(db, settings.webhooks).deliver(delivery_id)
    assert (await delivery_of(db, delivery_id)).status == "delivered"
    [attempt] = await attempts_of(db, delivery_id)
    assert attempt.response_excerpt == "x" * EXCERPT_BYTES


async def test_during_a_rotation_both_secrets_sign(client: Client, db: Sessions, settings: Settings) -> None:
    headers, owner = await new_key(db)
    with Receiver() as receiver:
        hook = await register(client, headers, receiver.url())
        rotated = await client.post(f"/webhooks/{hook['id']}/rotate", headers=headers)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != hook["secret"] and new.startswith("whsec_")
        assert rotated.json()["previous_secret_expires_at"] is not None
        deliverer = Deliverer(db, settings.webhooks)
        await deliverer.deliver((await emit_one(db, owner))[0])
        async with db() as session:  # the overlap ends
            await session.execute(
                update(WebhookEndpointRecord)
                .where(WebhookEndpointRecord.id == hook["id"])
                .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        await deliverer.deliver((await emit_one(db, owner))[0])
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split()) == 2
    verify(hook["secret"], during.headers, during.body)
    verify(new, during.headers, during.body)
    assert len(after.headers["webhook-signature"].split()) == 1
    verify(new, after.headers, after.body)
    with pytest.raises(InvalidSignature):
        verify(hook["secret"], after.headers, after.body)


async def test_concurrent_senders_send_each_delivery_once(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    with Receiver() as receiver:
        await register(client, headers, receiver.url())
        ids = [(await emit_one(db, owner))[0] for _ in range(12)]
        senders = [Deliverer(db, settings.webhooks) for _ in range(3)]
        attempted = await asyncio.gather(*(s.deliver_due() for s in senders))
        await asyncio.gather(*(s.deliver(i) for s in senders for i in ids))
    assert sum(attempted) == 12
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(ids)
    for delivery_id in ids:
        assert len(await attempts_of(db, delivery_id)) == 1


async def test_giving_up_after_max_attempts(client: Client, db: Sessions) -> None:
    headers, owner = await new_key(db)
    quick = WebhookSettings(allow_networks=["127.0.0.0/8"], retry_base_s=0.05, max_attempts=3)
    with Receiver(default=Reply(500)) as receiver:
        await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        async with running(Deliverer(db, quick), poll_s=0.02):
            await eventually(status_is(db, delivery_id, "failed"))
    assert len(receiver.requests) == 3
    delivery = await delivery_of(db, delivery_id)
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 500, "HTTP 500")


async def test_a_deleted_endpoint_is_never_called(client: Client, db: Sessions, settings: Settings) -> None:
    headers, owner = await new_key(db)
    with Receiver() as receiver:
        hook = await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        async with db() as session:  # gone without the API (which would cancel the delivery itself)
            endpoint = await session.get(WebhookEndpointRecord, hook["id"])
            await session.delete(endpoint)
            await session.commit()
        await Deliverer(db, settings.webhooks).deliver(delivery_id)
    assert receiver.connections == 0
    assert (await delivery_of(db, delivery_id)).status == "cancelled"


async def test_expired_deliveries_are_purged_with_their_attempts(
    client: Client, db: Sessions, settings: Settings
) -> None:
    headers, owner = await new_key(db)
    with Receiver(replies=[Reply(500)]) as receiver:
        await register(client, headers, receiver.url())
        [delivery_id] = await emit_one(db, owner)
        await Deliverer(db, settings.webhooks).deliver(delivery_id)
    assert len(await attempts_of(db, delivery_id)) == 1
    async with db() as session:
        assert await purge_deliveries(session, utcnow()) == 0
    async with db() as session:
        assert await purge_deliveries(session, utcnow() + timedelta(days=2)) == 1
    async with db() as session:
        assert await session.get(WebhookDeliveryRecord, delivery_id) is None
    assert await attempts_of(db, delivery_id) == []


# -- SSRF ---------------------------------------------------------------------------------------


async def add_endpoints(db: Sessions, owner: str, urls: list[str]) -> None:
    """Endpoints written past the API's check, as if registered under another configuration."""
    async with db() as session:
        for i, url in enumerate(urls):
            session.add(
                WebhookEndpointRecord(
                    id=f"wh_direct_{i}",
                    url=url,
                    events=list(EVENT_TYPES),
                    secret=new_secret(),
                    created_by=owner,
                    created_at=utcnow(),
                )
            )
        await session.commit()


async def test_private_callbacks_are_refused_everywhere_and_never_connected(
    strict_client: Client, db: Sessions
) -> None:
    headers, owner = await new_key(db)
    with Receiver("127.0.0.1") as v4, Receiver("::1") as v6:
        targets = [
            v4.url("/"),
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            v6.url("/"),
            v4.url("/", host="::ffff:127.0.0.1"),
            v4.url("/", host="localhost"),
        ]
        for url in targets:
            response = await strict_client.post("/webhooks", json={"url": url}, headers=headers)
            body = assert_problem(response, 422, "unsafe-callback-url")
            assert body["errors"][0]["pointer"] == "/url"
            async with db() as session:
                with pytest.raises(DocextractError) as refused:
                    await require_callback(session, owner, url, STRICT)
                assert refused.value.kind is UNSAFE_CALLBACK_URL

        await add_endpoints(db, owner, targets)
        ids = await emit_one(db, owner)
        assert len(ids) == len(targets)
        assert await Deliverer(db, STRICT).deliver_due() == len(targets)
    assert v4.connections == 0
    assert v6.connections == 0
    for delivery_id in ids:
        delivery = await delivery_of(db, delivery_id)
        # Refused like any failure: retried later, in case the address becomes public.
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
        assert delivery.last_error is not None and "refused" in delivery.last_error


def fake_dns(monkeypatch: pytest.MonkeyPatch, host: str, answers: list[str]) -> list[str]:
    """``host`` resolves to the next answer on each lookup (the last one repeats)."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if name == host:
            lookups.append(answers[min(len(lookups), len(answers) - 1)])
            return real(lookups[-1], port, *args, **kwargs)
        return real(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


async def test_dns_rebinding_after_the_check_is_refused_at_send_time(
    strict_client: Client, db: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, owner = await new_key(db)
    lookups = fake_dns(monkeypatch, "rebind.test", [PUBLIC_ADDRESS, "127.0.0.1"])
    with Receiver() as receiver:
        url = f"http://rebind.test:{receiver.port}/hook"
        await register(strict_client, headers, url)  # public when checked
        [delivery_id] = await emit_one(db, owner)
        await Deliverer(db, STRICT).deliver(delivery_id)  # loopback when sent
    assert lookups == [PUBLIC_ADDRESS, "127.0.0.1"]
    assert receiver.connections == 0
    delivery = await delivery_of(db, delivery_id)
    assert delivery.last_error is not None and "refused" in delivery.last_error


async def test_the_connection_goes_to_the_address_that_was_checked(
    strict_client: Client, db: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second lookup by the HTTP client would answer 127.0.0.1 (refused); the sender connects
    to the checked 127.0.0.2 instead, naming the host in the Host header."""
    _, owner = await new_key(db)
    allowed_only_2 = WebhookSettings(allow_networks=["127.0.0.2/32"], timeout_s=2)
    lookups = fake_dns(monkeypatch, "rebind.test", ["127.0.0.2", "127.0.0.1"])
    with Receiver("127.0.0.1") as refused, Receiver("127.0.0.2", port=refused.port) as checked:
        await add_endpoints(db, owner, [f"http://rebind.test:{refused.port}/hook"])
        [delivery_id] = await emit_one(db, owner)
        await Deliverer(db, allowed_only_2).deliver(delivery_id)
    assert lookups == ["127.0.0.2"]
    assert refused.connections == 0
    [request] = checked.requests
    assert request.headers["host"] == f"rebind.test:{refused.port}"
    assert (await delivery_of(db, delivery_id)).status == "delivered"
