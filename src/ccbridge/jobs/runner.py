"""Supervised periodic jobs: one failing run is logged and retried, never fatal."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

GATE_POLL_SECONDS = 1.0
"""How often a gated-off job looks again, so it starts within a second of a takeover."""


@dataclass(slots=True)
class JobStats:
    """What a job did so far; shown in readiness details."""

    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_ok_at: float | None = None
    last_error: str | None = None
    skipped: int = 0
    """Runs left out because this node did not own the PBX."""


@dataclass(slots=True)
class PeriodicJob:
    """A coroutine function run every ``interval`` seconds."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]
    on_stop: bool = False
    """Run once more at shutdown (a buffer's flush: what it holds must not be lost)."""
    every_node: bool = False
    """Runs on every node; otherwise only where the runner's gate is open (the PBX owner)."""
    once_per_database: bool = False
    """Runs where the cluster gate is open (one node of all PBXs' nodes; ADR 0033), not on
    the PBX owner: retention, reports, exports. Without a cluster gate, the PBX gate."""
    stats: JobStats = field(default_factory=JobStats)


class JobRunner:
    """Run periodic jobs side by side; back off a failing job up to ``max_backoff``."""

    def __init__(
        self,
        *,
        max_backoff: float = 300.0,
        on_error: Callable[[BaseException, str], bool] | None = None,
        gate: Callable[[], bool] | None = None,
        cluster_gate: Callable[[], bool] | None = None,
    ) -> None:
        """*on_error* is told each failure; when it says "the database is away" the failure
        is logged as a warning without a traceback (the outage is reported once, elsewhere).

        With a *gate* (several nodes, ADR 0026) a job runs only while the gate is open (this
        node owns the PBX), so retention, exports, reports and reconciliation run on one node
        at a time; jobs added with ``every_node`` (this node's own samplers and flushes) run
        regardless. Jobs added with ``once_per_database`` follow *cluster_gate* instead (this
        node holds the cluster lease, ADR 0033), when there is one."""
        self._cluster_gate = cluster_gate
        self._jobs: list[PeriodicJob] = []
        self._max_backoff = max_backoff
        self._on_error = on_error
        self._gate = gate

    def add(
        self,
        name: str,
        interval: float,
        run: Callable[[], Awaitable[object]],
        *,
        on_stop: bool = False,
        every_node: bool = False,
        once_per_database: bool = False,
    ) -> PeriodicJob:
        """Register a job; returns it so callers can read its stats."""
        job = PeriodicJob(name, interval, run, on_stop, every_node, once_per_database)
        self._jobs.append(job)
        return job

    async def run_final(self) -> None:
        """At shutdown, after :meth:`run` is cancelled: run each ``on_stop`` job once more.

        A failure is logged and the next job still runs; shutdown never hangs on one.
        """
        for job in self._jobs:
            if not job.on_stop or not self._may_run(job):
                continue
            try:
                await job.run()
            except Exception:
                log.exception("job_final_run_failed", job=job.name)

    @property
    def jobs(self) -> list[PeriodicJob]:
        """The registered jobs."""
        return list(self._jobs)

    async def run(self) -> None:
        """Run every job until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for job in self._jobs:
                tg.create_task(self._loop(job), name=f"job:{job.name}")
            if not self._jobs:
                await asyncio.Event().wait()

    def _may_run(self, job: PeriodicJob) -> bool:
        if job.every_node:
            return True
        gate = self._cluster_gate if job.once_per_database and self._cluster_gate else self._gate
        return gate is None or gate()

    async def _loop(self, job: PeriodicJob) -> None:
        while True:
            delay = job.interval
            if not self._may_run(job):
                job.stats.skipped += 1
                await asyncio.sleep(min(delay, GATE_POLL_SECONDS))
                continue
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a job failure must not stop the service
                job.stats.failures += 1
                job.stats.consecutive_failures += 1
                job.stats.last_error = f"{type(exc).__name__}: {exc}"
                outage = self._on_error(exc, f"job:{job.name}") if self._on_error else False
                if job.stats.consecutive_failures == 1:
                    if outage:
                        log.warning(
                            "job_failed_database_unavailable", job=job.name, error=repr(exc)
                        )
                    else:
                        log.exception("job_failed", job=job.name)
                backoff = job.interval * 2 ** min(job.stats.consecutive_failures, 10)
                delay = min(backoff, self._max_backoff) * random.uniform(0.8, 1.2)
            else:
                if job.stats.consecutive_failures:
                    log.info("job_recovered", job=job.name)
                job.stats.consecutive_failures = 0
                job.stats.last_ok_at = time.monotonic()
            finally:
                job.stats.runs += 1
            await asyncio.sleep(delay)
