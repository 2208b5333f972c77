"""Tell seats when their agent answers or finishes a queue call (AgentConnect/AgentComplete).

The coordinator's seats handler only enqueues; a separate task applies the events to the seat
service, so a slow database never holds up the AMI stream (Asterisk drops a slow reader).
While the database is away the events are held in order and applied when it returns
(``resilience.held``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from ccbridge.asterisk.ami.codec import AmiFields
from ccbridge.observability.metrics import HeldBacklogMetrics
from ccbridge.resilience.held import ErrorReport, HeldQueue

log = structlog.get_logger(__name__)

CallEventHandler = Callable[[str, bool], Awaitable[None]]
"""``(member interface, started)``: the seat service's ``call_event``."""


class AmiSeatFeed:
    """The coordinator's seats handler: queue member call starts and ends from AMI, applied
    in order by :meth:`run`."""

    events = frozenset({"AgentConnect", "AgentComplete"})

    def __init__(
        self,
        handle: CallEventHandler,
        maxsize: int = 10_000,
        *,
        on_error: ErrorReport | None = None,
        wait_ready: Callable[[], Awaitable[None]] | None = None,
        metrics: HeldBacklogMetrics | None = None,
    ) -> None:
        """Hold at most *maxsize* events; *on_error* says which failures are outages (held)."""
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

    def on_events(self, frames: Sequence[AmiFields]) -> None:
        """Enqueue each member's call start (AgentConnect) or end (AgentComplete)."""
        for frame in frames:
            interface = frame.get("Interface")
            if not interface:
                continue
            if not self.held.put((interface, frame.event == "AgentConnect")):
                # The reconciler and the next call event restore the seat state; count it.
                log.warning("seat_feed_overflow", interface=interface)

    async def _apply(self, event: tuple[str, bool]) -> None:
        await self._handle(*event)

    async def run(self) -> None:
        """Apply events in order until cancelled; an outage holds them, a bug skips one."""
        await self.held.run()
