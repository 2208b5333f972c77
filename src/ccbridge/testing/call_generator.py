"""CallSimulator: inbound queue calls with the event sequences a real Asterisk 22 emits.

Drives PbxModel through FakeAmiServer so ``ccbridge serve --simulate-pbx`` and tests see
real-looking traffic: trunk caller, FastAGI IVR, queue join, agent ring/answer, bridge,
hangup, abandon. Sequences follow tests/fixtures/asterisk-captures.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import structlog

from ccbridge.asterisk.agi.server import DONE_VARIABLE
from ccbridge.testing import ami_frames as af
from ccbridge.testing.fake_agi import AgiCall, AgiResult, FakeAgiClient
from ccbridge.testing.fake_ami import FakeAmiServer
from ccbridge.testing.fake_mixmonitor import TAKE_FORMAT, first_free_take
from ccbridge.testing.pbx_model import (
    STATE_RING,
    STATE_UP,
    UNKNOWN,
    Channel,
    Queue,
    QueueEntry,
    QueueMember,
)
from ccbridge.testing.pbx_records import CdrLine

log = structlog.get_logger(__name__)

MOBILE_PREFIXES = ("138", "139", "136", "135", "150", "158", "186", "188", "177", "199")
CALLER_NAMES = ("张三", "李四", "王芳", "赵磊", "陈静", "刘洋", "周婷", "吴强")


@dataclass(slots=True, frozen=True)
class DidRoute:
    """Where a dialled number goes: the tenant and its default queue."""

    tenant: str
    queue: str


@dataclass(slots=True)
class SimulatorConfig:
    """Knobs of the simulated traffic; times are PBX seconds (scaled by ``time_scale``)."""

    dids: dict[str, DidRoute] = field(default_factory=dict)
    agi_url: str | None = None
    """FastAGI node(s): ``agi://host:port[/script]``, several joined by ``&`` (tried in order,
    as the shipped dialplan's ``CCB_FASTAGI_HOSTS``)."""
    agi_script: str = "ivr"
    trunk: str = "trunk"
    context: str = "from-trunk"
    talk_seconds: tuple[float, float] = (20.0, 90.0)
    ring_seconds: tuple[float, float] = (1.0, 4.0)
    abandon_probability: float = 0.1
    patience_seconds: tuple[float, float] = (5.0, 40.0)
    agent_hangup_probability: float = 0.3
    queue_timeout: float = 120.0
    member_ring_timeout: float = 15.0
    retry_seconds: float = 2.0
    dialplan_noise: bool = False
    time_scale: float = 1.0
    poll_interval: float = 0.01
    """Real seconds between checks of a waiting caller."""


@dataclass(slots=True)
class CallOutcome:
    """How one simulated call ended."""

    linkedid: str
    tenant: str
    did: str
    queue: str | None = None
    answered: bool = False
    abandoned: bool = False
    timed_out: bool = False
    hung_up_in_ivr: bool = False
    redirected: bool = False
    member: str | None = None
    hold_seconds: int = 0
    talk_seconds: int = 0
    reason: str = ""
    agi: AgiResult | None = None


@dataclass(slots=True)
class CallHandle:
    """A placed call: its ids now, its outcome when awaited."""

    linkedid: str
    channel: str
    task: asyncio.Task[CallOutcome]

    def __await__(self) -> Generator[Any, None, CallOutcome]:
        """Await the call's end."""
        return self.task.__await__()


class _CallerGone(Exception):
    """The caller channel disappeared (hung up over AMI) mid-call."""


class CallSimulator:
    """Places inbound calls and walks each through IVR, queue and agent like Asterisk does."""

    def __init__(
        self, server: FakeAmiServer, config: SimulatorConfig, seed: int | None = None
    ) -> None:
        self.server = server
        self.model = server.model
        self.config = config
        self.rng = random.Random(seed)
        self.calls: dict[str, CallHandle] = {}
        self.outcomes: list[CallOutcome] = []
        self._answered: dict[str, tuple[float, str]] = {}
        """Caller uniqueid → (answer time, agent channel), for the call's CDR row."""
        self._talking: dict[str, tuple[str, str, int, float, int]] = {}
        """Caller uniqueid → (queue, member, hold, talk start, position) of the queue
        conversation it is in now (a blind transfer ends it)."""
        self._sticky: dict[str, tuple[str, str, float]] = {}
        """Caller uniqueid → (agent, interface, answer time) of an owner who took the sticky
        ring, for the ``h`` extension's ``CCBSTICKY`` line."""
        self._requeued: dict[str, asyncio.Task[None]] = {}
        """Caller uniqueid → its latest queue run after a transfer back into a queue: that
        ``Queue()`` logs its ``COMPLETE*`` line before the ``h`` extension runs."""
        self._traffic: asyncio.Task[None] | None = None
        server.call_control.requeue = self.requeue
        server.call_control.on_blind_transfer = self._blind_transferred
        server.call_control.ivr_return = self.ivr_return
        self.ivr_returns: list[AgiResult | None] = []
        """What each hand-back to the IVR (``ivr-return``) ran, in order."""

    def ivr_return(self, ch: Channel, dtmf: str | list[str] = "") -> None:
        """The caller was handed back to the IVR (``ccbridge-ivr-return``): run FastAGI
        ``ivr-return`` as the shipped dialplan does, then dial ``CCB_RETURN_TO`` (back to the
        agent) or follow the flow's route."""

        async def run() -> None:
            result = None
            if self.config.agi_url and self._alive(ch):
                result = await self._run_agi(
                    ch, ch.variables.get("CCB_DID", ""), dtmf, "ivr-return"
                )
            self.ivr_returns.append(result)
            if not self._alive(ch):
                return
            back = ch.variables.get("CCB_RETURN_TO", "")
            route = ch.variables.get("CCB_ROUTE", "")
            if back.startswith("Local/") and "@" in back:
                exten, _, context = back.removeprefix("Local/").partition("@")
                self.server.call_control.originate_into_dialplan(ch, context, exten)
            elif route == "queue" and ch.variables.get("CCB_QUEUE"):
                self.requeue(ch, ch.variables["CCB_QUEUE"])
            else:
                self._end_caller(ch, request=True)

        self.server.spawn(run())

    def requeue(self, ch: Channel, queue_name: str, talk_seconds: float = 600.0) -> None:
        """A caller transferred into a queue again (``ccbridge-queue``): it waits there and is
        answered like any queued caller."""
        queue = self.model.queues.get(queue_name)
        if queue is None:
            log.warning("simulator.no_queue", queue=queue_name)
            return
        outcome = CallOutcome(linkedid=ch.linkedid, tenant="", did=ch.exten)
        outcome.queue = queue.name
        self._next_take(ch)

        async def run() -> None:
            with contextlib.suppress(_CallerGone):
                await self._queue_call(ch, queue, outcome, talk_seconds, None, None)

        self._requeued[ch.uniqueid] = self.server.spawn(run())

    async def _after_requeues(self, ch: Channel) -> None:
        """Wait for the caller's queue runs after transfers: Asterisk runs the ``h`` extension
        only once the ``Queue()`` the caller was in has returned and logged its line."""
        while True:
            task = self._requeued.get(ch.uniqueid)
            if task is None or task.done() or task is asyncio.current_task():
                return
            await asyncio.wait({task})

    # ----------------------------------------------------------------- public API

    async def place_call(
        self,
        caller: str | None = None,
        *,
        caller_name: str | None = None,
        did: str | None = None,
        queue: str | None = None,
        talk_seconds: float | None = None,
        abandon_after: float | None = None,
        dtmf: str | list[str] = "",
        agent_hangs_up: bool | None = None,
    ) -> CallHandle:
        """Start one inbound call now; returns at once with the linkedid."""
        cfg = self.config
        if did is None:
            did = self.rng.choice(sorted(cfg.dids)) if cfg.dids else "4008001234"
        route = cfg.dids.get(did)
        num = caller or self.random_mobile()
        name = caller_name if caller_name is not None else self.random_name()
        tech = "PJSIP"
        ch = self.model.new_channel(
            f"{tech}/{cfg.trunk}-{self.model.ids.suffix(tech)}",
            state=STATE_RING,
            context=cfg.context,
            exten=did,
            caller_num=num,
            caller_name=name,
        )
        self.server.emit_channel("Newchannel", ch)
        tenant = route.tenant if route else ""
        outcome = CallOutcome(linkedid=ch.linkedid, tenant=tenant, did=did)
        task = asyncio.get_running_loop().create_task(
            self._run(ch, outcome, route, queue, talk_seconds, abandon_after, dtmf, agent_hangs_up)
        )
        handle = CallHandle(linkedid=ch.linkedid, channel=ch.name, task=task)
        self.calls[ch.linkedid] = handle
        task.add_done_callback(lambda _t: self.calls.pop(ch.linkedid, None))
        log.info("simulator.call_placed", linkedid=ch.linkedid, did=did, caller=num)
        return handle

    def start_traffic(self, rate_per_min: float = 6.0) -> None:
        """Place calls at random (Poisson) times at ``rate_per_min`` until stopped."""
        if self._traffic is not None and not self._traffic.done():
            return
        self._traffic = asyncio.get_running_loop().create_task(self._traffic_loop(rate_per_min))

    async def stop_traffic(self) -> None:
        """Stop placing new calls (calls in progress go on)."""
        if self._traffic is not None:
            self._traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._traffic
            self._traffic = None

    async def stop(self) -> None:
        """Stop traffic and abandon every call task."""
        await self.stop_traffic()
        tasks = [h.task for h in self.calls.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def random_mobile(self) -> str:
        """A plausible mainland China mobile number."""
        return self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def random_name(self) -> str:
        """A Chinese caller name, or ``<unknown>`` as for callers with no display name."""
        return self.rng.choice(CALLER_NAMES) if self.rng.random() < 0.5 else UNKNOWN

    # ----------------------------------------------------------------- helpers

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds * self.config.time_scale))

    def _now(self) -> float:
        return self.server.clock()

    def _alive(self, ch: Channel) -> bool:
        return self.model.find_channel(ch.name) is ch

    async def _hold(
        self, ch: Channel, seconds: float, until: Callable[[], bool] | None = None
    ) -> None:
        """Sleep PBX seconds (or *until* it says stop), raising _CallerGone if the caller is
        hung up meanwhile."""
        loop = asyncio.get_running_loop()
        end = loop.time() + max(0.0, seconds * self.config.time_scale)
        while True:
            if not self._alive(ch):
                raise _CallerGone
            left = end - loop.time()
            if left <= 0 or (until is not None and until()):
                return
            await asyncio.sleep(min(left, max(self.config.poll_interval, 0.001)))

    def _noise(self, ch: Channel, app: str, data: str) -> None:
        if self.config.dialplan_noise:
            self.server.emit_channel(
                "Newexten", ch, [("Extension", ch.exten), ("Application", app), ("AppData", data)]
            )

    async def _traffic_loop(self, rate_per_min: float) -> None:
        cfg = self.config
        while True:
            await self._sleep(self.rng.expovariate(max(rate_per_min, 0.001) / 60.0))
            abandon = None
            if self.rng.random() < cfg.abandon_probability:
                abandon = self.rng.uniform(*cfg.patience_seconds)
            try:
                await self.place_call(abandon_after=abandon)
            except Exception:  # a broken call must not stop the demo traffic
                log.exception("simulator.place_call_failed")

    # ----------------------------------------------------------------- call flow

    async def _run(
        self,
        ch: Channel,
        outcome: CallOutcome,
        route: DidRoute | None,
        queue_name: str | None,
        talk_seconds: float | None,
        abandon_after: float | None,
        dtmf: str | list[str],
        agent_hangs_up: bool | None,
    ) -> CallOutcome:
        server, cfg = self.server, self.config
        try:
            if cfg.dialplan_noise:
                server.set_var(ch, "SIPDOMAIN", "127.0.0.1")
                self._noise(ch, "NoOp", f'Inbound {ch.exten} from "{ch.caller_name}"')
            server.set_var(ch, "CCB_DID", outcome.did)
            server.set_var(ch, "CCB_TENANT", outcome.tenant)
            self._noise(ch, "Answer", "")
            ch.state, ch.priority = STATE_UP, 2
            server.emit_channel("Newstate", ch)
            ch.priority = 3
            if cfg.agi_url:
                outcome.agi = await self._run_agi(ch, outcome.did, dtmf)
                if outcome.agi is not None and outcome.agi.hung_up:
                    outcome.hung_up_in_ivr = True
                    self._end_caller(ch, request=True)
                    return self._done(outcome, ch)
            target = ch.variables.get("CCB_QUEUE") or queue_name or (route.queue if route else "")
            queue = self.model.queues.get(target)
            self._qlog(ch, target if queue else "", "", "CCBCALL", *self._identity(ch))
            if queue is None:
                log.warning("simulator.no_queue", did=outcome.did, queue=target)
                await self._hold(ch, 1.0)
                self._end_caller(ch, request=True)
                return self._done(outcome, ch)
            outcome.queue = queue.name
            if await self._sticky_ring(ch, outcome, talk_seconds, agent_hangs_up):
                return self._done(outcome, ch)
            await self._queue_call(ch, queue, outcome, talk_seconds, abandon_after, agent_hangs_up)
        except _CallerGone:
            outcome.reason = outcome.reason or "caller-hangup"
        return self._done(outcome, ch)

    async def _sticky_ring(
        self,
        ch: Channel,
        outcome: CallOutcome,
        talk_seconds: float | None,
        agent_hangs_up: bool | None,
    ) -> bool:
        """``[ccbridge-route]``'s owner ring before the queue, as the shipped dialplan does it:
        ``Set(__CCB_STICKY_*)``, ``Dial(<interface>,<seconds>)``; answered, the call is talked
        out here (no queue, no ``AgentConnect``); not answered, the three are cleared and the
        caller queues. An interface whose extension starts with ``29`` never answers."""
        interface = ch.variables.get("CCB_STICKY_INTERFACE", "")
        if not interface:
            return False
        server, cfg = self.server, self.config
        records = ch.variables.get("CCB_STICKY_RECORD") == "yes"
        inherited = {
            "CCB_STICKY_AGENT": ch.variables.get("CCB_STICKY_AGENT", ""),
            "CCB_STICKY_INTERFACE": interface,
            "CCB_STICKY_QUEUE": ch.variables.get("CCB_QUEUE", ""),
            "CCB_STICKY_FILE": ch.variables.get("MONITOR_FILENAME", "") if records else "",
        }
        for name, value in inherited.items():
            server.set_var(ch, f"__{name}", value)
            ch.variables[name] = value
        ch.application, ch.app_data = (
            "Dial",
            f"{interface},{ch.variables.get('CCB_STICKY_SECONDS')},U(ccbridge-record-answer)",
        )
        tech = interface.split("/", 1)[0]
        leg = self.model.new_channel(
            f"{interface}-{self.model.ids.suffix(tech)}",
            linkedid=ch.linkedid,
            context="ccbridge-route",
            exten=interface.rsplit("/", 1)[-1],
            caller_num=ch.caller_num,
            caller_name=ch.caller_name,
        )
        leg.variables.update(inherited)
        leg.connected_num, leg.connected_name = ch.caller_num, ch.caller_name
        server.emit_channel("Newchannel", leg)
        server.emit_channel(
            "DialBegin", ch, [*af.channel_fields(leg, "Dest"), ("DialString", interface)]
        )
        seconds = float(ch.variables.get("CCB_STICKY_SECONDS") or 0)
        never = leg.exten.startswith("29")
        ring_s = seconds if never else min(seconds, self.rng.uniform(*cfg.ring_seconds))
        try:
            await self._hold(ch, ring_s)
        except _CallerGone:
            server.hangup_channel(leg, 0, request=False)
            raise
        if never:
            server.emit_channel(
                "DialEnd", ch, [*af.channel_fields(leg, "Dest"), ("DialStatus", "NOANSWER")]
            )
            server.hangup_channel(leg, 19, request=False)
            for name in inherited:
                server.set_var(ch, f"__{name}", "")
                ch.variables[name] = ""
            return False
        leg.state = STATE_UP
        server.emit_channel("Newstate", leg)
        self._record_answer(leg)
        server.emit_channel(
            "DialEnd", ch, [*af.channel_fields(leg, "Dest"), ("DialStatus", "ANSWER")]
        )
        self._answered[ch.uniqueid] = (self._now(), leg.name)
        self._sticky[ch.uniqueid] = (inherited["CCB_STICKY_AGENT"], interface, self._now())
        outcome.answered, outcome.member = True, interface
        bridge = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        server.emit("BridgeCreate", af.bridge_fields(bridge, 0))
        for count, party in enumerate((leg, ch), 1):
            party.bridge_id = bridge
            server.emit(
                "BridgeEnter", [*af.bridge_fields(bridge, count), *af.channel_fields(party)]
            )
        talk = talk_seconds if talk_seconds is not None else self.rng.uniform(*cfg.talk_seconds)
        started = self._now()
        caller_gone = False
        try:
            await self._hold(ch, talk)
        except _CallerGone:
            caller_gone = True
        outcome.talk_seconds = int(self._now() - started)
        agent_ends = bool(agent_hangs_up) and not caller_gone
        outcome.reason = "agent" if agent_ends else "caller"
        for count, party in enumerate((leg, ch) if agent_ends else (ch, leg)):
            if self._alive(party):
                server.emit(
                    "BridgeLeave", [*af.bridge_fields(bridge, 1 - count), *af.channel_fields(party)]
                )
            party.bridge_id = ""
        server.hangup_channel(leg, 16, request=agent_ends)
        server.emit("BridgeDestroy", af.bridge_fields(bridge, 0))
        if self._alive(ch):
            self._end_caller(ch, request=agent_ends)
        return True

    def _identity(self, ch: Channel) -> tuple[str, str, str, str, str]:
        """What ccbridge's dialplan logs with ``QueueLog()``: Linkedid, tenant, DID, caller
        and the channel's start (``${CDR(start,u)}``)."""
        return (
            ch.linkedid,
            ch.variables.get("CCB_TENANT", ""),
            ch.variables.get("CCB_DID", ""),
            ch.caller_num,
            f"{ch.created_at:.6f}",
        )

    def _qlog(self, ch: Channel, queue: str, agent: str, event: str, *data: str) -> None:
        """Append a queue-log line for the caller's channel, when the PBX keeps records."""
        records = self.server.records
        if records is not None:
            records.queue_event(self._now(), ch.uniqueid, queue, agent, event, *data)

    def _write_end(self, ch: Channel, outcome: CallOutcome) -> None:
        """The ``h`` extension's ``CCBSTICKY`` (the owner took the sticky ring) and ``CCBEND``
        lines, and the caller leg's CDR row."""
        records = self.server.records
        if records is None:
            return
        sticky = self._sticky.pop(ch.uniqueid, None)
        if sticky is not None:
            agent, interface, answered_at = sticky
            identity = self._identity(ch)
            self._qlog(
                ch,
                outcome.queue or "",
                "",
                "CCBSTICKY",
                *identity,
                agent,
                interface,
                str(int(answered_at)),
            )
        self._qlog(ch, outcome.queue or "", "", "CCBEND", *self._identity(ch), "16")
        answered = self._answered.pop(ch.uniqueid, None)
        known_name = "" if ch.caller_name == UNKNOWN else ch.caller_name
        records.cdr_row(
            CdrLine(
                src=ch.caller_num,
                dst=outcome.did,
                dcontext=ch.context,
                clid=f'"{known_name}" <{ch.caller_num}>',
                channel=ch.name,
                dstchannel=answered[1] if answered else "",
                lastapp=ch.application or "AGI",
                lastdata=ch.app_data,
                start=ch.created_at,
                answer=answered[0] if answered else None,
                end=self._now(),
                disposition="ANSWERED" if answered else "NO ANSWER",
                uniqueid=ch.uniqueid,
            )
        )

    def _done(self, outcome: CallOutcome, ch: Channel | None = None) -> CallOutcome:
        if ch is not None:
            self._requeued.pop(ch.uniqueid, None)
            self._write_end(ch, outcome)
        self.outcomes.append(outcome)
        log.info(
            "simulator.call_done",
            linkedid=outcome.linkedid,
            answered=outcome.answered,
            abandoned=outcome.abandoned,
        )
        return outcome

    async def _run_agi(
        self, ch: Channel, did: str, dtmf: str | list[str], script: str | None = None
    ) -> AgiResult | None:
        """Run the FastAGI script like the shipped ``[ccbridge-fastagi]``: ``agi_url`` may
        list several nodes (``agi://a&agi://b``), tried in order; a node that refuses, or
        whose session ends without ``CCB_AGI_DONE`` set to the script, is skipped, and what
        it set stays on the channel. ``None`` when no node finished the script. A single node
        is taken as it ends, marked or not (as before, for servers that set no mark)."""
        cfg = self.config
        assert cfg.agi_url is not None
        nodes = cfg.agi_url.split("&")
        for node in nodes:
            base = node.rstrip("/")
            url = base if base.count("/") > 2 else f"{base}/{cfg.agi_script}"
            if script is not None:
                url = f"{url.rsplit('/', 1)[0]}/{script}"
            client = FakeAgiClient(
                url, self._agi_call(ch, did), dtmf=dtmf, timeout=max(5.0, 60 * cfg.time_scale)
            )
            try:
                result = await client.run()
            except OSError as exc:
                log.warning("simulator.agi_unreachable", url=url, error=str(exc))
                continue
            for name, value in result.variables_set.items():
                if name.startswith("CCB_") or cfg.dialplan_noise:
                    self.server.set_var(ch, name, value)
                else:
                    ch.variables[name] = value
            done = result.variables_set.get(DONE_VARIABLE) == client.script
            if done or result.hung_up or len(nodes) == 1:
                return result
            log.warning("simulator.agi_not_completed", url=url)
        return None

    def _agi_call(self, ch: Channel, did: str) -> AgiCall:
        """The ``agi_*`` environment of *ch* as Asterisk sends it."""
        return AgiCall(
            channel=ch.name,
            uniqueid=ch.uniqueid,
            callerid=ch.caller_num,
            calleridname=ch.caller_name if ch.caller_name != UNKNOWN else "unknown",
            dnid=did,
            context=ch.context,
            extension=ch.exten,
            priority=ch.priority,
            threadid=str(139651190003392 + self.rng.randrange(1 << 20)),
            variables=dict(ch.variables),
            linkedid=ch.linkedid,
        )

    def _end_caller(self, ch: Channel, request: bool, cause: int = 16) -> None:
        if not self._alive(ch):
            return
        if request:
            self.server.emit_channel("HangupRequest", ch)
        self.server.hangup_channel(ch, cause, request=False)

    async def _queue_call(
        self,
        ch: Channel,
        queue: Queue,
        outcome: CallOutcome,
        talk_seconds: float | None,
        abandon_after: float | None,
        agent_hangs_up: bool | None,
    ) -> None:
        server, cfg = self.server, self.config
        ch.priority = 4
        ch.application, ch.app_data = "Queue", f"{queue.name},t,,,{int(cfg.queue_timeout)}"
        joined = self._now()
        position = len(queue.entries) + 1
        entry = QueueEntry(ch.name, ch.uniqueid, joined, position)
        queue.entries.append(entry)
        self._qlog(ch, queue.name, "", "ENTERQUEUE", "", ch.caller_num, str(position))
        server.device_state(f"Queue:{queue.name}", "RINGING")
        server.emit_channel(
            "QueueCallerJoin",
            ch,
            [("Queue", queue.name), ("Position", str(position)), ("Count", str(position))],
        )
        server.emit_channel("MusicOnHoldStart", ch, [("Class", "default")])
        loop = asyncio.get_running_loop()
        started = loop.time()
        scale = max(cfg.time_scale, 1e-9)

        def waited() -> float:
            return (loop.time() - started) / scale

        try:
            while True:
                if not self._alive(ch):
                    raise _CallerGone
                if entry not in queue.entries:
                    outcome.redirected = True
                    await self._after_redirect(ch)
                    return
                if abandon_after is not None and waited() >= abandon_after:
                    self._abandon(ch, queue, entry, outcome)
                    return
                if waited() >= cfg.queue_timeout:
                    self._timeout(ch, queue, entry, outcome)
                    return
                member = self._member_for(queue, entry)
                if member is None:
                    step = cfg.poll_interval
                    if abandon_after is not None:
                        step = min(step, max(0.0005, (abandon_after - waited()) * scale))
                    await asyncio.sleep(step)
                    continue
                patience = None if abandon_after is None else abandon_after - waited()
                answered = await self._ring(ch, queue, member, patience)
                if answered is None:
                    if not self._alive(ch):
                        raise _CallerGone
                    continue
                one, two, ring_s = answered
                await self._connect(
                    ch,
                    queue,
                    entry,
                    member,
                    one,
                    two,
                    outcome,
                    ring_s,
                    talk_seconds,
                    agent_hangs_up,
                )
                return
        except _CallerGone:
            if entry in queue.entries:
                self._leave_after_hangup(ch, queue, entry, outcome)
            raise

    def _member_for(self, queue: Queue, entry: QueueEntry) -> QueueMember | None:
        """autofill=yes: caller at position p may take a member when >= p are free."""
        position = queue.entries.index(entry) + 1
        free = sum(1 for m in queue.members.values() if m.available)
        if free < position:
            return None
        return queue.pick_member()

    def _abandon(self, ch: Channel, queue: Queue, entry: QueueEntry, outcome: CallOutcome) -> None:
        server = self.server
        server.emit_channel("HangupRequest", ch)
        self._leave_after_hangup(ch, queue, entry, outcome)
        self._end_caller(ch, request=False)

    def _leave_after_hangup(
        self, ch: Channel, queue: Queue, entry: QueueEntry, outcome: CallOutcome
    ) -> None:
        server = self.server
        pos = queue.entries.index(entry) + 1
        queue.entries.remove(entry)
        queue.abandoned += 1
        hold = int(self._now() - entry.joined_at)
        outcome.abandoned, outcome.hold_seconds, outcome.reason = True, hold, "abandon"
        orig = str(entry.original_position)
        self._qlog(ch, queue.name, "", "ABANDON", str(pos), orig, str(hold))
        server.emit_channel("MusicOnHoldStop", ch)
        server.emit_channel(
            "QueueCallerAbandon",
            ch,
            [
                ("Queue", queue.name),
                ("Position", str(pos)),
                ("OriginalPosition", str(entry.original_position)),
                ("HoldTime", str(hold)),
            ],
        )
        self._caller_leave(ch, queue, pos)

    def _caller_leave(self, ch: Channel, queue: Queue, pos: int) -> None:
        if not queue.entries:
            self.server.device_state(f"Queue:{queue.name}", "NOT_INUSE")
        self.server.emit_channel(
            "QueueCallerLeave",
            ch,
            [("Queue", queue.name), ("Position", str(pos)), ("Count", str(len(queue.entries)))],
        )

    def _timeout(self, ch: Channel, queue: Queue, entry: QueueEntry, outcome: CallOutcome) -> None:
        pos = queue.entries.index(entry) + 1
        queue.entries.remove(entry)
        outcome.timed_out, outcome.reason = True, "timeout"
        outcome.hold_seconds = int(self._now() - entry.joined_at)
        self._qlog(
            ch,
            queue.name,
            "",
            "EXITWITHTIMEOUT",
            str(pos),
            str(entry.original_position),
            str(outcome.hold_seconds),
        )
        self.server.emit_channel("MusicOnHoldStop", ch)
        self._caller_leave(ch, queue, pos)
        self._end_caller(ch, request=True)

    async def _after_redirect(self, ch: Channel) -> None:
        """The caller was redirected out of the queue (e.g. back to the IVR)."""
        if self.config.agi_url and self._alive(ch):
            await self._run_agi(ch, ch.exten, "")
        await self._hold(ch, 0.5)
        self._end_caller(ch, request=True)

    async def _ring(
        self, ch: Channel, queue: Queue, member: QueueMember, patience: float | None
    ) -> tuple[Channel, Channel, float] | None:
        """Ring one member; return its legs when it answers, None on no answer/cancel."""
        server, cfg = self.server, self.config
        one, two = self.model.local_pair(member.extension, member.context, linkedid=ch.linkedid)
        server.emit_channel("Newchannel", one)
        server.emit_channel("Newchannel", two)
        for leg in (one, two):
            leg.caller_num, leg.caller_name = ch.caller_num, ch.caller_name
        two.connected_num, two.connected_name = ch.caller_num, ch.caller_name
        member.ringing = True
        one.exten = ch.exten
        one.connected_num, one.connected_name = ch.caller_num, ch.caller_name
        agent_fields = [
            ("Queue", queue.name),
            ("Interface", member.interface),
            ("MemberName", member.member_name),
        ]
        server.emit_channel("AgentCalled", ch, [*af.channel_fields(one, "Dest"), *agent_fields])
        one.exten, one.connected_num, one.connected_name = member.extension, UNKNOWN, UNKNOWN
        server.emit_channel(
            "DialBegin", ch, [*af.channel_fields(one, "Dest"), ("DialString", member.interface)]
        )
        one.exten = ch.exten
        one.connected_num, one.connected_name = ch.caller_num, ch.caller_name
        one.application, one.app_data = "AppQueue", "(Outgoing Line)"
        never = member.extension.startswith("29")
        ring_s = cfg.member_ring_timeout if never else self.rng.uniform(*cfg.ring_seconds)
        ring_s = min(ring_s, cfg.member_ring_timeout)
        cancelled = patience is not None and patience < ring_s
        ringing = self.model.members_of(member.interface)
        for _q, m in ringing:
            m.status, m.in_call = 2, False  # a Local member counts as in use while ringing
        if never or cancelled:
            for q, m in ringing:
                server.member_status(q, m)
        try:
            await self._hold(
                ch, max(0.0, patience) if patience is not None and cancelled else ring_s
            )
        except _CallerGone:
            self._drop_legs(ch, member, one, two, "CANCEL")
            raise
        if cancelled or never:
            if not cancelled:
                one.state = 5
                server.emit_channel(
                    "AgentRingNoAnswer",
                    ch,
                    [
                        *af.channel_fields(one, "Dest"),
                        *agent_fields,
                        ("RingTime", str(int(ring_s * 1000))),
                    ],
                )
                ring_ms = str(int(ring_s * 1000))
                self._qlog(ch, queue.name, member.member_name, "RINGNOANSWER", ring_ms)
            self._drop_legs(ch, member, one, two, "CANCEL" if cancelled else "NOANSWER")
            if not cancelled:
                await self._hold(ch, cfg.retry_seconds)
            return None
        member.ringing = False
        two.state, two.priority = STATE_UP, 2
        server.emit_channel("Newstate", two)
        one.state = STATE_UP
        server.emit_channel("Newstate", one)
        server.emit_channel(
            "DialEnd", ch, [*af.channel_fields(one, "Dest"), ("DialStatus", "ANSWER")]
        )
        for q, m in ringing:
            server.member_status(q, m)
        two.application, two.app_data, two.priority = "Wait", "", 3
        return one, two, ring_s

    def _member_free(self, queue: Queue, member: QueueMember) -> None:
        """The member's call is over: counted, free, its status told."""
        now = int(self._now())
        for q, m in self.model.members_of(member.interface):
            if q is queue:
                m.calls_taken += 1
            m.last_call = now
            m.status, m.in_call = 1, False
            self.server.member_status(q, m)

    def _blind_transferred(self, peer: Channel, context: str, exten: str) -> None:
        """The agent blind-transferred a queue call: app_queue's ``BLINDTRANSFER`` line
        (``exten|context|holdtime|calltime|position``) ends the member's part."""
        talking = self._talking.pop(peer.uniqueid, None)
        if talking is None:
            return
        queue, member_name, hold, talk_started, position = talking
        calltime = str(int(self._now() - talk_started))
        self._qlog(
            peer,
            queue,
            member_name,
            "BLINDTRANSFER",
            exten,
            context,
            str(hold),
            calltime,
            str(position),
        )

    def _drop_legs(
        self, ch: Channel, member: QueueMember, one: Channel, two: Channel, status: str
    ) -> None:
        server = self.server
        member.ringing = False
        if self._alive(ch):
            server.emit_channel(
                "DialEnd", ch, [*af.channel_fields(one, "Dest"), ("DialStatus", status)]
            )
        server.hangup_channel(one, 0, request=False)
        server.hangup_channel(two, 0, request=False)
        for q, m in self.model.members_of(member.interface):
            m.status, m.in_call = 1, False
            server.member_status(q, m)

    def _next_take(self, ch: Channel) -> None:
        """The shipped ``[ccbridge-record-take]`` before a caller queues again: a recorded
        caller's MixMonitor stops and the next answer records the call's first take not on
        disk, ``<MONITOR_FILENAME>-q<n>`` (the owner's sticky take is on disk too)."""
        v = ch.variables
        if not v.get("MONITOR_FILENAME"):
            return
        if v.get("MIXMONITOR_FILENAME"):
            self.server.stop_mixmonitor(ch)
        v["CCB_RECORDING_BASE"] = v.get("CCB_RECORDING_BASE") or v["MONITOR_FILENAME"]
        v["MONITOR_FILENAME"] = first_free_take(v["CCB_RECORDING_BASE"]) or ""

    def _record_answer(self, leg: Channel) -> None:
        """The shipped ``[ccbridge-record-answer]`` (``Dial``'s ``U()`` on the answered leg,
        before the bridge): the owner's leg that inherited ``CCB_STICKY_FILE`` records itself,
        option ``b``, into the call's first free take."""
        v = leg.variables
        base, interface = v.get("CCB_STICKY_FILE", ""), v.get("CCB_STICKY_INTERFACE", "")
        if not base or not interface or not leg.name.startswith(f"{interface}-"):
            return
        name = first_free_take(base)
        if name is not None:
            self.server.start_mixmonitor(leg, f"{name}.{TAKE_FORMAT}")

    def _queue_monitor(self, ch: Channel, queue: Queue) -> None:
        """app_queue's own recording (the queue has ``monitor-format``): MixMonitor on the
        caller into ``MONITOR_FILENAME`` (else its uniqueid) plus ``.<format>``, option ``b``,
        before ``AgentConnect`` (try_calling in app_queue.c, Asterisk 22)."""
        if not queue.monitor_format:
            return
        name = ch.variables.get("MONITOR_FILENAME") or ch.uniqueid
        self.server.start_mixmonitor(ch, f"{name}.{queue.monitor_format}")

    async def _connect(
        self,
        ch: Channel,
        queue: Queue,
        entry: QueueEntry,
        member: QueueMember,
        one: Channel,
        two: Channel,
        outcome: CallOutcome,
        ring_s: float,
        talk_seconds: float | None,
        agent_hangs_up: bool | None,
    ) -> None:
        server, cfg = self.server, self.config
        hold = int(self._now() - entry.joined_at)
        server.emit_channel("MusicOnHoldStop", ch)
        self._queue_monitor(ch, queue)
        pos = queue.entries.index(entry) + 1
        queue.entries.remove(entry)
        self._caller_leave(ch, queue, pos)
        agent_fields = [
            ("Queue", queue.name),
            ("Interface", member.interface),
            ("MemberName", member.member_name),
        ]
        server.emit_channel(
            "AgentConnect",
            ch,
            [
                *af.channel_fields(one, "Dest"),
                *agent_fields,
                ("HoldTime", str(hold)),
                ("RingTime", str(int(ring_s))),
            ],
        )
        self._qlog(
            ch, queue.name, member.member_name, "CONNECT", str(hold), one.uniqueid, str(int(ring_s))
        )
        self._answered[ch.uniqueid] = (self._now(), one.name)
        bridge = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        server.emit("BridgeCreate", af.bridge_fields(bridge, 0))
        one.bridge_id = bridge
        server.emit(
            "BridgeEnter", [*af.bridge_fields(bridge, 1), *af.channel_fields(one)], af.PRIV_CALL
        )
        for q, m in self.model.members_of(member.interface):
            m.status, m.in_call = 2, q is queue
            server.member_status(q, m)
        ch.bridge_id = bridge
        server.emit("BridgeEnter", [*af.bridge_fields(bridge, 2), *af.channel_fields(ch)])
        if cfg.dialplan_noise:
            server.set_var(one, "BRIDGEPEER", ch.name)
            server.set_var(ch, "BRIDGEPEER", one.name)
        outcome.answered, outcome.member, outcome.hold_seconds = True, member.interface, hold
        talk = talk_seconds if talk_seconds is not None else self.rng.uniform(*cfg.talk_seconds)
        if agent_hangs_up is None:
            agent_hangs_up = self.rng.random() < cfg.agent_hangup_probability
        talk_started = self._now()
        talking = (queue.name, member.member_name, hold, talk_started, entry.original_position)
        self._talking[ch.uniqueid] = talking
        caller_gone = False
        try:
            await self._hold(ch, talk, until=lambda: self._talking.get(ch.uniqueid) is not talking)
        except _CallerGone:
            caller_gone = True
        if self._talking.get(ch.uniqueid) is not talking:
            # Blind-transferred (app_queue logged BLINDTRANSFER, not COMPLETE*): the agent's
            # legs are gone and the member is free; the caller lives on elsewhere, and this
            # call ends (the h extension's line) when the caller hangs up.
            self._member_free(queue, member)
            with contextlib.suppress(_CallerGone):
                await self._hold(ch, math.inf)
            await self._after_requeues(ch)
            return
        del self._talking[ch.uniqueid]
        if not self._alive(one):
            agent_hangs_up = True
        talked = int(self._now() - talk_started)
        reason = "agent" if agent_hangs_up and not caller_gone else "caller"
        outcome.talk_seconds, outcome.reason = talked, reason
        self._qlog(
            ch,
            queue.name,
            member.member_name,
            "COMPLETECALLER" if reason == "caller" else "COMPLETEAGENT",
            str(hold),
            str(talked),
            str(entry.original_position),
        )
        complete = [
            *af.channel_fields(one, "Dest"),
            *agent_fields,
            ("HoldTime", str(hold)),
            ("TalkTime", str(talked)),
            ("Reason", reason),
        ]
        if reason == "caller":
            if not caller_gone:
                server.emit_channel("HangupRequest", ch)
            server.emit("AgentComplete", [*af.channel_fields(ch), *complete], af.PRIV_AGENT)
            server.emit("BridgeLeave", [*af.bridge_fields(bridge, 1), *af.channel_fields(ch)])
            server.emit("BridgeLeave", [*af.bridge_fields(bridge, 0), *af.channel_fields(one)])
            server.emit_channel("HangupRequest", two, [("Cause", "16")])
            server.hangup_channel(one, 16, request=False)
            server.hangup_channel(two, 16, request=False)
            server.emit("BridgeDestroy", af.bridge_fields(bridge, 0))
        else:
            server.emit_channel("HangupRequest", two, [("Cause", "16")])
            server.emit("AgentComplete", [*af.channel_fields(ch), *complete], af.PRIV_AGENT)
            server.emit("BridgeLeave", [*af.bridge_fields(bridge, 1), *af.channel_fields(one)])
            server.emit("BridgeLeave", [*af.bridge_fields(bridge, 0), *af.channel_fields(ch)])
            server.hangup_channel(one, 16, request=False)
            server.hangup_channel(two, 16, request=False)
            server.emit("BridgeDestroy", af.bridge_fields(bridge, 0))
        queue.record_completed(hold, talked)
        self._member_free(queue, member)
        ch.bridge_id = ""
        if reason == "agent":
            self._end_caller(ch, request=True)
        else:
            self._end_caller(ch, request=False)
