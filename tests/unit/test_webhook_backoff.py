"""The webhook retry schedule: exponential with jitter, capped, honouring Retry-After, over a day."""

from __future__ import annotations

import itertools

from app.lib.settings import WebhookSettings
from app.webhooks.delivery import backoff_s, next_delay_s

DEFAULTS = WebhookSettings(retry_base_s=5.0, retry_max_s=4 * 3600.0, max_attempts=18)
DAY_S = 24 * 3600


def schedule(settings: WebhookSettings, jitter: float | None) -> list[float]:
    """The delays between consecutive attempts, until the last one."""
    return [backoff_s(attempt, settings, jitter) for attempt in range(1, settings.max_attempts)]


def test_the_default_schedule_spans_more_than_a_day_even_with_the_lowest_jitter() -> None:
    assert sum(schedule(DEFAULTS, 0.8)) > DAY_S
    assert sum(schedule(DEFAULTS, 1.0)) > DAY_S
    assert sum(schedule(DEFAULTS, None)) > DAY_S
    assert sum(schedule(DEFAULTS, 1.2)) < 2 * DAY_S


def test_delays_double_then_stop_at_the_cap() -> None:
    plain = schedule(DEFAULTS, 1.0)
    assert plain[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(plain) == DEFAULTS.retry_max_s
    assert plain[-1] == DEFAULTS.retry_max_s
    assert all(a <= b for a, b in itertools.pairwise(plain))
    assert max(schedule(DEFAULTS, 1.2)) == DEFAULTS.retry_max_s


def test_jitter_stays_within_twenty_percent() -> None:
    for attempt in range(1, 11):
        nominal = min(5.0 * 2 ** (attempt - 1), DEFAULTS.retry_max_s)
        draws = [backoff_s(attempt, DEFAULTS) for _ in range(200)]
        assert all(
            min(0.8 * nominal, DEFAULTS.retry_max_s) <= d <= min(1.2 * nominal, DEFAULTS.retry_max_s)
            for d in draws
        )
        assert len(set(draws)) > 1


def test_retry_after_stretches_the_delay_but_not_past_the_cap() -> None:
    quick = WebhookSettings(retry_base_s=0.1, retry_max_s=60.0)
    assert next_delay_s(1, quick, None) <= 0.12
    assert next_delay_s(1, quick, 30.0) == 30.0
    assert next_delay_s(1, quick, 3600.0) == 60.0
    assert 0.08 <= next_delay_s(1, quick, 0.0) <= 0.12  # a shorter Retry-After never shortens it
