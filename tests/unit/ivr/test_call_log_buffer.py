"""The buffered IVR call log keeps every record until a write has really stored it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ccbridge.services.ivr_ports import IvrCallRecord
from ccbridge.services.ivr_runtime import BufferedCallLog

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def record(uniqueid: str) -> IvrCallRecord:
    """One finished call's log."""
    steps: list[dict[str, str | None]] = [
        {"node": "m", "type": "menu", "input": "1", "outcome": "option:sales"}
    ]
    return IvrCallRecord(
        "t1", "main", 1, uniqueid, "138", AT, AT, ["m"], steps, "queue", "sales", "flow", None
    )


async def test_a_flush_cancelled_mid_write_keeps_its_batch_for_the_next_flush() -> None:
    stored: list[IvrCallRecord] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_write(batch: list[IvrCallRecord]) -> None:
        started.set()
        await release.wait()
        stored.extend(batch)

    log = BufferedCallLog(slow_write)
    log.record(record("1.1"))
    flushing = asyncio.create_task(log.flush())
    await started.wait()
    log.record(record("1.2"))
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    release.set()
    assert await log.flush() == 2
    assert [r.uniqueid for r in stored] == ["1.1", "1.2"]
