"""Log lines emitted while the event path handles an event carry what it is about."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import cast

import structlog
from structlog.testing import capture_logs

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.seat_feed import AmiSeatFeed

log = structlog.get_logger("test")


class _Subscriptions:
    """Just enough of :class:`AmiClient` for a feed to subscribe."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[AmiMessage], None]] = {}

    def subscribe(self, event: str, callback: Callable[[AmiMessage], None]) -> None:
        self.handlers[event] = callback


async def test_a_seat_feed_failure_names_the_interface_it_was_handling() -> None:
    subscriptions = _Subscriptions()
    handled = asyncio.Event()

    async def handle(interface: str, started: bool) -> None:
        log.info("handling")
        handled.set()
        raise RuntimeError("boom")

    feed = AmiSeatFeed(cast(AmiClient, subscriptions), handle)
    feed.attach()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        running = asyncio.create_task(feed.run())
        subscriptions.handlers["AgentConnect"](
            AmiMessage({"Event": "AgentConnect", "Interface": "PJSIP/1101"})
        )
        await asyncio.wait_for(handled.wait(), 5)
        await asyncio.sleep(0)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    assert [e["interface"] for e in logs if e["event"] == "handling"] == ["PJSIP/1101"]
    failed = next(e for e in logs if e["event"] == "held_write_failed")
    assert failed["interface"] == "PJSIP/1101"
    assert failed["kind"] == "seats"
