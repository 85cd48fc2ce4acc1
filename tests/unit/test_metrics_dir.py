"""``docextract serve --workers N`` shares one metrics directory among its processes: emptied at each
start (a previous run's values would count again), a temporary one when none is configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.cli.serve import shared_metrics
from app.lib.metrics import MULTIPROCESS_ENV


@pytest.fixture(autouse=True)
def own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``shared_metrics`` sets the variable for the rest of the process (the workers inherit it);
    here it goes to a copy, or every later test would serve metrics in multiprocess mode."""
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k != MULTIPROCESS_ENV})


def test_the_configured_directory_is_emptied_and_handed_to_the_workers(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_4711.db").write_bytes(b"stale")
    (directory / "README").write_text("not ours")
    with shared_metrics(directory) as shared:
        assert shared == directory and os.environ[MULTIPROCESS_ENV] == str(directory)
        assert sorted(p.name for p in directory.iterdir()) == ["README"]
    assert directory.exists()


def test_without_one_a_temporary_directory_lives_as_long_as_the_server() -> None:
    with shared_metrics(None) as shared:
        assert shared.is_dir() and os.environ[MULTIPROCESS_ENV] == str(shared)
    assert not shared.exists()
