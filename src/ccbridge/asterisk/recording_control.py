"""MixMonitor over AMI, and the AMI events that drive recording (answer, hangup, stop)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from ccbridge.asterisk.ami.actions import mix_monitor, mix_monitor_mute, stop_mix_monitor
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage

log = structlog.get_logger(__name__)


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


class AmiRecordingFeed:
    """AgentConnect starts a recording; Hangup or MixMonitorStop of the channel finalises it.

    The AMI consumer only enqueues; :meth:`run` applies the answers one by one.
    """

    def __init__(
        self,
        client: AmiClient,
        on_answer: Callable[[str, str], Awaitable[object]],
        on_gone: Callable[[str], None],
        maxsize: int = 10_000,
    ) -> None:
        self._client = client
        self._on_answer = on_answer
        self._on_gone = on_gone
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def attach(self) -> None:
        """Subscribe to the three events."""
        self._client.subscribe("AgentConnect", self._connect)
        self._client.subscribe("Hangup", self._gone)
        self._client.subscribe("MixMonitorStop", self._gone)

    def _connect(self, msg: AmiMessage) -> None:
        call_id = msg.get("Linkedid") or msg.get("Uniqueid")
        channel = msg.get("Channel")
        if not call_id or not channel:
            return
        try:
            self._queue.put_nowait((call_id, channel))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("recording_feed_overflow", call_id=call_id)

    def _gone(self, msg: AmiMessage) -> None:
        channel = msg.get("Channel")
        if channel:
            self._on_gone(channel)

    async def run(self) -> None:
        """Start recordings for answered calls until cancelled; a failure never stops it."""
        while True:
            call_id, channel = await self._queue.get()
            with structlog.contextvars.bound_contextvars(call_id=call_id):
                try:
                    await self._on_answer(call_id, channel)
                except Exception:
                    log.exception("recording_auto_start_failed")
