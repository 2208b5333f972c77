"""Whether the database answers, as every component of the process sees it.

Any database error a component reports (or the engine's own error hook sees) that means "away"
marks it down; a probe then pings with back-off and marks it up again. /readyz reports the
state with the reason and since when; loops holding work wait on :meth:`wait_up` instead of
hammering a database that is not there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from ccbridge.observability.metrics import DatabaseMetrics
from ccbridge.resilience.backoff import Backoff

log = structlog.get_logger(__name__)

Ping = Callable[[], Awaitable[None]]
Classifier = Callable[[BaseException], bool]


class DatabaseAvailability:
    """Up/down state of the database with the reason it went down; probes until it is back."""

    def __init__(
        self,
        ping: Ping,
        is_unavailable: Classifier,
        now: Callable[[], datetime],
        *,
        metrics: DatabaseMetrics | None = None,
        backoff: Backoff | None = None,
        is_busy: Classifier | None = None,
    ) -> None:
        """Nothing runs until :meth:`run` is scheduled; starts as up (the start-up ran queries).
        *is_busy* picks the failures worth a retry that do not mean "away" (a locked file)."""
        self._ping = ping
        self._is_unavailable = is_unavailable
        self._is_busy = is_busy
        self._now = now
        self._metrics = metrics
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self._up = asyncio.Event()
        self._up.set()
        self._down = asyncio.Event()
        self.reason: str | None = None
        self.since: datetime | None = None
        self.outages = 0
        self.probes = 0
        if metrics is not None:
            metrics.up.set(1)

    @property
    def is_up(self) -> bool:
        """True unless an outage was seen and the database has not answered since."""
        return self._up.is_set()

    def report(self, exc: BaseException, component: str) -> bool:
        """Note a failed database operation; return True when it means "the database is away"."""
        if self._metrics is not None:
            self._metrics.errors.labels(component=component).inc()
        if not self._is_unavailable(exc):
            return False
        if self._is_busy is None or not self._is_busy(exc):
            self.mark_down(_reason(exc), component)
        return True

    def mark_down(self, reason: str, component: str) -> None:
        """Record an outage (idempotent while down) and wake the probe."""
        if not self._up.is_set():
            return
        self._up.clear()
        self._down.set()
        self.reason = reason
        self.since = self._now()
        self.outages += 1
        if self._metrics is not None:
            self._metrics.up.set(0)
        log.error("database_unavailable", reason=reason, component=component)

    def mark_up(self) -> None:
        """Record that the database answered again."""
        if self._up.is_set():
            return
        log.info("database_available", down_since=self.since.isoformat() if self.since else None)
        self.reason = None
        self.since = None
        self._down.clear()
        self._up.set()
        if self._metrics is not None:
            self._metrics.up.set(1)

    async def wait_up(self) -> None:
        """Return once the database answers (at once while it is up)."""
        await self._up.wait()

    async def check(self) -> tuple[bool, dict[str, object]]:
        """For /readyz: while down, the reason and since when; while up, a live ping (which
        may itself discover an outage)."""
        if self.is_up:
            try:
                await self._ping()
            except Exception as exc:
                if not self.report(exc, "readiness"):
                    raise
        if self.is_up:
            return True, {}
        return False, {
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else None,
        }

    async def run(self) -> None:
        """Probe while the database is down, with back-off; idle while it is up. Never ends."""
        while True:
            await self._down.wait()
            self._backoff.reset()
            while not self.is_up:
                await asyncio.sleep(self._backoff.next_delay())
                self.probes += 1
                try:
                    await self._ping()
                except Exception as exc:
                    self.reason = _reason(exc)
                else:
                    self.mark_up()


def _reason(exc: BaseException) -> str:
    """One short line an operator can act on (no traceback, no SQL)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
