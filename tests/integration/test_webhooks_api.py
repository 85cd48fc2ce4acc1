"""The /webhooks API on SQLite and on PostgreSQL: endpoints, secrets shown once, ownership, deletion,
the delivery log, replay, the callback secret, and the problem type of every bad input."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import Scope, split_key
from app.db.models import WebhookDeliveryRecord, WebhookEndpointRecord, utcnow
from app.lib.errors import DocextractError
from app.lib.problems import CALLBACK_SECRET_MISSING
from app.lib.settings import JobSettings, Settings, WebhookSettings
from app.webhooks.delivery import Deliverer
from app.webhooks.events import EVENT_TYPES, emit, require_callback
from app.webhooks.signing import verify
from tests.conftest import issue_key, make_settings
from tests.helpers import assert_problem
from tests.webhook_receiver import Receiver, eventually

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
PUBLIC_URL = "https://93.184.215.14/hooks/docextract"  # an address literal: no DNS needed


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Loopback receivers allowed. The app's own deliverer sleeps until kicked (a replay kicks it),
    so the tests decide when everything else is sent."""
    webhooks = WebhookSettings(allow_networks=["127.0.0.0/8"], retry_base_s=0.2, timeout_s=2)
    return make_settings(tmp_path / "data", database_url, webhooks=webhooks, jobs=JobSettings(poll_s=60))


def delivery_is(db: Sessions, delivery_id: str, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with db() as session:
            delivery = await session.get(WebhookDeliveryRecord, delivery_id)
        return delivery is not None and delivery.status == status

    return check


async def new_key(db: Sessions, *scopes: Scope) -> tuple[dict[str, str], str]:
    key = await issue_key(db, *(scopes or (Scope.EXTRACT,)))
    parts = split_key(key)
    assert parts is not None
    return {"Authorization": f"Bearer {key}"}, parts[0]


async def create(client: Client, headers: dict[str, str], **body: Any) -> Any:
    return await client.post("/webhooks", json={"url": PUBLIC_URL, **body}, headers=headers)


async def emit_one(db: Sessions, owner: str, callback_url: str | None = None) -> list[str]:
    async with db() as session:
        ids = await emit(
            session,
            event_type="extraction.needs_review",
            data={"job_id": "job_9", "review_reasons": ["low_confidence"]},
            owner=owner,
            callback_url=callback_url,
            retention=timedelta(days=7),
        )
        await session.commit()
    return ids


async def test_create_read_list_delete(client: Client, db: Sessions) -> None:
    headers, owner = await new_key(db)
    created = await create(client, headers, events=["extraction.completed"], description="ERP inbox")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("wh_")
    assert created.headers["location"] == f"/webhooks/{body['id']}"
    assert body["secret"].startswith("whsec_")
    assert (body["url"], body["events"], body["description"], body["disabled_at"]) == (
        PUBLIC_URL,
        ["extraction.completed"],
        "ERP inbox",
        None,
    )

    everything = await create(client, headers)
    assert everything.json()["events"] == list(EVENT_TYPES)

    shown = await client.get(f"/webhooks/{body['id']}", headers=headers)
    assert shown.status_code == 200, shown.text
    assert "secret" not in shown.json()
    assert shown.json()["url"] == PUBLIC_URL
    listed = await client.get("/webhooks", headers=headers)
    assert [w["id"] for w in listed.json()["items"]] == [body["id"], everything.json()["id"]]
    assert all("secret" not in w for w in listed.json()["items"])
    assert body["secret"] not in listed.text + shown.text

    deleted = await client.delete(f"/webhooks/{body['id']}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await client.get(f"/webhooks/{body['id']}", headers=headers), 404, "webhook-not-found")
    assert [w["id"] for w in (await client.get("/webhooks", headers=headers)).json()["items"]] == [
        everything.json()["id"]
    ]
    assert owner


async def test_an_endpoint_belongs_to_its_key(client: Client, db: Sessions) -> None:
    alice, _ = await new_key(db)
    bob, _ = await new_key(db)
    admin, _ = await new_key(db, Scope.ADMIN)
    hook = (await create(client, alice)).json()
    for method, path in [
        ("get", f"/webhooks/{hook['id']}"),
        ("delete", f"/webhooks/{hook['id']}"),
        ("post", f"/webhooks/{hook['id']}/rotate"),
        ("post", f"/webhooks/{hook['id']}/enable"),
        ("get", f"/webhooks/{hook['id']}/deliveries"),
        ("post", f"/webhooks/{hook['id']}/deliveries/msg_x/replay"),
    ]:
        assert_problem(await getattr(client, method)(path, headers=bob), 404, "webhook-not-found")
    assert (await client.get("/webhooks", headers=bob)).json() == {"items": []}
    assert [w["id"] for w in (await client.get("/webhooks", headers=admin)).json()["items"]] == [hook["id"]]
    assert (await client.get(f"/webhooks/{hook['id']}", headers=admin)).status_code == 200
    assert (await client.get(f"/webhooks/{hook['id']}", headers=alice)).status_code == 200


async def test_deleting_an_endpoint_cancels_its_pending_deliveries(client: Client, db: Sessions) -> None:
    headers, owner = await new_key(db)
    hook = (await create(client, headers)).json()
    [delivery_id] = await emit_one(db, owner)
    listed = (await client.get(f"/webhooks/{hook['id']}/deliveries?status=pending", headers=headers)).json()[
        "items"
    ]
    assert [(d["id"], d["status"], d["attempts"]) for d in listed] == [(delivery_id, "pending", 0)]
    assert (await client.delete(f"/webhooks/{hook['id']}", headers=headers)).status_code == 204
    async with db() as session:
        delivery = await session.get(WebhookDeliveryRecord, delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == ("cancelled", 0)


async def test_replay_sends_the_same_message_again(client: Client, db: Sessions, settings: Settings) -> None:
    headers, owner = await new_key(db)
    with Receiver() as receiver:
        hook = (await create(client, headers, url=receiver.url())).json()
        [delivery_id] = await emit_one(db, owner)
        deliverer = Deliverer(db, settings.webhooks)
        await deliverer.deliver(delivery_id)
        replayed = await client.post(
            f"/webhooks/{hook['id']}/deliveries/{delivery_id}/replay", headers=headers
        )
        assert replayed.status_code == 202, replayed.text
        assert (replayed.json()["id"], replayed.json()["status"]) == (delivery_id, "pending")
        # The API kicks its own deliverer, which sends the replay at once.
        await eventually(lambda: len(receiver.requests) == 2)
        await eventually(delivery_is(db, delivery_id, "delivered"))
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == delivery_id
    assert first.body == again.body
    assert json.loads(again.body)["type"] == "extraction.needs_review"
    for request in (first, again):
        verify(hook["secret"], request.headers, request.body)
    [entry] = (await client.get(f"/webhooks/{hook['id']}/deliveries", headers=headers)).json()["items"]
    assert (entry["status"], entry["attempts"]) == ("delivered", 2)
    assert [a["attempt"] for a in entry["attempts_log"]] == [1, 2]
    delivered = await client.get(
        f"/webhooks/{hook['id']}/deliveries?status=delivered&limit=1", headers=headers
    )
    assert [d["id"] for d in delivered.json()["items"]] == [delivery_id]
    assert (await client.get(f"/webhooks/{hook['id']}/deliveries?status=failed", headers=headers)).json() == {
        "items": []
    }


async def test_the_deliveries_log_is_newest_first(client: Client, db: Sessions) -> None:
    headers, owner = await new_key(db)
    hook = (await create(client, headers)).json()
    ids = [(await emit_one(db, owner))[0] for _ in range(3)]
    listed = (await client.get(f"/webhooks/{hook['id']}/deliveries", headers=headers)).json()["items"]
    assert [d["id"] for d in listed] == ids[::-1]
    assert all(d["id"].startswith("msg_") and d["event_type"] == "extraction.needs_review" for d in listed)
    limited = (await client.get(f"/webhooks/{hook['id']}/deliveries?limit=2", headers=headers)).json()[
        "items"
    ]
    assert [d["id"] for d in limited] == ids[:0:-1]


async def test_the_callback_secret(client: Client, db: Sessions, settings: Settings) -> None:
    headers, owner = await new_key(db)
    _, other = await new_key(db)
    async with db() as session:
        with pytest.raises(DocextractError) as missing:
            await require_callback(session, owner, "http://127.0.0.1:9/cb", settings.webhooks)
        assert missing.value.kind is CALLBACK_SECRET_MISSING
    assert await emit_one(db, owner, callback_url="http://127.0.0.1:9/cb") == []  # skipped, logged

    first = await client.post("/webhooks/callback-secret", headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["secret"].startswith("whsec_")
    assert first.json()["previous_secret_expires_at"] is None
    rotated = await client.post("/webhooks/callback-secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["id"] == first.json()["id"]
    assert rotated.json()["secret"] != first.json()["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    # The callback secret is not a registered receiver:
    assert (await client.get("/webhooks", headers=headers)).json() == {"items": []}

    async with db() as session:
        await require_callback(session, owner, "http://127.0.0.1:9/cb", settings.webhooks)
        with pytest.raises(DocextractError):
            await require_callback(session, other, "http://127.0.0.1:9/cb", settings.webhooks)
    [delivery_id] = await emit_one(db, owner, callback_url="http://127.0.0.1:9/cb")
    async with db() as session:
        delivery = await session.get(WebhookDeliveryRecord, delivery_id)
        assert delivery is not None
        secret_row = await session.get(WebhookEndpointRecord, delivery.endpoint_id)
    assert secret_row is not None
    assert (secret_row.url, delivery.url) == (None, "http://127.0.0.1:9/cb")
    assert secret_row.previous_secret_expires_at is not None
    assert secret_row.previous_secret_expires_at > utcnow() + timedelta(hours=23)


async def test_rotation_shows_the_new_secret_once(client: Client, db: Sessions) -> None:
    headers, _ = await new_key(db)
    hook = (await create(client, headers)).json()
    rotated = await client.post(f"/webhooks/{hook['id']}/rotate", headers=headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["id"] == hook["id"]
    assert rotated.json()["secret"] not in (await client.get(f"/webhooks/{hook['id']}", headers=headers)).text


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/x",
        "not a url",
        "http://user:pw@93.184.215.14/",
        "http://10.0.0.1/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0:8000/",
    ],
)
async def test_a_refused_url_is_unsafe_callback_url(client: Client, db: Sessions, url: str) -> None:
    headers, _ = await new_key(db)
    body = assert_problem(await create(client, headers, url=url), 422, "unsafe-callback-url")
    assert body["errors"][0]["pointer"] == "/url"
    assert (await client.get("/webhooks", headers=headers)).json() == {"items": []}


async def test_bad_inputs_and_their_problem_types(client: Client, db: Sessions) -> None:
    headers, owner = await new_key(db)
    unknown = assert_problem(
        await create(client, headers, events=["extraction.completed", "job.done", "x"]),
        422,
        "unknown-event-type",
    )
    assert [e["pointer"] for e in unknown["errors"]] == ["/events/1", "/events/2"]
    assert_problem(await create(client, headers, events=[]), 422, "invalid-request")
    assert_problem(await create(client, headers, colour="red"), 400, "bad-request")
    assert_problem(await create(client, headers, description="x" * 501), 400, "bad-request")
    assert_problem(
        await client.post("/webhooks", content=b"url=x", headers={**headers, "Content-Type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    for method, path in [
        ("get", "/webhooks/wh_nope"),
        ("delete", "/webhooks/wh_nope"),
        ("post", "/webhooks/wh_nope/rotate"),
        ("post", "/webhooks/wh_nope/enable"),
        ("get", "/webhooks/wh_nope/deliveries"),
        ("post", "/webhooks/wh_nope/deliveries/msg_nope/replay"),
    ]:
        assert_problem(await getattr(client, method)(path, headers=headers), 404, "webhook-not-found")

    hook = (await create(client, headers)).json()
    other = (await create(client, headers)).json()
    delivery_id = (await emit_one(db, owner))[0]
    assert_problem(
        await client.post(f"/webhooks/{hook['id']}/deliveries/msg_nope/replay", headers=headers),
        404,
        "delivery-not-found",
    )
    async with db() as session:
        delivery = await session.get(WebhookDeliveryRecord, delivery_id)
    assert delivery is not None
    elsewhere = other["id"] if delivery.endpoint_id == hook["id"] else hook["id"]
    assert_problem(  # a delivery of another endpoint is not found through this one
        await client.post(f"/webhooks/{elsewhere}/deliveries/{delivery_id}/replay", headers=headers),
        404,
        "delivery-not-found",
    )
    assert_problem(
        await client.get(f"/webhooks/{hook['id']}/deliveries?status=lost", headers=headers),
        400,
        "bad-request",
    )
    assert_problem(
        await client.get(f"/webhooks/{hook['id']}/deliveries?limit=0", headers=headers), 400, "bad-request"
    )
    assert_problem(await client.get("/webhooks"), 401, "unauthenticated")
