"""In-house asyncio AMI client: login, ActionID correlation, heartbeat, reconnect, dispatch.

Design (see docs/adr/0002-in-house-ami-client.md): one socket reader that frames bytes and
resolves action futures; the event sink (the PBX coordinator, docs/adr/0020) gets the events
it names as one batch per socket read, inline and unparsed (:class:`EventFrame`); other
subscribers run on one ordered consumer task per connection fed through a bounded queue, so
slow or failing subscribers never block the socket or kill the connection; no automatic
replay of actions after a disconnect; login hooks (resync) run before ``synced``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.actions import AmiAction
from ccbridge.asterisk.ami.codec import (
    MAX_FRAME_BYTES,
    AmiMessage,
    EventFrame,
    FrameDecoder,
    encode_message,
    parse_frame,
    peek_event_name,
)
from ccbridge.asterisk.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiDisconnected,
    AmiError,
    AmiFenced,
    AmiNotConnected,
    AmiProtocolError,
    AmiRefused,
    AmiTimeout,
)

log = structlog.get_logger(__name__)

Subscriber = Callable[[AmiMessage], Awaitable[None] | None]
LoginHook = Callable[["AmiClient"], Awaitable[None]]
EventSink = Callable[[list[EventFrame]], None]
"""Takes the events of one socket read, in wire order, synchronously (the PBX coordinator)."""

_READ_SIZE = 64 * 1024
_BANNER_PREFIX = b"Asterisk Call Manager/"
_INTERNAL_EVENTS = frozenset({b"Shutdown", b"FullyBooted"})


@dataclass(frozen=True, kw_only=True)
class AmiConfig:
    """Connection, timing and back-off settings for one AMI session."""

    host: str
    port: int = 5038
    username: str
    secret: str
    auth: Literal["md5", "plain"] = "md5"
    connect_timeout: float = 5
    action_timeout: float = 10
    ping_interval: float = 5
    max_missed_pongs: int = 2
    """Unanswered pings in a row that drop the link: detected ≤ interval × (this + 1)."""
    backoff_initial: float = 0.5
    backoff_max: float = 30
    event_queue_size: int = 100_000
    events: str | None = None
    """Optional ``Events:`` mask sent at login (``None`` keeps the user's manager.conf default)."""
    max_frame: int = MAX_FRAME_BYTES


class ActionGate(Protocol):
    """Says whether this node may act on the PBX now (its ownership term, ADR 0026)."""

    def may_act(self) -> bool:
        """True while this node owns the PBX."""
        ...

    async def wait_owner(self) -> None:
        """Return once this node owns the PBX."""
        ...


ActionObserver = Callable[[str, float, str], None]
"""``(action name, seconds to the response, outcome)``; outcome is ok, error, timeout or
disconnected."""


@dataclass(frozen=True)
class AmiStatus:
    """A snapshot of connection health and ingest counters, for /health and metrics."""

    connected: bool
    logged_in: bool
    synced: bool
    reconnects: int
    last_event_at: float | None
    last_pong_rtt: float | None
    queue_depth: int
    events_received: int
    events_skipped: int
    frames_oversized: int
    last_error: str | None
    events_dropped: int = 0
    queue_lag: float = 0.0
    fully_booted: bool = False


def backoff_delay(
    attempt: int, initial: float, maximum: float, rand: Callable[[], float] = random.random
) -> float:
    """Jittered exponential back-off: base ``initial * 2**attempt`` capped, then 50-100 % of it."""
    base = min(maximum, initial * (2 ** min(attempt, 62)))
    return float(base * (0.5 + 0.5 * rand()))


@dataclass(slots=True)
class _Pending:
    """An action waiting for its response (and, for lists, its completion event)."""

    name: str
    future: asyncio.Future[AmiMessage]
    is_list: bool = False
    items: list[AmiMessage] = field(default_factory=list)
    response: AmiMessage | None = None
    done: asyncio.Future[None] | None = None
    listing: bool = False
    """True while counted in ``AmiClient._lists_pending``."""


class _Session:
    """Per-connection state: the socket, the framer, the event queue and the consumer."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        queue_size: int,
        max_frame: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(max_frame)
        self.queue: asyncio.Queue[tuple[float, AmiMessage] | None] = asyncio.Queue(queue_size)
        self.closed = False
        self.close_reason: str | None = None
        self.held: list[EventFrame] | None = None
        """The sink's events while the PBX awaits admission (``None``: passed straight on)."""


class AmiClient:
    """Asterisk Manager Interface client supervised by the caller's TaskGroup via :meth:`run`."""

    def __init__(
        self,
        config: AmiConfig,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tick: Callable[[float], Awaitable[None]] = asyncio.sleep,
        gate: ActionGate | None = None,
    ) -> None:
        """``sleep`` paces reconnects and ``tick`` the heartbeat (tests drive both by hand).

        With a ``gate`` (several nodes, one PBX) the client connects only while the gate says
        this node owns the PBX, and refuses to write any action, login and ping included,
        once it does not: the one place where actions leave the node is fenced.
        """
        self.config = config
        self.gate = gate
        self.actions_fenced = 0
        """Actions refused because this node did not own the PBX."""
        self._rand = rand
        self._sleep = sleep
        self._tick = tick
        self._ids = itertools.count(1)
        self._by_name: dict[str, list[Subscriber]] = {}
        self._catch_all: list[Subscriber] = []
        self._wanted: frozenset[bytes] = _INTERNAL_EVENTS
        self._hooks: list[LoginHook] = []
        self._admission: LoginHook | None = None
        self._sink: EventSink | None = None
        self._sink_names: dict[bytes, str] = {}
        self._pending: dict[str, _Pending] = {}
        self._lists_pending = 0
        self._session: _Session | None = None
        self._stopping = asyncio.Event()
        self._synced = asyncio.Event()
        self._logging_in = False
        # status
        self._connected = False
        self._logged_in = False
        self._fully_booted = False
        self._reconnects = 0
        self._last_event_at: float | None = None
        self._last_pong_rtt: float | None = None
        self._events_received = 0
        self._events_skipped = 0
        self._events_dropped = 0
        self._oversized_closed = 0
        self._queue_lag = 0.0
        self._last_error: str | None = None
        self._failing = False
        self.action_observer: ActionObserver | None = None
        """Told ``(action, seconds, outcome)`` after each action (the metrics hook)."""
        self._pbx_shutdown = False
        """The PBX announced an orderly shutdown: the outage that follows is expected."""

    # ------------------------------------------------------------------ public API

    def subscribe(self, event: str | None, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for ``event`` (``None``: every event); return an unsubscriber."""
        target = self._catch_all if event is None else self._by_name.setdefault(event, [])
        target.append(callback)
        self._rebuild_wanted()

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                target.remove(callback)
            self._rebuild_wanted()

        return unsubscribe

    def set_event_sink(self, names: Iterable[str], sink: EventSink) -> None:
        """Hand the events named in ``names`` to ``sink``, one batch per socket read, inline.

        No queue and no parsing: each event is an :class:`EventFrame` over its bytes. The sink
        runs on the reader, so it must only do synchronous, bounded work (it enqueues the
        rest); an exception in it is logged and the connection carries on.
        """
        if self._sink is not None:
            raise RuntimeError("the AMI client already has an event sink")
        self._sink = sink
        self._sink_names = {name.encode("utf-8"): name for name in names}

    def set_admission(self, check: LoginHook) -> None:
        """Run ``check(client)`` right after every login, before any event reaches the sink:
        the sink's events wait until it passes, and are dropped with the session when it
        raises :class:`AmiRefused` (a PBX this node must not drive, ADR 0033)."""
        if self._admission is not None:
            raise RuntimeError("the AMI client already has an admission check")
        self._admission = check

    def add_login_hook(self, hook: LoginHook) -> None:
        """Run ``hook(client)`` after every login, in order, before the client reports synced."""
        self._hooks.append(hook)

    @property
    def status(self) -> AmiStatus:
        """Return a snapshot of the connection state and counters."""
        session = self._session
        oversized = self._oversized_closed + (session.decoder.oversized if session else 0)
        return AmiStatus(
            connected=self._connected,
            logged_in=self._logged_in,
            synced=self._synced.is_set(),
            reconnects=self._reconnects,
            last_event_at=self._last_event_at,
            last_pong_rtt=self._last_pong_rtt,
            queue_depth=session.queue.qsize() if session else 0,
            events_received=self._events_received,
            events_skipped=self._events_skipped,
            frames_oversized=oversized,
            last_error=self._last_error,
            events_dropped=self._events_dropped,
            queue_lag=self._queue_lag,
            fully_booted=self._fully_booted,
        )

    async def wait_synced(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until logged in and every login hook has run; raises AmiTimeout on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            raise AmiTimeout(f"AMI not synced within {timeout} s") from None

    async def send_action(
        self,
        action: AmiAction | Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (public API, panoramisk-like)
    ) -> AmiMessage:
        """Send one action and return its response; never buffered, never replayed."""
        pending = self._submit(action, is_list=False)
        return await self._await_response(pending, timeout)

    async def send_list_action(
        self,
        action: AmiAction | Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (public API, panoramisk-like)
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        """Send an action answered by an ``EventList``; return the response and its items.

        The list ends at the event carrying ``EventList: Complete`` with our ActionID (that
        event itself is not among the items). A plain response without ``EventList: start``
        returns ``(response, [])``.
        """
        pending = self._submit(action, is_list=True)
        limit = self.config.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                response = await self._await_response(pending, None)
                if pending.done is not None:
                    await pending.done
        except TimeoutError:
            raise AmiTimeout(f"{pending.name} list not complete within {limit} s") from None
        finally:
            self._forget(pending)
        return response, pending.items

    async def run(self) -> None:
        """Connect, log in, resync and serve; reconnect with back-off until :meth:`stop`."""
        attempt = 0
        first = True
        while not self._stopping.is_set():
            if self.gate is not None and not self.gate.may_act():
                if not await self._wait_turn():
                    break
                attempt = 0
            if not first:
                self._reconnects += 1
            first = False
            synced = False
            try:
                synced = await self._serve_once()
            except AmiAuthError as exc:
                self._note_failure("ami_auth_failed", exc)
            except AmiRefused as exc:
                self._note_failure("ami_pbx_refused", exc)
            except (OSError, TimeoutError, AmiError, EOFError) as exc:
                self._note_failure("ami_connection_failed", exc)
            if self._stopping.is_set():
                break
            if synced:
                attempt = 0
            delay = backoff_delay(
                attempt, self.config.backoff_initial, self.config.backoff_max, self._rand
            )
            attempt += 1
            await self._pause(delay)
        log.info("ami_stopped", host=self.config.host)

    def drop(self, reason: str) -> None:
        """Close the connection now (this node lost the PBX); :meth:`run` waits for the next
        term before it connects again."""
        session = self._session
        if session is not None and not session.closed:
            session.close_reason = reason
            self._logged_in = False
            self._synced.clear()
            self._abort(session)

    async def stop(self) -> None:
        """Log off if possible, close the socket and make :meth:`run` return."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._logged_in:
            with contextlib.suppress(AmiError, OSError):
                await self.send_action(act.logoff(), timeout=min(1.0, self.config.action_timeout))
        self._close_session()

    # ------------------------------------------------------------------ connection loop

    async def _serve_once(self) -> bool:
        """Run one connection to its end; return True if it reached ``synced``."""
        cfg = self.config
        async with asyncio.timeout(cfg.connect_timeout):
            reader, writer = await asyncio.open_connection(cfg.host, cfg.port, limit=_READ_SIZE)
            try:
                banner = await reader.readline()
            except BaseException:
                writer.transport.abort()
                raise
        if not banner.startswith(_BANNER_PREFIX):
            writer.transport.abort()
            raise AmiProtocolError(f"not an AMI banner: {banner[:60]!r}")
        session = _Session(reader, writer, cfg.event_queue_size, cfg.max_frame)
        if self._admission is not None:
            session.held = []
        self._session = session
        self._connected = True
        self._fully_booted = False
        consumer = asyncio.create_task(self._consume(session), name="ami-consumer")
        read_task = asyncio.create_task(self._read_loop(session), name="ami-reader")
        heartbeat: asyncio.Task[None] | None = None
        synced = False
        try:
            await self._race(self._login(), read_task)
            self._logged_in = True
            if self._admission is not None:
                await self._run_hook(self._admission, read_task)
                held, session.held = session.held, None
                if held:
                    self._to_sink(held)
            for hook in self._hooks:
                await self._run_hook(hook, read_task)
            self._synced.set()
            synced = True
            self._pbx_shutdown = False
            if self._failing:
                log.info("ami_recovered", host=cfg.host, reconnects=self._reconnects)
                self._failing = False
            else:
                log.info("ami_synced", host=cfg.host)
            self._last_error = None
            heartbeat = asyncio.create_task(self._heartbeat(session), name="ami-heartbeat")
            await read_task
            if not self._stopping.is_set():
                raise AmiDisconnected(session.close_reason or "AMI connection closed by peer")
        finally:
            self._teardown(session)
            for task in (read_task, heartbeat):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(BaseException):
                await read_task
            if heartbeat is not None:
                with contextlib.suppress(BaseException):
                    await heartbeat
            await self._drain_consumer(session, consumer)
        return synced

    async def _race(self, coro: Awaitable[None], read_task: asyncio.Task[None]) -> None:
        """Await ``coro`` but give up with AmiDisconnected as soon as the reader ends."""
        work = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({work, read_task}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            work.result()
            return
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
        if not read_task.cancelled() and read_task.exception() is not None:
            raise AmiDisconnected(f"AMI connection lost: {read_task.exception()!r}")
        raise AmiDisconnected("AMI connection closed during login")

    async def _run_hook(self, hook: LoginHook, read_task: asyncio.Task[None]) -> None:
        """Run one login hook; a failing hook means state is unknown, so reconnect."""
        try:
            await self._race(hook(self), read_task)
        except AmiError:
            raise
        except Exception as exc:
            log.exception("ami_login_hook_failed", hook=getattr(hook, "__qualname__", repr(hook)))
            raise AmiError(f"login hook failed: {exc!r}") from exc

    async def _login(self) -> None:
        """Authenticate with MD5 challenge/response or a plaintext secret."""
        cfg = self.config
        self._logging_in = True
        try:
            if cfg.auth == "md5":
                resp = await self._request(act.challenge("MD5"))
                nonce = resp.get("Challenge")
                if not nonce:
                    raise AmiProtocolError("MD5 challenge answer has no Challenge header")
                login = act.login_md5(cfg.username, act.md5_key(nonce, cfg.secret), cfg.events)
            else:
                login = act.login_plain(cfg.username, cfg.secret, cfg.events)
            await self._request(login)
        except AmiActionError as exc:
            raise AmiAuthError(exc.message) from None
        finally:
            self._logging_in = False

    async def _request(self, action: AmiAction) -> AmiMessage:
        """Send a login-phase action (allowed before ``logged_in``)."""
        pending = self._submit(action, is_list=False, internal=True)
        return await self._await_response(pending, None)

    async def _heartbeat(self, session: _Session) -> None:
        """Ping at every tick; a ping still unanswered at the next tick is a missed pong.

        After ``max_missed_pongs`` misses in a row the socket is dropped, so a half-open link
        is detected at most ``ping_interval * (max_missed_pongs + 1)`` after its last pong
        (15 s with the defaults). No wait for a pong ever delays the next ping.
        """
        cfg = self.config
        missed = 0
        ping: _Pending | None = None
        try:
            while True:
                await self._tick(cfg.ping_interval)
                if session.closed:
                    return
                if ping is not None:
                    self._forget(ping)
                    if ping.future.done():
                        missed = 0
                    else:
                        missed += 1
                        log.warning("ami_pong_missed", missed=missed, host=cfg.host)
                        if missed >= cfg.max_missed_pongs:
                            session.close_reason = f"{missed} pongs missed (half-open connection?)"
                            log.warning("ami_heartbeat_lost", missed=missed, host=cfg.host)
                            self._abort(session)
                            return
                ping = self._send_ping()
        except AmiError:
            return  # not logged in any more: the connection loop handles it
        finally:
            if ping is not None:
                self._forget(ping)

    def _send_ping(self) -> _Pending:
        """Send one Ping without waiting; its answer records the round-trip time."""
        pending = self._submit(act.ping(), is_list=False)
        sent = time.monotonic()

        def pong(future: asyncio.Future[AmiMessage]) -> None:
            if not future.cancelled() and future.exception() is None:
                self._last_pong_rtt = time.monotonic() - sent

        pending.future.add_done_callback(pong)
        return pending

    async def _read_loop(self, session: _Session) -> None:
        """Read socket chunks until EOF; frames are handled inline, events queued."""
        read = session.reader.read
        ingest = self._ingest
        while True:
            data = await read(_READ_SIZE)
            if not data:
                return
            ingest(session, data)

    # ------------------------------------------------------------------ hot path

    def _ingest(self, session: _Session, data: bytes) -> None:
        """Frame ``data``; resolve responses; batch the sink's events, queue subscribers'
        events, skip the rest unparsed; then hand the batch to the sink."""
        frames = session.decoder.feed(data)
        if not frames:
            return
        wanted = self._wanted
        sink_names = self._sink_names
        catch_all = bool(self._catch_all)
        now = time.monotonic()
        self._last_event_at = now
        put = session.queue.put_nowait
        batch: list[EventFrame] = []
        received = skipped = 0
        try:
            for frame in frames:
                name = peek_event_name(frame)
                if name is None:
                    self._on_non_event(parse_frame(frame))
                    continue
                received += 1
                msg: AmiMessage | None = None
                if self._lists_pending and b"ActionID:" in frame:
                    msg = parse_frame(frame)
                    if self._on_list_item(msg):
                        continue
                text = sink_names.get(name)
                if text is not None:
                    batch.append(EventFrame(frame, text))
                if catch_all or name in wanted:
                    if msg is None:
                        msg = parse_frame(frame)
                    if name in _INTERNAL_EVENTS:
                        self._on_internal_event(session, name, msg)
                    try:
                        put((now, msg))
                    except asyncio.QueueFull:
                        self._on_queue_full(session)
                        return
                elif text is None:
                    skipped += 1
        finally:
            self._events_received += received
            self._events_skipped += skipped
            if batch:
                self._hold_or_sink(session, batch)

    def _hold_or_sink(self, session: _Session, batch: list[EventFrame]) -> None:
        """Hand ``batch`` to the sink, or keep it while the PBX awaits admission (bounded
        like the event queue: a PBX that floods the check is dropped and resynced)."""
        held = session.held
        if held is None:
            self._to_sink(batch)
        elif len(held) + len(batch) > self.config.event_queue_size:
            self._on_queue_full(session)
        else:
            held.extend(batch)

    def _to_sink(self, batch: list[EventFrame]) -> None:
        """Run the sink on one read's events; its failure is logged, the stream goes on."""
        sink = self._sink
        if sink is None:
            return
        try:
            sink(batch)
        except Exception:
            log.exception("ami_event_sink_failed", events=len(batch))

    def _on_non_event(self, msg: AmiMessage) -> None:
        """Resolve the pending action this response answers (unknown ones are ignored)."""
        aid = msg.action_id
        pending = self._pending.get(aid) if aid else None
        if pending is None or pending.future.done():
            return
        pending.response = msg
        pending.future.set_result(msg)
        if (
            pending.is_list
            and msg.response == "Success"
            and (msg.get("EventList") or "").lower() == "start"
        ):
            pending.done = asyncio.get_running_loop().create_future()
            pending.listing = True
            self._lists_pending += 1

    def _on_list_item(self, msg: AmiMessage) -> bool:
        """Collect an event belonging to a pending list action; return True if consumed."""
        aid = msg.action_id
        pending = self._pending.get(aid) if aid else None
        if pending is None or not pending.is_list:
            return False
        if (msg.get("EventList") or "").lower() == "complete":
            if pending.listing:
                pending.listing = False
                self._lists_pending -= 1
            if pending.done is not None and not pending.done.done():
                pending.done.set_result(None)
        else:
            pending.items.append(msg)
        return True

    def _on_internal_event(self, session: _Session, name: bytes, msg: AmiMessage) -> None:
        """Note FullyBooted; on Shutdown expect the close and drop the socket ourselves."""
        if name == b"FullyBooted":
            self._fully_booted = True
            log.info("ami_fully_booted", host=self.config.host)
        elif name == b"Shutdown":
            self._pbx_shutdown = True
            log.info(
                "ami_pbx_shutdown",
                shutdown=msg.get("Shutdown"),
                restart=msg.get("Restart"),
                host=self.config.host,
            )
            session.close_reason = "PBX shutdown"
            self._logged_in = False
            self._synced.clear()
            asyncio.get_running_loop().call_soon(self._abort, session)

    def _on_queue_full(self, session: _Session) -> None:
        """The consumer is too far behind: events were lost, so reconnect and resync."""
        self._events_dropped += 1
        session.close_reason = "event queue full: events lost, resyncing"
        log.error("ami_event_queue_full", depth=session.queue.qsize(), host=self.config.host)
        self._abort(session)

    async def _consume(self, session: _Session) -> None:
        """Deliver queued events in order; isolate and log every subscriber failure."""
        queue = session.queue
        dispatch = self._dispatch
        while True:
            item = await queue.get()
            while True:
                if item is None:
                    return
                enqueued, msg = item
                await dispatch(msg)
                if queue.empty():
                    self._queue_lag = time.monotonic() - enqueued
                    break
                item = queue.get_nowait()

    async def _dispatch(self, msg: AmiMessage) -> None:
        """Call the subscribers of ``msg.event`` then the catch-all ones, awaiting async ones."""
        name = msg.event or ""
        specific = self._by_name.get(name)
        for callbacks in (specific, self._catch_all):
            if not callbacks:
                continue
            for callback in tuple(callbacks):
                try:
                    result = callback(msg)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception(
                        "ami_subscriber_failed",
                        ami_event=name,
                        callback=getattr(callback, "__qualname__", repr(callback)),
                    )

    # ------------------------------------------------------------------ helpers

    def _submit(
        self, action: AmiAction | Mapping[str, str], *, is_list: bool, internal: bool = False
    ) -> _Pending:
        """Validate, encode and write one action; register it for correlation."""
        if not isinstance(action, AmiAction):
            action = AmiAction.from_mapping(action)
        action_id = f"ccb-{next(self._ids)}"
        data = encode_message(action.pairs(action_id))  # validates before any write
        gate = self.gate
        if gate is not None and not gate.may_act():
            self.actions_fenced += 1
            raise AmiFenced(f"this node does not own the PBX; {action.name} not sent")
        session = self._session
        allowed = self._logged_in or (internal and self._logging_in)
        if session is None or session.closed or not allowed:
            raise AmiNotConnected(f"AMI not logged in; {action.name} not sent")
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        pending = _Pending(action.name, future, is_list=is_list)
        self._pending[action_id] = pending
        session.writer.write(data)
        return pending

    async def _await_response(self, pending: _Pending, wait: float | None) -> AmiMessage:
        """Wait for the response of ``pending``; map Error, timeout and disconnect."""
        limit = self.config.action_timeout if wait is None else wait
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                msg = await pending.future
        except TimeoutError:
            self._forget(pending)
            self._observe(pending, started, "timeout")
            raise AmiTimeout(f"{pending.name} got no response within {limit} s") from None
        except BaseException:
            self._forget(pending)
            self._observe(pending, started, "disconnected")
            raise
        if msg.response == "Error":
            self._forget(pending)
            self._observe(pending, started, "error")
            raise AmiActionError(msg.get("Message") or "", pending.name)
        if not pending.is_list:
            self._forget(pending)
        self._observe(pending, started, "ok")
        return msg

    def _observe(self, pending: _Pending, started: float, outcome: str) -> None:
        """Tell the action observer how long ``pending`` took and how it ended."""
        if self.action_observer is not None:
            self.action_observer(pending.name, time.monotonic() - started, outcome)

    def _forget(self, pending: _Pending) -> None:
        """Drop ``pending`` from the correlation table."""
        for aid, item in list(self._pending.items()):
            if item is pending:
                del self._pending[aid]
                if pending.listing:
                    pending.listing = False
                    self._lists_pending -= 1
                if pending.done is not None and not pending.done.done():
                    pending.done.cancel()
                break

    def _teardown(self, session: _Session) -> None:
        """Mark the session dead and fail every in-flight action with AmiDisconnected."""
        session.closed = True
        self._connected = False
        self._logged_in = False
        if session.close_reason and not self._stopping.is_set():
            # In the same step as logged_in, so a status read never sees "down, no reason".
            self._last_error = f"{AmiDisconnected.__name__}: {session.close_reason}"
        self._synced.clear()
        self._abort(session)
        for pending in list(self._pending.values()):
            exc = AmiDisconnected(f"{pending.name}: AMI connection lost; not replayed")
            if not pending.future.done():
                pending.future.set_exception(exc)
            elif pending.done is not None and not pending.done.done():
                pending.done.set_exception(exc)
        self._pending.clear()
        self._lists_pending = 0
        self._oversized_closed += session.decoder.oversized
        session.decoder.oversized = 0

    async def _drain_consumer(self, session: _Session, consumer: asyncio.Task[None]) -> None:
        """Let the consumer finish the events already received, then end it."""
        try:
            session.queue.put_nowait(None)
        except asyncio.QueueFull:
            consumer.cancel()
        if self._stopping.is_set():
            consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                async with asyncio.timeout(self.config.action_timeout):
                    await asyncio.shield(consumer)
            except TimeoutError:
                consumer.cancel()
                log.error("ami_consumer_stuck", depth=session.queue.qsize())
        if self._session is session:
            self._session = None

    def _abort(self, session: _Session) -> None:
        """Close the socket at once (RST-style abort; no graceful wait on a dead peer)."""
        transport = session.writer.transport
        if not transport.is_closing():
            transport.abort()

    def _close_session(self) -> None:
        """Close the current socket, if any."""
        if self._session is not None:
            self._abort(self._session)

    def _note_failure(self, event: str, exc: BaseException) -> None:
        """Log a failure once per outage (repeats go to debug) and keep it in the status.

        After the PBX announced an orderly shutdown (``Shutdown`` event: ``core restart``),
        the lost connection is expected and logged as a warning, not an error.
        """
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._connected = False
        if self._failing:
            log.debug(event, error=self._last_error, host=self.config.host)
        elif self._pbx_shutdown:
            self._failing = True
            log.warning(event, error=self._last_error, host=self.config.host, expected=True)
        else:
            self._failing = True
            log.error(event, error=self._last_error, host=self.config.host)

    async def _wait_turn(self) -> bool:
        """Wait until the gate says this node owns the PBX; False if :meth:`stop` came first."""
        assert self.gate is not None
        log.info("ami_waiting_for_ownership", host=self.config.host)
        await self._unless_stopped(self.gate.wait_owner())
        return not self._stopping.is_set()

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` (through the injectable sleep) unless :meth:`stop` comes first."""
        await self._unless_stopped(self._sleep(delay))

    async def _unless_stopped(self, waiting: Awaitable[None]) -> None:
        """Await ``waiting`` until it or :meth:`stop` comes first; cancel what is left."""
        work = asyncio.ensure_future(waiting)
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, stopper):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _rebuild_wanted(self) -> None:
        """Recompute the byte names the reader must parse (others are skipped unparsed)."""
        names = {name.encode("utf-8") for name, subs in self._by_name.items() if subs}
        self._wanted = frozenset(names) | _INTERNAL_EVENTS
