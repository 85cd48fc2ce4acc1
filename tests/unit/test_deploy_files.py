"""The deployment files name only settings that exist, so a typo there is not silently ignored
(settings ignore unknown variables), and Prometheus' own checker accepts the alert rules and the
scrape config. (That the Grafana dashboard and the rules use only metrics the service serves:
``tests/integration/test_metrics.py``.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.lib.settings import _GROUP_PREFIXES, _PREFIX

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def known_variables() -> set[str]:
    return {
        f"{_PREFIX}{prefix}{field.upper()}"
        for group, prefix in _GROUP_PREFIXES.items()
        for field in group.model_fields
    }


def docextract_variables(node: Any) -> set[str]:
    """Every DOCEXTRACT_* key anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        found = {k for k in node if isinstance(k, str) and k.startswith(_PREFIX)}
        return found.union(*(docextract_variables(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(docextract_variables(v) for v in node))
    return set()


def test_deploy_files_use_only_real_settings() -> None:
    files = [DEPLOY / "compose.yaml", *sorted((DEPLOY / "k8s").glob("*.yaml"))]
    used = set().union(
        *(docextract_variables(doc) for f in files for doc in yaml.safe_load_all(f.read_text()))
    )
    assert used, "the deploy files configure docextract"
    assert used <= known_variables(), used - known_variables()


def promtool() -> str:
    """Debian's prometheus package ships promtool; skipped without it, except in CI (``.ci/run``
    installs it)."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not found: install Debian's prometheus package (apt-get install -y prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_alert_rules_and_the_scrape_config_pass_promtool() -> None:
    rules = DEPLOY / "prometheus" / "alerts.yml"
    config = DEPLOY / "prometheus" / "prometheus.yml"
    for command in (["check", "rules", str(rules)], ["check", "config", str(config)]):
        checked = subprocess.run([promtool(), *command], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout  # the config loads alerts.yml
