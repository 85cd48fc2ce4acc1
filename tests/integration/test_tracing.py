"""OpenTelemetry (the ``otel`` extra): a request to ``POST /extract`` makes one trace: the server span,
``docextract.extract`` inside it, and one span per stage (``einvoice``, ``pages`` with an
``engine.page`` per page, ``trust``); log lines written inside carry its trace and span ids. With
tracing off nothing is recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.auth.keys import ApiKeys, Scope
from app.lib import tracing
from app.lib.settings import AppSettings, EngineSettings, OcrSettings
from app.server.core import create_app
from tests.conftest import make_settings
from tests.documents import invoice_pdf


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans kept in memory: ``DOCEXTRACT_TRACING=console`` with the exporter swapped."""
    memory = InMemorySpanExporter()
    setup = tracing.setup_tracing
    monkeypatch.setattr(
        tracing, "setup_tracing", lambda mode: setup(mode, exporter=memory if mode != "off" else None)
    )
    yield memory
    setup("off")


def client_for(tmp_path: Path, mode: tracing.TracingMode) -> TestClient[Any]:
    settings = make_settings(
        tmp_path / "data",
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        app=AppSettings(data_dir=tmp_path / "data", log_level="INFO", tracing=mode),
        engine=EngineSettings(engine="layout"),
        ocr=OcrSettings(enabled=False),
    )
    return TestClient(create_app(settings))


def key(client: TestClient[Any]) -> dict[str, str]:
    async def issue() -> str:
        async with client.app.state.sessions() as session:
            return (await ApiKeys(session).create("erp", [Scope.EXTRACT])).key

    return {"Authorization": f"Bearer {client.blocking_portal.call(issue)}"}


def test_an_extraction_is_one_trace_with_a_span_per_stage_and_its_logs_carry_the_ids(
    tmp_path: Path, exporter: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf, _ = invoice_pdf(pages=2)
    with client_for(tmp_path, "console") as client:
        headers = key(client)
        exporter.clear()
        response = client.post("/extract/invoice", content=pdf, headers=headers)
        assert response.status_code == 200, response.text
    spans = {s.name: s for s in exporter.get_finished_spans()}
    extract = spans["docextract.extract"]
    server = next(s for s in exporter.get_finished_spans() if s.kind.name == "SERVER")
    assert "/extract/" in server.name
    assert extract.parent is not None and extract.parent.span_id == server.context.span_id
    parent = {s.name: s.parent.span_id if s.parent else None for s in exporter.get_finished_spans()}
    for stage in ("einvoice", "pages", "trust"):
        assert parent[stage] == extract.context.span_id
    pages = [s for s in exporter.get_finished_spans() if s.name == "engine.page"]
    assert sorted(str(s.attributes.get("page")) for s in pages if s.attributes) == ["1", "2"]
    assert all(s.parent and s.parent.span_id == spans["pages"].context.span_id for s in pages)
    assert {s.context.trace_id for s in exporter.get_finished_spans() if s.context} == {
        extract.context.trace_id
    }
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    traced = [line for line in logged if line.get("trace_id") == format(extract.context.trace_id, "032x")]
    assert traced, "no log line of the request carries its trace id"


def test_with_tracing_off_nothing_is_recorded(tmp_path: Path, exporter: InMemorySpanExporter) -> None:
    pdf, _ = invoice_pdf()
    with client_for(tmp_path, "off") as client:
        assert client.post("/extract/invoice", content=pdf, headers=key(client)).status_code == 200
    assert tracing.provider() is None
    assert exporter.get_finished_spans() == ()
