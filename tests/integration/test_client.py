"""``docextract.client`` against the running app on a real port: sync and async, extraction with and
without waiting, batches and their export, the e-invoice export, and the ERP's side of a webhook:
submit with a callback, verify the signed delivery, fetch the result."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.auth.keys import Scope
from app.lib.settings import EngineSettings, JobSettings, OcrSettings, WebhookSettings
from app.server.core import create_app
from docextract import (
    ApiError,
    AsyncClient,
    Client,
    ExtractionResult,
    InvalidSignature,
    JobView,
    verify_webhook,
)
from tests.conftest import make_settings
from tests.documents import invoice_pdf
from tests.einvoice_factory import german_sample, invoice_data, ubl_xml
from tests.helpers import key_for, served
from tests.webhook_receiver import Receiver


@dataclass(frozen=True)
class Live:
    base: str
    key: str


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The app on a free loopback port: SQLite, the layout engine, webhooks allowed to loopback."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    settings = make_settings(
        tmp_path / "data",
        url,
        engine=EngineSettings(engine="layout"),
        ocr=OcrSettings(enabled=False),
        jobs=JobSettings(poll_s=0.2),
        webhooks=WebhookSettings(allow_networks=["127.0.0.0/8"], retry_base_s=0.2),
    )
    with served(create_app(settings)) as base:
        yield Live(base, key_for(url, Scope.EXTRACT))


def test_the_sync_client_extracts_reads_and_exports(live: Live, tmp_path: Path) -> None:
    pdf, _ = invoice_pdf()
    path = tmp_path / "acme.pdf"
    path.write_bytes(pdf)
    with Client(live.base, live.key) as dx:
        result = dx.extract(path, "invoice")
        assert isinstance(result, ExtractionResult) and result.id.startswith("ext_")
        assert result.schema.name == "invoice" and result.fields  # typed all the way down
        assert dx.extraction(result.id) == result
        assert json.loads(dx.export(result.id, "json")) == result.data
        sample = german_sample()
        einvoice = dx.extract(ubl_xml(sample), "invoice")
        assert isinstance(einvoice, ExtractionResult) and einvoice.data == invoice_data(sample)
        assert dx.export(einvoice.id, "ubl").startswith(b"<?xml")
        assert dx.schema("invoice")["name"] == "invoice"
        with pytest.raises(ApiError) as raised:
            dx.extract(pdf, "no-such-schema")
        assert raised.value.status == 404 and raised.value.type.endswith("/schema-not-found")


async def test_the_async_client_queues_waits_and_exports_a_batch(live: Live) -> None:
    pdf, _ = invoice_pdf()
    async with AsyncClient(live.base, live.key) as dx:
        job = await dx.extract(pdf, "invoice", wait=False, filename="acme.pdf")
        assert isinstance(job, JobView) and job.status in ("queued", "running", "succeeded", "needs_review")
        result = await dx.wait_for(job.id, poll_s=0.1, timeout_s=60)
        assert result.id == (await dx.job(job.id)).extraction_id
        batch = await dx.submit_batch([("one.pdf", pdf), ("two.xml", ubl_xml(german_sample()))], "invoice")
        assert isinstance(batch.jobs, list)
        for entry in batch.jobs:
            await dx.wait_for(entry.id, poll_s=0.1, timeout_s=60)
        assert (await dx.batch(batch.batch_id)).status == "completed"
        rows = (await dx.export_batch(batch.batch_id, "csv")).decode().splitlines()
        assert rows[1].startswith("one.pdf,") and rows[2].startswith("two.xml,")


def test_the_erp_submits_with_a_callback_verifies_the_webhook_and_fetches_the_result(live: Live) -> None:
    """The README's ERP example, end to end."""
    with Receiver() as receiver, Client(live.base, live.key) as dx:
        secret = dx.http.post(f"{live.base}/webhooks/callback-secret", headers=dx.headers).json()["secret"]
        job = dx.extract(invoice_pdf()[0], "invoice", wait=False, callback_url=receiver.url("/hooks/dx"))
        assert isinstance(job, JobView)
        deadline = time.monotonic() + 30
        while not receiver.requests:
            assert time.monotonic() < deadline, "no webhook arrived"
            time.sleep(0.05)
        delivery = receiver.requests[0]
        event = verify_webhook(secret, delivery.headers, delivery.body)
        assert event["type"] in ("extraction.completed", "extraction.needs_review")
        assert event["data"]["job_id"] == job.id
        result = dx.extraction(event["data"]["extraction_id"])
        assert result.status == event["data"]["status"]
        with pytest.raises(InvalidSignature):
            verify_webhook(secret, delivery.headers, delivery.body.replace(b"job_", b"jab_"))
