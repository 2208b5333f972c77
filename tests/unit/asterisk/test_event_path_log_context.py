"""Log lines emitted while the event path handles an event carry what it is about."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from structlog.testing import capture_logs

from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.seat_feed import AmiSeatFeed

log = structlog.get_logger("test")


async def test_a_seat_feed_failure_names_the_interface_it_was_handling() -> None:
    handled = asyncio.Event()

    async def handle(interface: str, started: bool) -> None:
        log.info("handling")
        handled.set()
        raise RuntimeError("boom")

    feed = AmiSeatFeed(handle)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        running = asyncio.create_task(feed.run())
        feed.on_events([AmiMessage({"Event": "AgentConnect", "Interface": "PJSIP/1101"})])
        await asyncio.wait_for(handled.wait(), 5)
        await asyncio.sleep(0)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    assert [e["interface"] for e in logs if e["event"] == "handling"] == ["PJSIP/1101"]
    failed = next(e for e in logs if e["event"] == "held_write_failed")
    assert failed["interface"] == "PJSIP/1101"
    assert failed["kind"] == "seats"
