"""Tell seats when their agent answers or finishes a queue call (AgentConnect/AgentComplete).

The AMI consumer only enqueues; a separate task applies the events to the seat service, so a
slow database never holds up the AMI stream (Asterisk drops a slow reader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage

log = structlog.get_logger(__name__)

CallEventHandler = Callable[[str, bool], Awaitable[None]]
"""``(member interface, started)``: the seat service's ``call_event``."""


class AmiSeatFeed:
    """Queue member call starts and ends from AMI, applied in order by :meth:`run`."""

    def __init__(self, client: AmiClient, handle: CallEventHandler, maxsize: int = 10_000) -> None:
        self._client = client
        self._handle = handle
        self._queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def attach(self) -> None:
        """Subscribe to the two member events."""
        self._client.subscribe("AgentConnect", self._on_connect)
        self._client.subscribe("AgentComplete", self._on_complete)

    def _on_connect(self, msg: AmiMessage) -> None:
        self._put(msg, started=True)

    def _on_complete(self, msg: AmiMessage) -> None:
        self._put(msg, started=False)

    def _put(self, msg: AmiMessage, *, started: bool) -> None:
        interface = msg.get("Interface")
        if not interface:
            return
        try:
            self._queue.put_nowait((interface, started))
        except asyncio.QueueFull:
            # The reconciler and the next call event restore the seat state; count the loss.
            self.dropped += 1
            log.warning("seat_feed_overflow", interface=interface)

    async def run(self) -> None:
        """Apply queued events one by one until cancelled; one failure never stops the feed."""
        while True:
            interface, started = await self._queue.get()
            with structlog.contextvars.bound_contextvars(interface=interface):
                try:
                    await self._handle(interface, started)
                except Exception:
                    log.exception("seat_feed_failed", started=started)
