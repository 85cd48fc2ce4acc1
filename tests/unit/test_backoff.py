"""The shared retry rules: jittered exponential delays and the server's Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from app.lib.backoff import exponential_s, full_jitter_s, honour_retry_after, parse_retry_after

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_exponential_doubles_with_jitter_and_caps_after_it() -> None:
    assert [exponential_s(a, 5.0, jitter=1.0) for a in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert exponential_s(3, 5.0, 30.0, jitter=1.2) == 24.0
    assert exponential_s(4, 5.0, 30.0, jitter=0.8) == 30.0
    draws = [exponential_s(3, 1.0) for _ in range(200)]
    assert all(3.2 <= d <= 4.8 for d in draws) and len(set(draws)) > 1


def test_full_jitter_stays_between_zero_and_the_capped_doubling() -> None:
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (10, 20.0)):
        draws = [full_jitter_s(attempt, 0.5, 20.0) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws) and len(set(draws)) > 1


def test_retry_after_as_seconds_or_a_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=7), usegmt=True), NOW) == 7.0
    assert parse_retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0
    in_a_minute = parse_retry_after(format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True))
    assert in_a_minute is not None and 58 <= in_a_minute <= 60


def test_unreadable_retry_after_is_none() -> None:
    for value in (None, "", "  ", "soon", "-5", "nan", "inf", "1e3", "Mon, 99 Foo 2025"):
        assert parse_retry_after(value, NOW) is None, value


def test_retry_after_stretches_a_delay_within_the_cap_and_never_shortens_it() -> None:
    assert honour_retry_after(0.1, None, 60.0) == 0.1
    assert honour_retry_after(0.1, 30.0, 60.0) == 30.0
    assert honour_retry_after(0.1, 3600.0, 60.0) == 60.0
    assert honour_retry_after(5.0, 1.0, 60.0) == 5.0
