"""Periodic jobs keep running after a failure and report it."""

from __future__ import annotations

import asyncio
import contextlib

from ccbridge.jobs.runner import JobRunner


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
    await asyncio.sleep(0.3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert calls["bad"] >= 4
    assert calls["good"] >= 10
    assert bad_job.stats.failures == 2
    assert bad_job.stats.consecutive_failures == 0
    assert bad_job.stats.last_error == "RuntimeError: boom"
