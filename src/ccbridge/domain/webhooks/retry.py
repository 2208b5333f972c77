"""When to try a failed webhook delivery again, and when to give up or disable the endpoint."""

from __future__ import annotations

import random
from datetime import timedelta

RETRY_FOR = timedelta(days=3)
"""An event is retried for three days after its first failed attempt, then skipped."""
BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
DISABLE_AFTER = timedelta(days=5)
"""An endpoint failing without a single success for this long is disabled."""


def retry_delay(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Delay before attempt ``attempt + 1``: exponential (5 s · 2ⁿ, capped at 1 h), full jitter
    over the upper half so a fleet of failing endpoints does not retry in lockstep."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling: timedelta = min(BASE_DELAY * (2 ** min(attempt - 1, 20)), MAX_DELAY)
    fraction: float = (rng or random).uniform(0.5, 1.0)
    return ceiling * fraction


def should_give_up(failing_for: timedelta) -> bool:
    """True once an event has failed for longer than :data:`RETRY_FOR`."""
    return failing_for >= RETRY_FOR


def should_disable(failing_for: timedelta) -> bool:
    """True once an endpoint has failed continuously for :data:`DISABLE_AFTER`."""
    return failing_for >= DISABLE_AFTER
