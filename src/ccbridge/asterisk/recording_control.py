"""MixMonitor over AMI, and the AMI events that drive recording (answer, hangup, stop)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from ccbridge.asterisk.ami.actions import getvar, mix_monitor, mix_monitor_mute, stop_mix_monitor
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiFields
from ccbridge.asterisk.ami.normalize import STICKY_FILE_VAR, sticky_answer
from ccbridge.observability.metrics import HeldBacklogMetrics
from ccbridge.resilience.held import ErrorReport, HeldQueue

log = structlog.get_logger(__name__)

MIXMONITOR_FILENAME = "MIXMONITOR_FILENAME"
"""Set by MixMonitor on the channel it records: the file it writes (channelvars carry it)."""
TENANT_VAR = "CCB_TENANT"


class AmiRecorderControl:
    """Implements ``services.recording_ports.RecorderControl`` with Asterisk 22 actions.

    ``MixMonitor`` (option ``b``: only while bridged), ``StopMixMonitor``, and
    ``MixMonitorMute`` with ``Direction: both`` for pause/resume (Asterisk 22 has no
    PauseMonitor: app_monitor was removed in 21).
    """

    def __init__(self, client: AmiClient, options: str = "b") -> None:
        self._client = client
        self._options = options

    async def start(self, channel: str, path: str) -> None:
        """Start recording *channel* into the absolute *path*."""
        await self._client.send_action(mix_monitor(channel, path, options=self._options or None))

    async def stop(self, channel: str) -> None:
        """Stop recording *channel*."""
        await self._client.send_action(stop_mix_monitor(channel))

    async def mute(self, channel: str, muted: bool) -> None:
        """Mute or unmute both directions."""
        await self._client.send_action(mix_monitor_mute(channel, muted, "both"))

    async def recording_file(self, channel: str) -> str | None:
        """The file a MixMonitor on *channel* writes (``Getvar MIXMONITOR_FILENAME``), or
        ``None`` when nothing records it (ADR 0025: app_queue may have started one)."""
        reply = await self._client.send_action(getvar(MIXMONITOR_FILENAME, channel))
        return reply.get("Value") or None


@dataclass(frozen=True, slots=True)
class _Answer:
    """One held recording trigger: an answer, or a MixMonitor the PBX started (``written``)."""

    call_id: str
    channel: str
    written: str | None = None
    tenant: str | None = None
    stopped: bool = False
    """A ``MixMonitorStop`` that came while this channel's start was held: applied in order."""

    @property
    def by_pbx(self) -> bool:
        """The PBX records this channel already (``MixMonitorStart``)."""
        return self.written is not None


class AmiRecordingFeed:
    """The coordinator's recordings handler: AgentConnect (or the owner's sticky answer, a
    ``Newstate`` to Up that no ``AgentConnect`` reports) starts a recording; Hangup or
    MixMonitorStop of the channel finalises it. ``MixMonitorStart`` of a channel ccbridge
    did not record is the PBX's own (app_queue, ADR 0025): it is indexed, and the
    ``AgentConnect`` right after it (same channel topic, so always later) starts nothing.
    The owner's sticky answer comes before the dialplan's ``MixMonitorStart`` on that leg
    (``Dial``'s ``U()`` runs after the answer), so a leg that carries ``CCB_STICKY_FILE``
    starts nothing: the dialplan records it.

    The handler only enqueues; :meth:`run` applies the answers one by one. While the
    database is away the answers are held in order and applied when it returns.
    """

    events = frozenset({"AgentConnect", "Newstate", "Hangup", "MixMonitorStop", "MixMonitorStart"})

    def __init__(
        self,
        on_answer: Callable[[str, str], Awaitable[object]],
        on_gone: Callable[[str], None],
        maxsize: int = 10_000,
        *,
        on_pbx_recording: Callable[[str, str, str, str | None], Awaitable[object]] | None = None,
        on_hangup: Callable[[str], None] | None = None,
        on_error: ErrorReport | None = None,
        wait_ready: Callable[[], Awaitable[None]] | None = None,
        metrics: HeldBacklogMetrics | None = None,
        after_resync: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Hold at most *maxsize* answers; *on_error* says which failures are outages (held);
        *after_resync* runs as a coordinator login step, after the calls resync (calls
        answered while AMI was away get their recording then); *on_pbx_recording* indexes a
        MixMonitor the PBX started (call id, channel, file, tenant); *on_hangup* is told a
        ``Hangup`` (default *on_gone*, which hears ``MixMonitorStop`` too)."""
        self._after_resync = after_resync
        self._on_pbx_recording = on_pbx_recording
        self._on_hangup = on_hangup or on_gone
        self._on_answer = on_answer
        self._on_gone = on_gone
        self._waiting: Counter[str] = Counter()
        """Channels with an answer still held (the database was away when it came)."""
        self._hung_up: set[str] = set()
        """Held channels that hung up meanwhile: their recording is not started late."""
        self.skipped_gone = 0
        self.held: HeldQueue[_Answer] = HeldQueue(
            "recordings",
            self._apply,
            capacity=maxsize,
            on_error=on_error,
            wait_ready=wait_ready,
            metrics=metrics,
            on_done=lambda answer: self._done(answer.channel),
            log_context=lambda answer: {"call_id": answer.call_id},
        )

    @property
    def dropped(self) -> int:
        """Answers lost because the hold was full."""
        return self.held.dropped

    def on_events(self, frames: Sequence[AmiFields]) -> None:
        """Enqueue each answer; tell the service at once about each channel gone."""
        for frame in frames:
            name = frame.event
            if name == "AgentConnect":
                self._connect(frame)
            elif name == "Newstate":
                self._sticky(frame)
            elif name == "MixMonitorStart":
                self._pbx_started(frame)
            else:
                self._gone(frame)

    async def after_login(self, _client: AmiClient) -> None:
        """Login step (after the calls resync): a failure is logged, never a reconnect."""
        if self._after_resync is None:
            return
        try:
            await self._after_resync()
        except Exception as exc:
            log.warning("recordings_after_resync_failed", error=repr(exc))

    def _connect(self, msg: AmiFields) -> None:
        self._answered(msg.get("Linkedid") or msg.get("Uniqueid"), msg.get("Channel"))

    def _sticky(self, msg: AmiFields) -> None:
        """The owner answered the sticky ring: record the call on the owner's leg, unless the
        dialplan records that leg itself (``CCB_STICKY_FILE`` on it: its ``MixMonitorStart``
        follows on the same channel, and is indexed)."""
        answer = sticky_answer(msg, lambda: datetime.now(UTC))
        if answer is None:
            return
        if msg.variables().get(STICKY_FILE_VAR):
            log.debug("sticky_answer_recorded_by_pbx", call_id=answer.linkedid)
            return
        self._answered(answer.linkedid, answer.channel)

    def _pbx_started(self, msg: AmiFields) -> None:
        """A MixMonitor started on a channel: the PBX's own when ccbridge did not send it."""
        if self._on_pbx_recording is None:
            return
        found = msg.variables() if msg.has("ChanVariable") else {}
        # "" when channelvars lacks MIXMONITOR_FILENAME: the service asks the PBX then.
        written = found.get(MIXMONITOR_FILENAME) or ""
        call_id = msg.get("Linkedid") or msg.get("Uniqueid")
        self._answered(call_id, msg.get("Channel"), written, found.get(TENANT_VAR) or None)

    def _answered(
        self,
        call_id: str | None,
        channel: str | None,
        written: str | None = None,
        tenant: str | None = None,
    ) -> None:
        if not call_id or not channel:
            return
        self._enqueue(_Answer(call_id, channel, written, tenant))

    def _enqueue(self, answer: _Answer) -> None:
        if self.held.put(answer):
            self._waiting[answer.channel] += 1
        else:
            log.warning("recording_feed_overflow", call_id=answer.call_id)

    def _gone(self, msg: AmiFields) -> None:
        channel = msg.get("Channel")
        if channel:
            if msg.event != "Hangup":
                # MixMonitorStop: the channel lives on (a caller queued again records its
                # next take), so the stop must not overtake a start still held for it.
                if self._waiting[channel] > 0:
                    self._enqueue(_Answer(msg.get("Linkedid") or "", channel, stopped=True))
                else:
                    self._on_gone(channel)
                return
            if self._waiting[channel] > 0:
                self._hung_up.add(channel)
            self._on_hangup(channel)

    async def _apply(self, answer: _Answer) -> None:
        call_id, channel = answer.call_id, answer.channel
        if answer.stopped:
            self._on_gone(channel)
            return
        if answer.by_pbx:
            # The PBX's file exists whether or not the channel is still up: index it (the
            # service finalises it at once when the channel hung up meanwhile).
            assert self._on_pbx_recording is not None
            assert answer.written is not None
            await self._on_pbx_recording(call_id, channel, answer.written, answer.tenant)
            return
        if channel in self._hung_up:
            self.skipped_gone += 1
            log.info("recording_start_skipped_channel_gone", call_id=call_id)
            return
        await self._on_answer(call_id, channel)

    def _done(self, channel: str) -> None:
        """One held answer of *channel* is dealt with."""
        self._waiting[channel] -= 1
        if self._waiting[channel] <= 0:
            del self._waiting[channel]
            self._hung_up.discard(channel)

    async def run(self) -> None:
        """Start recordings for answered calls in order until cancelled; an outage holds
        them, any other failure skips that one (logged)."""
        await self.held.run()
