"""The wallboard stream: a frame on every change, coalesced to at most 4 a second, a heartbeat
after 15 s of quiet. Time is a fake clock the fake sleep advances: nothing waits for real."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.wallboard import queues_now, wallboard_stream


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Signal:
    """A journal that moves every ``every`` seconds of fake time (or never)."""

    def __init__(self, clock: Clock, every: float | None) -> None:
        self.clock, self.every, self.seq = clock, every, 0
        self.closed = False

    def last_seq(self, tenant: str) -> int:
        return self.seq

    async def wait(self, tenant: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        if self.every is None or self.every > timeout:
            self.clock.t += timeout
            return False
        self.clock.t += self.every
        self.seq += 1
        return True


class Board:
    """A board whose figure changes on every build while *changing*."""

    def __init__(self, clock: Clock, changing: bool) -> None:
        self.clock, self.changing, self.builds = clock, changing, 0

    async def __call__(self, tenant: str) -> dict[str, Any]:
        self.builds += 1
        value = self.builds if self.changing else 0
        return {"tenant_id": tenant, "generated_at": str(self.clock.t), "n": value}


async def take(stream: AsyncIterator[bytes | None], clock: Clock, until: float) -> list[Any]:
    out: list[Any] = []
    async for frame in stream:
        out.append((clock.t, frame))
        if clock.t >= until:
            break
    return out


async def test_changes_every_10_ms_reach_the_client_at_most_4_times_a_second() -> None:
    clock = Clock()
    board = Board(clock, changing=True)
    stream = wallboard_stream(
        "t1", board, Signal(clock, every=0.01), monotonic=clock.monotonic, sleep=clock.sleep
    )
    frames = await take(stream, clock, until=clock.t + 10.0)
    times = [t for t, f in frames if f is not None]
    assert len(times) >= 39  # 10 s of constant change: one frame every 0.25 s
    assert all(b - a >= 0.25 - 1e-9 for a, b in itertools.pairwise(times))
    assert len(times) <= 41
    last = frames[-1][1]
    assert last.startswith(b"event: wallboard\ndata: ")
    data = json.loads(last.split(b"data: ", 1)[1])
    assert data["n"] == board.builds  # the newest state, not a stale one


async def test_the_first_frame_is_immediate_and_an_unchanged_board_is_not_resent() -> None:
    clock = Clock()
    start = clock.t
    stream = wallboard_stream(
        "t1",
        Board(clock, changing=False),
        Signal(clock, every=0.5),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        heartbeat=15.0,
    )
    frames = await take(stream, clock, until=start + 15.0)
    assert frames[0] == (start, frames[0][1])
    assert frames[0][1] is not None
    assert [f for _, f in frames[1:]] == [None]  # only the heartbeat after 15 s of quiet
    assert frames[1][0] - start >= 15.0


async def test_the_stream_ends_when_the_service_stops() -> None:
    clock = Clock()
    signal = Signal(clock, every=None)
    stream = wallboard_stream(
        "t1", Board(clock, changing=False), signal, monotonic=clock.monotonic, sleep=clock.sleep
    )
    first = await anext(stream)
    assert first is not None
    signal.closed = True
    assert [frame async for frame in stream] == []


def test_calls_waiting_and_longest_wait_come_from_the_live_calls() -> None:
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)

    def call(cid: str, state: CallState, waited: int, queue: str = "t1-sales") -> CallRecord:
        answered = now if state is CallState.CONNECTED else None
        return CallRecord(
            cid,
            now - timedelta(seconds=waited + 5),
            state=state,
            tenant="t1",
            skill_group=queue,
            queued_at=now - timedelta(seconds=waited),
            answered_at=answered,
        )

    live = [
        call("a", CallState.QUEUED, 12),
        call("b", CallState.AGENT_RINGING, 41),
        call("c", CallState.CONNECTED, 90),
        call("d", CallState.QUEUED, 3, "t1-support"),
        CallRecord("e", now, state=CallState.IVR, tenant="t1"),
    ]
    figures = queues_now(live, now)
    assert {q: (f.waiting, f.longest_wait_s) for q, f in figures.items()} == {
        "t1-sales": (2, 41),
        "t1-support": (1, 3),
    }
