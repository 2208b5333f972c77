"""Run a background loop for the life of the service: an exception restarts it, never ends it.

Before this, one query failing in the webhook dispatcher ended the TaskGroup and with it the
whole process (API, AMI, FastAGI). A supervised loop that raises is logged and started again
after a capped, jittered back-off; "the database is away" is a warning (the availability
tracker already said so), anything else is logged with its traceback, as a bug.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ccbridge.resilience.backoff import Backoff

log = structlog.get_logger(__name__)

HEALTHY_AFTER_SECONDS = 60.0
"""A loop that ran this long before failing starts its back-off from the beginning again."""


@dataclass(slots=True)
class LoopStats:
    """How often a supervised loop failed (tests and readiness count these, not time)."""

    restarts: int = 0
    last_error: str | None = None


async def supervise(
    name: str,
    loop: Callable[[], Awaitable[object]],
    *,
    on_error: Callable[[BaseException, str], bool] | None = None,
    backoff: Backoff | None = None,
    stats: LoopStats | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Await ``loop()`` until it returns normally; restart it after each exception.

    ``on_error(exc, name)`` reports the failure (to the database availability tracker) and
    says whether it was an outage rather than a bug. Cancellation passes through.
    """
    backoff = backoff or Backoff(initial=0.5, maximum=30.0)
    stats = stats if stats is not None else LoopStats()
    while True:
        started = monotonic()
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage = on_error(exc, name) if on_error is not None else False
            if monotonic() - started >= HEALTHY_AFTER_SECONDS:
                backoff.reset()
            delay = backoff.next_delay()
            stats.restarts += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if outage:
                log.warning(
                    "background_loop_restarting",
                    loop=name,
                    error=stats.last_error,
                    database_unavailable=True,
                    retry_in_s=round(delay, 2),
                )
            else:
                log.exception("background_loop_crashed", loop=name, retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)
        else:
            return
