"""The PostgreSQL and Redis tests find the servers at their default addresses, and when a server does
not answer they say why (refused, silent) and what to set: skipped on a developer machine, failed in
CI (``tests/conftest.py``). Checked against a closed port of this machine."""

from __future__ import annotations

import socket

import pytest

from tests import conftest as harness


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def developer_machine(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No test server variables, not CI, and no remembered failures."""
    monkeypatch.delenv(harness.PG_ENV, raising=False)
    monkeypatch.delenv(harness.REDIS_ENV, raising=False)
    monkeypatch.setattr(harness, "IN_CI", False)
    monkeypatch.setattr(harness, "_DOWN", {})
    return monkeypatch


def test_the_defaults_are_used_when_the_variables_are_unset(developer_machine: pytest.MonkeyPatch) -> None:
    assert (
        harness.server_url(harness.PG_ENV, harness.PG_DEFAULT)
        == "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    assert harness.server_url(harness.REDIS_ENV, harness.REDIS_DEFAULT) == "redis://127.0.0.1:6379/0"
    developer_machine.setenv(harness.REDIS_ENV, "redis://cache:6379/2")
    assert harness.server_url(harness.REDIS_ENV, harness.REDIS_DEFAULT) == "redis://cache:6379/2"


async def test_postgresql_on_a_closed_port_is_skipped_as_refused(
    developer_machine: pytest.MonkeyPatch,
) -> None:
    port = closed_port()
    with pytest.raises(pytest.skip.Exception) as skipped:
        await harness._pg_admin(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert skipped.value.msg == (
        f"PostgreSQL at 127.0.0.1:{port} refused the connection; set DOCEXTRACT_TEST_DATABASE_URL"
    )


async def test_redis_on_a_closed_port_is_skipped_with_its_own_reason(
    developer_machine: pytest.MonkeyPatch,
) -> None:
    port = closed_port()
    developer_machine.setenv(harness.REDIS_ENV, f"redis://127.0.0.1:{port}/0")
    with pytest.raises(pytest.skip.Exception) as skipped:
        await harness.redis_available()
    assert (
        skipped.value.msg
        == f"Redis at 127.0.0.1:{port} refused the connection; check DOCEXTRACT_TEST_REDIS_URL"
    )
    with pytest.raises(pytest.skip.Exception) as again:  # remembered: no second wait
        await harness.redis_available()
    assert again.value.msg == skipped.value.msg


async def test_in_ci_an_unreachable_server_fails(developer_machine: pytest.MonkeyPatch) -> None:
    developer_machine.setattr(harness, "IN_CI", True)
    port = closed_port()
    with pytest.raises(pytest.fail.Exception) as failed:
        await harness._pg_admin(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert failed.value.msg is not None
    assert failed.value.msg.startswith(f"PostgreSQL at 127.0.0.1:{port} refused the connection")
    assert failed.value.msg.endswith("(CI=true: PostgreSQL and Redis tests may not be skipped)")


def test_a_silent_server_is_named_as_such() -> None:
    reason = harness.unreachable_reason(
        "Redis", "redis://10.0.0.7/0", harness.REDIS_ENV, TimeoutError("timed out")
    )
    assert reason.startswith("Redis at 10.0.0.7:6379 did not answer within 2 s; ")
