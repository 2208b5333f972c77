"""The PBX coordinator: the one owner of the AMI event stream and of the login sequence.

Modelled on Home Assistant's ``DataUpdateCoordinator`` (docs/adr/0020-pbx-coordinator.md):
one object owns the external state's feed, combining push updates (AMI events) with a
reconciliation after every login. It is the client's only event sink, so every frame is
framed once and read lazily from its bytes (:class:`EventFrame`), and each socket read's
events go to the handlers in one fixed order with plain synchronous calls:

1. **calls** (the call tracker): first, so every later handler sees the call as it is now;
2. **seats** (agent call starts and ends);
3. **recordings** (start on answer, finalise on hang-up).

A handler must not await: what needs I/O (database writes, AMI actions) it enqueues for its
own writer task. After each login the coordinator runs, in order: the calls resync
(``CoreShowChannels``/``QueueStatus``, gap backfill, reconcile), then the login steps added
with :meth:`add_login_step` (queue config, seat restore, PBX config check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol

import structlog

from ccbridge.asterisk.ami.codec import AmiFields, EventFrame

if TYPE_CHECKING:
    from ccbridge.asterisk.ami.client import AmiClient

log = structlog.get_logger(__name__)

LoginStep = Callable[["AmiClient"], Awaitable[None]]


class EventHandler(Protocol):
    """A consumer of PBX events: the names it reads and a synchronous batch entry point."""

    @property
    def events(self) -> Collection[str]:
        """The AMI event names this handler reads."""
        ...

    def on_events(self, frames: Sequence[AmiFields]) -> None:
        """Apply one socket read's events, in wire order, without awaiting."""
        ...


class CallHandler(EventHandler, Protocol):
    """The calls handler also rebuilds live calls from a PBX snapshot after a login."""

    async def resync(self, client: AmiClient) -> None:
        """Ask the PBX what is live and reconcile the tracker with it."""
        ...


class PbxCoordinator:
    """Own the AMI subscriptions and the login sequence; call the handlers in a fixed order."""

    def __init__(
        self,
        client: AmiClient,
        *,
        calls: CallHandler | None = None,
        seats: EventHandler | None = None,
        recordings: EventHandler | None = None,
    ) -> None:
        self._client = client
        self.calls = calls
        self.seats = seats
        self.recordings = recordings
        self._steps: list[LoginStep] = []
        self._handlers: tuple[EventHandler, ...] = ()
        self._routes: dict[str, tuple[int, ...]] = {}
        self.batches = 0
        self.events = 0
        self.failures = 0

    def add_login_step(self, step: LoginStep) -> None:
        """Run ``step`` after every login, after the calls resync and the steps added before."""
        self._steps.append(step)

    def attach(self) -> None:
        """Become the client's event sink and its login hook (call once, after wiring)."""
        self._handlers = tuple(
            h for h in (self.calls, self.seats, self.recordings) if h is not None
        )
        routes: dict[str, list[int]] = {}
        for index, handler in enumerate(self._handlers):
            for name in handler.events:
                routes.setdefault(name, []).append(index)
        self._routes = {name: tuple(indexes) for name, indexes in routes.items()}
        self._client.set_event_sink(self._routes, self.on_events)
        self._client.add_login_hook(self.login)

    @property
    def event_names(self) -> frozenset[str]:
        """Every AMI event some handler reads (the rest are skipped unparsed)."""
        return frozenset(self._routes)

    def on_events(self, frames: Sequence[EventFrame]) -> None:
        """Split one read's events per handler (keeping wire order) and call each in turn."""
        self.batches += 1
        self.events += len(frames)
        handlers = self._handlers
        if len(handlers) == 1:
            self._call(handlers[0], frames)
            return
        routes = self._routes
        per: list[list[EventFrame]] = [[] for _ in handlers]
        for frame in frames:
            for index in routes.get(frame.name, ()):
                per[index].append(frame)
        for handler, mine in zip(handlers, per, strict=True):
            if mine:
                self._call(handler, mine)

    def _call(self, handler: EventHandler, frames: Sequence[EventFrame]) -> None:
        """A handler's failure is logged; the next handler and the next read still run."""
        try:
            handler.on_events(frames)
        except Exception:
            self.failures += 1
            log.exception("pbx_handler_failed", handler=type(handler).__name__)

    async def login(self, client: AmiClient) -> None:
        """The login sequence: calls resync, then every added step, in order."""
        if self.calls is not None:
            await self.calls.resync(client)
        for step in self._steps:
            await step(client)
