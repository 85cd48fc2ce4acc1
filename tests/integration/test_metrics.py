"""``GET /metrics`` moves with the work: an extraction through the real app (the layout engine, no
model) counts its pages, its stages, its result and its request (by route template); a review counts
its decision; the job queue is read from the database when scraped; the Grafana dashboard and the
alert rules in deploy/ use only metrics the service serves. (An engine that keeps failing:
``test_extract_api.test_engine_down_is_503_with_retry_after``.)"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics import prometheus_config
from app.db.models import JobRecord, utcnow
from app.lib.settings import EngineSettings, JobSettings, OcrSettings, Settings
from tests.conftest import make_settings
from tests.documents import invoice_pdf
from tests.helpers import metric, metric_samples

Client = AsyncTestClient[Litestar]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url,
        engine=EngineSettings(engine="layout"),
        ocr=OcrSettings(enabled=False),
        jobs=JobSettings(poll_s=60),
    )


async def scrape(client: Client) -> Samples:
    """``/metrics`` without a key, as Prometheus scrapes it."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return metric_samples(response.text)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return metric(after, name, **labels) - metric(before, name, **labels)


async def test_an_extraction_and_its_review_move_the_counters(
    client: Client, extract_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    before = await scrape(client)
    pdf, _ = invoice_pdf(pages=2)
    answer = await client.post(
        "/extract/invoice?min_confidence=0.999",
        files=[("file", ("two-pages.pdf", pdf, "application/pdf"))],
        headers=extract_headers,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result["status"] == "needs_review"
    review = await client.post(
        f"/extractions/{result['id']}/review", json={"decision": "approve"}, headers=admin_headers
    )
    assert review.status_code == 200, review.text
    after = await scrape(client)

    assert moved(before, after, "docextract_pages_total", document_type="pdf", kind="born_digital") == 2
    assert moved(before, after, "docextract_extractions_total", status="needs_review", engine="layout") == 1
    assert {"ingest", "layout", "engine", "trust"} <= set(result["timings_ms"])
    for stage in ("ingest", "layout", "engine", "trust"):
        assert moved(before, after, "docextract_stage_seconds_count", stage=stage) == 1, stage
    assert moved(before, after, "docextract_stage_seconds_sum", stage="layout") > 0
    assert moved(before, after, "docextract_extraction_confidence_count") == 1
    assert moved(before, after, "docextract_reviews_total", decision="approve") == 1

    # Requests by route template, never by the raw path (one series per route, whatever the ids).
    extract = {"method": "POST", "path": "/extract/{schema}", "status_code": "200"}
    assert moved(before, after, "docextract_http_requests_total", **extract) == 1
    assert moved(before, after, "docextract_http_request_duration_seconds_count", **extract) == 1
    reviewed = {"path": "/extractions/{extraction_id}/review", "status_code": "200"}
    assert moved(before, after, "docextract_http_requests_total", **reviewed) == 1
    assert not any(result["id"] in str(labels) for _, labels in after)


async def test_the_queue_is_read_from_the_database_when_scraped(client: Client, db: Any) -> None:
    idle = await scrape(client)
    assert metric(idle, "docextract_jobs", status="queued") == 0
    assert metric(idle, "docextract_jobs_oldest_queued_age_seconds") == 0
    now = utcnow()
    async with db() as session:
        for age_s in (3600, 60):
            session.add(
                JobRecord(
                    id=f"job_{uuid.uuid4().hex}",
                    status="queued",
                    schema_name="invoice",
                    schema_version=1,
                    document_sha256="0" * 64,
                    created_at=now - timedelta(seconds=age_s),
                    not_before=now + timedelta(days=1),  # not due: the in-process runner leaves it
                    expires_at=now + timedelta(days=2),
                )
            )
        await session.commit()
    queued = await scrape(client)
    assert metric(queued, "docextract_jobs", status="queued") == 2
    assert metric(queued, "docextract_jobs", status="running") == 0
    assert 3600 <= metric(queued, "docextract_jobs_oldest_queued_age_seconds") < 3600 + 60


async def served_names(client: Client) -> set[str]:
    """Every sample name ``/metrics`` can serve, also of metrics nothing has observed yet (their
    HELP and TYPE lines are served all the same)."""
    assert (await client.get("/health")).status_code == 200  # the request metrics exist from the first one
    text = (await client.get("/metrics")).text
    served = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES.get(family.type, [""])
    }
    # Litestar's middleware makes its error counter at the first 5xx, and only then serves it.
    return served | {f"{prometheus_config().prefix}_requests_error_total"}


def docextract_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\bdocextract_[a-z_]+", expr))


async def test_the_grafana_dashboard_queries_only_served_metrics(client: Client) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "docextract.json").read_text())
    assert dashboard["uid"] == "docextract" and isinstance(dashboard["schemaVersion"], int)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    assert all(panel["targets"] and panel["gridPos"] for panel in panels)
    used = set().union(*(docextract_metrics(expr) for expr in exprs))
    assert used - await served_names(client) == set()
    assert {"docextract_pages_total", "docextract_stage_seconds_bucket", "docextract_jobs"} <= used
    assert any(expr.startswith("sum(sglang:num_queue_reqs") for expr in exprs)


async def test_the_alert_rules_use_only_served_metrics(client: Client) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = set().union(*(docextract_metrics(expr) for expr in exprs))
    assert used, "the rules watch docextract's own metrics"
    assert used - await served_names(client) == set()
