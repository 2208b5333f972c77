"""Periodic jobs keep running after a failure and report it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ccbridge.jobs.runner import JobRunner


async def _until(cond: Callable[[], bool]) -> None:
    """Wait for a condition, not for a number of seconds (a 30 s hang guard)."""
    async with asyncio.timeout(30):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def test_failing_job_is_retried_and_others_keep_running() -> None:
    runner = JobRunner(max_backoff=0.02)
    calls = {"bad": 0, "good": 0}

    async def bad() -> None:
        calls["bad"] += 1
        if calls["bad"] < 3:
            raise RuntimeError("boom")

    async def good() -> None:
        calls["good"] += 1

    bad_job = runner.add("bad", 0.005, bad)
    runner.add("good", 0.005, good)
    task = asyncio.create_task(runner.run())
    await _until(lambda: calls["bad"] >= 4 and calls["good"] >= 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert calls["bad"] >= 4
    assert calls["good"] >= 10
    assert bad_job.stats.failures == 2
    assert bad_job.stats.consecutive_failures == 0
    assert bad_job.stats.last_error == "RuntimeError: boom"


async def test_on_stop_jobs_run_once_more_at_shutdown_even_after_a_failing_one() -> None:
    """A buffer flushed every few seconds would lose its last seconds at shutdown otherwise."""
    runner = JobRunner()
    flushed: list[str] = []

    async def failing_flush() -> None:
        raise RuntimeError("database gone")

    async def flush() -> None:
        flushed.append("call-log")

    async def tick() -> None:
        flushed.append("tick")

    runner.add("broken", 3600.0, failing_flush, on_stop=True)
    runner.add("call-log", 3600.0, flush, on_stop=True)
    runner.add("tick", 3600.0, tick)
    task = asyncio.create_task(runner.run())
    await _until(lambda: all(job.stats.runs for job in runner.jobs))  # each ran once at start
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    flushed.clear()
    await runner.run_final()
    assert flushed == ["call-log"]
