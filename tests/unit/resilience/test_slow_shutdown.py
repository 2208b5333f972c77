"""A slow stop names the tasks it waits for and where each is suspended."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from ccbridge.resilience.slow_shutdown import report_slow_shutdown


async def _never_ends(gate: asyncio.Event) -> None:
    await gate.wait()


async def _wrapper(gate: asyncio.Event) -> None:
    await _never_ends(gate)  # like ``supervise`` around a loop


async def test_the_task_that_keeps_the_stop_waiting_is_named_with_its_frame() -> None:
    gate = asyncio.Event()
    stuck = asyncio.create_task(_wrapper(gate), name="stuck-loop")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await report_slow_shutdown(after=0)
    gate.set()
    await stuck
    (entry,) = [e for e in logs if e["event"] == "shutdown_slow"]
    (line,) = [w for w in entry["waiting"] if w.startswith("stuck-loop:")]
    assert "wait (locks.py:" in line  # the innermost frame first, then its callers
    assert line.index("_never_ends (test_slow_shutdown.py:") < line.index("_wrapper (")
    assert not any(w.startswith("Task-") and "report_slow_shutdown" in w for w in entry["waiting"])
