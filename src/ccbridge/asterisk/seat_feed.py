"""Tell seats when their agent answers or finishes a queue call (AgentConnect/AgentComplete).

The AMI consumer only enqueues; a separate task applies the events to the seat service, so a
slow database never holds up the AMI stream (Asterisk drops a slow reader). While the database
is away the events are held in order and applied when it returns (``resilience.held``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.observability.metrics import HeldBacklogMetrics
from ccbridge.resilience.held import ErrorReport, HeldQueue

log = structlog.get_logger(__name__)

CallEventHandler = Callable[[str, bool], Awaitable[None]]
"""``(member interface, started)``: the seat service's ``call_event``."""


class AmiSeatFeed:
    """Queue member call starts and ends from AMI, applied in order by :meth:`run`."""

    def __init__(
        self,
        client: AmiClient,
        handle: CallEventHandler,
        maxsize: int = 10_000,
        *,
        on_error: ErrorReport | None = None,
        wait_ready: Callable[[], Awaitable[None]] | None = None,
        metrics: HeldBacklogMetrics | None = None,
    ) -> None:
        """Hold at most *maxsize* events; *on_error* says which failures are outages (held)."""
        self._client = client
        self._handle = handle
        self.held: HeldQueue[tuple[str, bool]] = HeldQueue(
            "seats",
            self._apply,
            capacity=maxsize,
            on_error=on_error,
            wait_ready=wait_ready,
            metrics=metrics,
            log_context=lambda event: {"interface": event[0]},
        )

    @property
    def dropped(self) -> int:
        """Events lost because the hold was full."""
        return self.held.dropped

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
        if not self.held.put((interface, started)):
            # The reconciler and the next call event restore the seat state; count the loss.
            log.warning("seat_feed_overflow", interface=interface)

    async def _apply(self, event: tuple[str, bool]) -> None:
        await self._handle(*event)

    async def run(self) -> None:
        """Apply events in order until cancelled; an outage holds them, a bug skips one."""
        await self.held.run()
