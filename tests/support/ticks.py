"""Heartbeat clocks for AmiClient(tick=...): count ticks instead of measuring seconds."""

from __future__ import annotations

import asyncio


class ManualTicks:
    """A tick that returns only when the test calls :meth:`advance`: time is under control."""

    def __init__(self) -> None:
        self.waiting = 0
        """How many times the heartbeat has asked for a tick (it is now waiting on the last)."""
        self.intervals: list[float] = []
        self._gate: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        self.intervals.append(seconds)
        self.waiting += 1
        await self._gate.get()

    def advance(self) -> None:
        """Let one tick pass."""
        self._gate.put_nowait(None)


class CountingTicks:
    """A real-time tick (``asyncio.sleep``) that counts the ticks that have passed."""

    def __init__(self) -> None:
        self.passed = 0

    async def __call__(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.passed += 1
