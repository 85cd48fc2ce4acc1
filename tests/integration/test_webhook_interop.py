"""A delivered webhook, as it arrives over HTTP, verifies with the reference Standard Webhooks
library (``standardwebhooks``): with the endpoint's secret, and with either secret during a rotation.
The signing unit tests cover the signature itself; this covers what the deliverer puts on the wire."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from app.auth.keys import Scope, split_key
from app.lib.settings import JobSettings, Settings, WebhookSettings
from app.webhooks.delivery import Deliverer
from app.webhooks.events import emit
from app.webhooks.signing import new_secret
from tests.conftest import issue_key, make_settings
from tests.webhook_receiver import Receiver


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Receivers on loopback; the app's own deliverer stays asleep (the test drives one)."""
    return make_settings(
        tmp_path / "data",
        database_url,
        webhooks=WebhookSettings(allow_networks=["127.0.0.0/8"], timeout_s=2),
        jobs=JobSettings(poll_s=60),
    )


async def test_delivered_webhooks_verify_with_the_reference_library(
    client: AsyncTestClient[Litestar], db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    key = await issue_key(db, Scope.EXTRACT)
    parts = split_key(key)
    assert parts is not None
    headers, owner = {"X-API-Key": key}, parts[0]
    with Receiver() as receiver:
        created = await client.post("/webhooks", json={"url": receiver.url("/hook")}, headers=headers)
        assert created.status_code == 201, created.text
        old = created.json()["secret"]
        deliverer = Deliverer(db, settings.webhooks)
        await deliverer.deliver(await emit_one(db, owner))
        rotated = await client.post(f"/webhooks/{created.json()['id']}/rotate", headers=headers)
        new = rotated.json()["secret"]
        await deliverer.deliver(await emit_one(db, owner))
    before, during = receiver.requests
    payload: Any = Webhook(old).verify(before.body, before.headers)
    assert payload == orjson.loads(before.body) and payload["type"] == "extraction.completed"
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(during.body, during.headers)


async def emit_one(db: async_sessionmaker[AsyncSession], owner: str) -> str:
    async with db() as session:
        [delivery_id] = await emit(
            session,
            event_type="extraction.completed",
            data={"job_id": "job_1", "status": "succeeded"},
            owner=owner,
            callback_url=None,
            retention=timedelta(days=1),
        )
        await session.commit()
    return delivery_id
