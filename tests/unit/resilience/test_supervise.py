"""A supervised loop that raises is restarted; it never ends its caller."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from ccbridge.resilience.backoff import Backoff
from ccbridge.resilience.supervise import LoopStats, supervise

FAST = Backoff(initial=0.001, maximum=0.002)


async def test_a_raising_loop_is_restarted_until_it_returns() -> None:
    runs = 0
    reported: list[tuple[str, str]] = []

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ConnectionResetError("database went away")

    def on_error(exc: BaseException, name: str) -> bool:
        reported.append((type(exc).__name__, name))
        return True

    stats = LoopStats()
    async with asyncio.timeout(5):
        await supervise("webhooks", loop, on_error=on_error, backoff=FAST, stats=stats)
    assert runs == 3
    assert stats.restarts == 2
    assert reported == [("ConnectionResetError", "webhooks")] * 2


async def test_an_outage_is_a_warning_and_a_bug_is_logged_with_its_traceback() -> None:
    errors = iter([ConnectionResetError("gone"), KeyError("bug")])

    async def loop() -> None:
        exc = next(errors, None)
        if exc is not None:
            raise exc

    def on_error(exc: BaseException, name: str) -> bool:
        return isinstance(exc, ConnectionError)

    with capture_logs() as logs:
        async with asyncio.timeout(5):
            await supervise("jobs", loop, on_error=on_error, backoff=FAST)
    kinds = [(e["event"], e["log_level"]) for e in logs]
    assert kinds == [
        ("background_loop_restarting", "warning"),
        ("background_loop_crashed", "error"),
    ]
    assert logs[1].get("exc_info") is True


async def test_cancellation_passes_through() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise("forever", loop, backoff=FAST))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0
