"""Name what a shutdown is still waiting for.

A stop that hangs is otherwise silent until Docker's SIGKILL, which loses the final flush.
After a few seconds this logs every unfinished task with where it is suspended, so the one
loop that does not end on cancellation is named in the log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

SLOW_SHUTDOWN_SECONDS = 10.0
"""A stop taking longer than this is reported (the HTTP grace period is already over)."""


def where_suspended(task: asyncio.Task[object], frames: int = 3) -> str:
    """``name: func (file:line) < …`` for the task's innermost frames, innermost first."""
    chain = _await_chain(task.get_coro())
    parts = [
        f"{f.f_code.co_name} ({Path(f.f_code.co_filename).name}:{f.f_lineno})"
        for f in reversed(chain[-frames:])
    ]
    return f"{task.get_name()}: {' < '.join(parts) or 'not started'}"


def _await_chain(awaitable: object) -> list[FrameType]:
    """The frames from the task's coroutine down to what it awaits (``Task.get_stack`` stops
    at the outermost coroutine, which for every supervised loop is ``supervise``)."""
    frames: list[FrameType] = []
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            frame = getattr(awaitable, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "ag_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
        )
    return frames


async def report_slow_shutdown(after: float = SLOW_SHUTDOWN_SECONDS) -> None:
    """Sleep *after* seconds, then log the tasks still running (cancel this when done)."""
    await asyncio.sleep(after)
    me = asyncio.current_task()
    waiting = sorted(
        where_suspended(task) for task in asyncio.all_tasks() if task is not me and not task.done()
    )
    log.warning("shutdown_slow", after_s=after, waiting=waiting)
