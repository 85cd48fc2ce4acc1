"""A real Prometheus (Debian's ``prometheus`` package) scrapes a real ``docextract serve --workers 2``:
the target is up and ``docextract_pages_total`` reaches the pages extracted, whichever worker
process read them and whichever one answered the scrape (prometheus-client's multiprocess mode).

Without the binary the test is skipped, except in CI (``CI=true``), where it fails: ``.ci/run``
installs the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.documents import invoice_pdf
from tests.helpers import free_port, metric, metric_samples

pytestmark = pytest.mark.slow  # two processes of the API and a Prometheus server

PROMETHEUS = Path("/usr/bin/prometheus")
DOCUMENTS, PAGES_EACH = 3, 2


def binary(path: Path, package: str) -> Path:
    """The binary, or a skip (a failure in CI) naming the package that provides it."""
    found = path if path.exists() else shutil.which(path.name)
    if found:
        return Path(found)
    message = f"{path} not found: install Debian's {package} package (apt-get install -y {package})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    """``check()``'s first truthy answer; transport errors count as "not yet"."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen within {timeout_s} s (last: {last!r})")


def running(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    try:
        return process.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """``docextract serve --workers 2`` on SQLite with the layout engine (no model), auth off."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCEXTRACT_")},
        "DOCEXTRACT_DATA_DIR": str(tmp_path / "data"),
        "DOCEXTRACT_LOG_LEVEL": "WARNING",
        "DOCEXTRACT_AUTH_DISABLED": "true",
        "DOCEXTRACT_ENGINE": "layout",
        "DOCEXTRACT_OCR_ENABLED": "false",
        "DOCEXTRACT_METRICS_DIR": str(tmp_path / "metrics"),
    }
    server = running([sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "2"], env)
    try:
        ready = f"{base}/ready"
        eventually(lambda: server.poll() is None and httpx.get(ready, timeout=2).is_success, "the API ready")
        yield base
    finally:
        output = stop(server)
        assert "Traceback" not in output, output


@pytest.fixture
def prometheus(tmp_path: Path, api: str) -> Iterator[str]:
    """Prometheus scraping the API every second."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: docextract\n"
        f"    static_configs: [{{targets: ['{api.removeprefix('http://')}']}}]\n"
    )
    server = running(
        [
            str(binary(PROMETHEUS, "prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def query(prometheus: str, expr: str) -> float | None:
    """An instant query's single value, or None while it has none."""
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    results = answer["data"]["result"]
    return float(results[0]["value"][1]) if results else None


def target_up(prometheus: str) -> bool:
    answer = httpx.get(f"{prometheus}/api/v1/targets", timeout=5)
    if not answer.is_success:  # 503 while Prometheus starts
        return False
    targets = answer.json()["data"]["activeTargets"]
    return bool(targets) and all(t["health"] == "up" for t in targets)


def test_prometheus_scrapes_the_pages_every_worker_processed(api: str, prometheus: str) -> None:
    eventually(lambda: target_up(prometheus), "the docextract target up in Prometheus")
    pdf, _ = invoice_pdf(pages=PAGES_EACH)
    for number in range(DOCUMENTS):  # a new connection each: the two workers share them
        answer = httpx.post(
            f"{api}/extract/invoice",
            files=[("file", (f"invoice-{number}.pdf", pdf, "application/pdf"))],
            timeout=120,
        )
        assert answer.status_code == 200, answer.text

    expected = DOCUMENTS * PAGES_EACH
    eventually(
        lambda: query(prometheus, "sum(docextract_pages_total)") == expected,
        f"sum(docextract_pages_total) == {expected} in Prometheus",
    )
    assert query(prometheus, 'sum(docextract_http_requests_total{path="/extract/{schema}"})') == DOCUMENTS
    assert query(prometheus, 'sum(docextract_stage_seconds_count{stage="layout"})') == DOCUMENTS
    assert query(prometheus, 'docextract_jobs{status="queued"}') == 0
    # Every process answers for all of them: scrapes on new connections land on either worker.
    for _ in range(6):
        served = metric_samples(httpx.get(f"{api}/metrics", timeout=5).text)
        assert metric(served, "docextract_pages_total") == expected
