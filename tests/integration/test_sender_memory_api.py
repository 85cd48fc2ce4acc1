"""Sender memories in the database (``app.memory.store``) and ``GET /senders`` / ``DELETE
/senders/{id}``: a memory is found, listed and forgotten by its owner (a team, or a key alone)
only; another owner gets nothing, and a 404 as if it did not exist. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.keys import ApiKeys, Scope
from app.lib.settings import AppSettings, EngineSettings, OcrSettings, Settings
from app.memory import store
from app.memory.service import memory_owner_of
from app.server.core import create_app
from tests.conftest import make_settings
from tests.unit.test_sender_memory import FIRST, SCHEMA, SECOND
from tests.webhook_receiver import eventually

Sessions = async_sessionmaker[AsyncSession]
PROFILE = {
    "version": 1,
    "fields": {"/total": {"page": 1, "kind": "amount", "relation": "page", "box": [0, 0, 1, 1]}},
}
ACME = ["vat:DE136695976", "name:acme gmbh", "layout:abc"]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The layout engine (no model), no OCR: the invoices are drawn with a text layer."""
    layout, ocr = EngineSettings(engine="layout"), OcrSettings(enabled=False)
    return make_settings(tmp_path / "data", database_url, engine=layout, ocr=ocr)


async def test_a_memory_is_found_by_its_owner_only_and_merges_a_second_approval(
    client: AsyncTestClient[Litestar], db: Sessions
) -> None:
    """(``client`` starts the app, which migrates the database.)"""
    async with db() as session:
        first = await store.remember(session, "team:ap", "invoice", ACME, PROFILE)
        await session.commit()
        assert first.sender == "vat:DE136695976" and first.documents == 1
        found = await store.find(session, "team:ap", "invoice", ["vat:DE136695976"])
        assert found is not None and found.id == first.id
        assert await store.find(session, "team:other", "invoice", ACME) is None  # never shared
        assert await store.find(session, "key:ap", "invoice", ACME) is None
        assert await store.find(session, "team:ap", "receipt", ACME) is None  # per schema
        assert await store.find(session, "team:ap", "invoice", ["vat:DE945807302"]) is None
        second = {"version": 1, "fields": {"/number": {"page": 1, "kind": "text", "value": "7"}}}
        merged = await store.remember(
            session, "team:ap", "invoice", ["iban:DE89370400440532013000", *ACME], second
        )
        await session.commit()
        assert merged.id == first.id and merged.documents == 2
        assert set(merged.profile["fields"]) == {"/total", "/number"}
        assert "iban:DE89370400440532013000" in merged.identities
        assert [r.id for r in await store.listing(session, "team:ap")] == [first.id]
        assert await store.listing(session, "team:other") == []
        assert not await store.forget(session, "team:other", first.id)
        assert await store.forget(session, "team:ap", first.id)
        await session.commit()
        assert await store.find(session, "team:ap", "invoice", ACME) is None


async def test_the_owner_of_what_an_extraction_teaches_is_its_keys_team(
    client: AsyncTestClient[Litestar], db: Sessions
) -> None:
    async with db() as session:
        teamed = await ApiKeys(session).create("erp", [Scope.EXTRACT], team="ap")
        alone = await ApiKeys(session).create("alone", [Scope.EXTRACT])
        assert await memory_owner_of(session, teamed.record.id) == "team:ap"
        assert await memory_owner_of(session, alone.record.id) == f"key:{alone.record.id}"


async def test_senders_are_listed_and_forgotten_by_their_owner_only(
    client: AsyncTestClient[Litestar], db: Sessions
) -> None:
    async with db() as session:
        keys = ApiKeys(session)
        issued = {
            "owner": await keys.create("erp", [Scope.EXTRACT], team="ap"),
            "reviewer": await keys.create("reviewer", [Scope.REVIEW], team="ap"),
            "stranger": await keys.create("other", [Scope.EXTRACT]),
            "admin": await keys.create("admin", [Scope.ADMIN]),
        }
        memory = await store.remember(session, "team:ap", "invoice", ACME, PROFILE)
        await session.commit()
    headers = {name: {"Authorization": f"Bearer {key.key}"} for name, key in issued.items()}

    listed = (await client.get("/senders", headers=headers["reviewer"])).json()["items"]
    assert [(s["id"], s["sender"], s["documents"], s["schema"]) for s in listed] == [
        (memory.id, "vat:DE136695976", 1, "invoice")
    ]
    assert listed[0]["identities"] == ACME and listed[0]["fields"] == ["/total"]
    assert (await client.get("/senders", headers=headers["stranger"])).json()["items"] == []
    assert len((await client.get("/senders", headers=headers["admin"])).json()["items"]) == 1

    refused = await client.delete(f"/senders/{memory.id}", headers=headers["stranger"])
    assert refused.status_code == 404
    assert refused.json()["type"].endswith("/sender-not-found")
    forgotten = await client.delete(f"/senders/{memory.id}", headers=headers["owner"])
    assert forgotten.status_code == 204
    assert (await client.get("/senders", headers=headers["owner"])).json()["items"] == []
    assert (await client.delete(f"/senders/{memory.id}", headers=headers["owner"])).status_code == 404
    huge = await client.delete(f"/senders/{2**70}", headers=headers["owner"])  # beyond a database integer
    assert huge.status_code == 400 and huge.json()["type"].endswith("/bad-request")
    async with db() as session:
        assert await store.find(session, "team:ap", "invoice", ACME) is None


async def test_an_approved_review_teaches_the_next_extraction_of_the_sender(
    client: AsyncTestClient[Litestar], db: Sessions
) -> None:
    """End to end: extract, correct the total and approve, then the sender's next invoice (other
    values, the total two rows lower, beside a label no lexicon knows) comes out right, read from
    memory; another key (no team) does not get it."""
    async with db() as session:
        keys = ApiKeys(session)
        admin = {"Authorization": f"Bearer {(await keys.create('admin', [Scope.ADMIN])).key}"}
        erp = {"Authorization": f"Bearer {(await keys.create('erp', [Scope.EXTRACT], team='ap')).key}"}
        other = {"Authorization": f"Bearer {(await keys.create('other', [Scope.EXTRACT])).key}"}
    created = await client.post("/schemas", json={"name": "memo", "schema": SCHEMA}, headers=admin)
    assert created.status_code == 201, created.text
    first = (await client.post("/extract/memo", content=FIRST, headers=erp)).json()
    assert first["data"]["total"] != 119.0  # the layout engine does not know "Remit this sum"
    review = {"corrections": [{"pointer": "/total", "value": "119.00"}], "decision": "approve"}
    approved = await client.post(f"/extractions/{first['id']}/review", json=review, headers=erp)
    assert approved.status_code == 200, approved.text

    async def learnt() -> Any:
        return (await client.get("/senders", headers=erp)).json()["items"]

    await eventually(learnt, within_s=30)
    [sender] = await learnt()
    assert sender["sender"] == "vat:DE136695976" and sender["schema"] == "memo"
    assert "/total" in sender["fields"]

    second = (await client.post("/extract/memo", content=SECOND, headers=erp)).json()
    assert second["data"]["total"] == 207.5
    assert second["fields"]["/total"]["components"]["source"] == "sender_memory"
    unknown = (await client.post("/extract/memo", content=SECOND, headers=other)).json()
    assert unknown["data"]["total"] != 207.5  # never shared across keys or teams
    assert unknown["fields"]["/total"]["components"]["source"] == "engine"


async def test_with_sender_memory_off_the_same_database_is_neither_read_nor_taught(
    client: AsyncTestClient[Litestar], db: Sessions, settings: Settings, tmp_path: Path
) -> None:
    """One database, two deployments: the one with ``DOCEXTRACT_SENDER_MEMORY=false`` does not use
    the memory the other learnt, and its approvals teach nothing."""
    async with db() as session:
        keys = ApiKeys(session)
        admin = {"Authorization": f"Bearer {(await keys.create('admin', [Scope.ADMIN])).key}"}
        erp = {"Authorization": f"Bearer {(await keys.create('erp', [Scope.EXTRACT], team='ap')).key}"}
    assert (await client.post("/schemas", json={"name": "memo", "schema": SCHEMA}, headers=admin)).is_success
    off = make_settings(
        tmp_path / "off",
        settings.database.url,
        app=AppSettings(data_dir=tmp_path / "off", log_level="WARNING", sender_memory=False),
        engine=EngineSettings(engine="layout"),
        ocr=OcrSettings(enabled=False),
    )
    review = {"corrections": [{"pointer": "/total", "value": "119.00"}], "decision": "approve"}
    async with AsyncTestClient(create_app(off)) as forgetful:
        first = (await forgetful.post("/extract/memo", content=FIRST, headers=erp)).json()
        assert (
            await forgetful.post(f"/extractions/{first['id']}/review", json=review, headers=erp)
        ).is_success
        taught = (await client.post("/extract/memo", content=FIRST, headers=erp)).json()
        assert (await client.post(f"/extractions/{taught['id']}/review", json=review, headers=erp)).is_success

        async def learnt() -> Any:
            return (await client.get("/senders", headers=erp)).json()["items"]

        await eventually(learnt, within_s=30)
        [sender] = await learnt()
        assert sender["documents"] == 1  # only the approval made with memory on taught it
        recalled = (await client.post("/extract/memo", content=SECOND, headers=erp)).json()
        assert recalled["fields"]["/total"]["components"]["source"] == "sender_memory"
        ignored = (await forgetful.post("/extract/memo", content=SECOND, headers=erp)).json()
        assert ignored["fields"]["/total"]["components"]["source"] == "engine"
        assert ignored["data"]["total"] != 207.5
