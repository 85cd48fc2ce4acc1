"""Retry delays, shared by everything that retries: the SGLang client, webhook deliveries and jobs.

- ``exponential_s``: doubling from a base, times a jitter factor in [0.8, 1.2], capped. Used where
  the schedule itself is a promise (webhooks span more than a day; jobs wait longer each attempt) and
  only needs spreading so that work which failed together is not retried together.
- ``full_jitter_s``: a uniform draw between 0 and the doubled delay ("full jitter"). Used for many
  concurrent requests to one overloaded server (SGLang), where spreading them matters more than the
  exact schedule.
- ``parse_retry_after`` reads a ``Retry-After`` header (RFC 9110 §10.2.3) and ``honour_retry_after``
  stretches a delay to it, never past a cap: a server's wish is honoured, not its every whim.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

JITTER_LOW, JITTER_HIGH = 0.8, 1.2
_random = random.SystemRandom()
_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def exponential_s(
    attempt: int, base_s: float, cap_s: float = math.inf, *, jitter: float | None = None
) -> float:
    """Delay after failed attempt ``attempt`` (1-based): ``base_s`` doubled per attempt, times
    ``jitter`` (drawn in [0.8, 1.2] when None). The cap applies after the jitter, so a capped
    schedule's length does not depend on the draws once it reaches the cap."""
    factor = _random.uniform(JITTER_LOW, JITTER_HIGH) if jitter is None else jitter
    return min(base_s * 2.0 ** (attempt - 1) * factor, cap_s)


def full_jitter_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay after failed attempt ``attempt`` (1-based): uniform in [0, base doubled per attempt],
    the doubled delay capped at ``cap_s``."""
    return _random.uniform(0.0, min(cap_s, base_s * 2.0 ** (attempt - 1)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (a fraction tolerated) or an HTTP
    date, a past date being 0. ``None`` when absent or unreadable (negative numbers included)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def honour_retry_after(delay_s: float, retry_after_s: float | None, cap_s: float) -> float:
    """``delay_s`` stretched to the server's ``Retry-After`` when that is longer, but not past ``cap_s``
    (a shorter ``Retry-After`` never shortens the delay)."""
    if retry_after_s is None:
        return delay_s
    return max(delay_s, min(retry_after_s, cap_s))
