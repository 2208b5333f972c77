"""FastAGI fault injection (architecture §6.4 F11): hostile peers never stall the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.agi.session import AgiSession
from tests.support.agi_client import capture_environment, environment, play_asterisk

T = TypeVar("T")

HEARTBEAT_PERIOD = 0.005
MAX_OVERSHOOT = 0.050
# A flood may cost the loop at most this many times what the same flood costs a bare asyncio
# server (accept, close) in the same run: a ratio to a peer, so a loaded machine moves both.
FLOOD_MAX_RATIO = 4.0
FLOOD_FLOOR = 0.050  # below this, both are noise


@pytest.fixture(autouse=True)
def collector_back_on() -> Iterator[None]:
    """A failed assertion between a beat's start and stop must not leave the collector off."""
    yield
    gc.enable()


@dataclass
class Heartbeat:
    """Measure how long the server's own work holds the event loop during one 5 ms sleep.

    ``max_overshoot`` is the worst CPU time the loop's thread spent while one beat slept: the
    work the loop did instead of waking the beat. It is thread CPU time, so other processes on
    a loaded CI machine (or the peers' thread waiting for the GIL) do not count; the wall-clock
    lateness is kept in ``max_wall_overshoot`` for the failure message only (never asserted:
    a busy machine deschedules the whole process).
    """

    max_overshoot: float = 0.0
    max_wall_overshoot: float = 0.0
    beats: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start, cpu_start = loop.time(), time.thread_time()
            await asyncio.sleep(HEARTBEAT_PERIOD)
            self.max_overshoot = max(self.max_overshoot, time.thread_time() - cpu_start)
            self.max_wall_overshoot = max(
                self.max_wall_overshoot, loop.time() - start - HEARTBEAT_PERIOD
            )
            self.beats += 1

    def start(self) -> None:
        # A full collection of the suite's whole heap costs this thread hundreds of ms of CPU
        # whenever it lands in a beat; that is not the server's work, so none runs while measured.
        gc.collect()
        gc.disable()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            gc.enable()


async def echo_handler(session: AgiSession) -> None:
    await session.answer()
    await session.verbose("still alive")


@pytest.fixture
async def server() -> AsyncIterator[FastAgiServer]:
    router = AgiRouter()
    router.add_route("ivr-main", echo_handler)
    config = AgiServerConfig(port=0, header_timeout=1.0, max_sessions=500, command_timeout=2.0)
    srv = FastAgiServer(config, router)
    await srv.start()
    yield srv
    await srv.stop()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader, within: float = 3.0) -> bool:
    """Tell whether the server closed (EOF or reset) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def peer_closes_immediately(port: int) -> None:
    _, writer = await connect(port)
    await shut(writer)


async def peer_sends_half_environment(port: int) -> None:
    env = capture_environment("call-centre-scenarios")
    _, writer = await connect(port)
    writer.write(env[: len(env) // 2])
    await writer.drain()
    await shut(writer)


async def peer_sends_garbage(port: int, size: int) -> bool:
    reader, writer = await connect(port)
    garbage = bytes(range(11, 256)) * (size // 245 + 1)  # no b"\n" anywhere
    try:
        writer.write(garbage[:size])
        await writer.drain()
    except ConnectionError:
        return True
    try:
        return await closed_by_server(reader)
    finally:
        await shut(writer)


async def peer_sends_huge_header(port: int, total: int = 5 * 1024 * 1024) -> tuple[bool, int]:
    """Send ``agi_x: aaaa…`` up to 5 MB in 64 KiB chunks; return (closed, bytes accepted)."""
    reader, writer = await connect(port)
    chunk = b"a" * 65536
    sent = 0
    closed = False
    try:
        writer.write(b"agi_network_script: ")
        while sent < total:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            if reader.at_eof():
                closed = True
                break
    except ConnectionError:
        closed = True
    if not closed:
        closed = await closed_by_server(reader)
    await shut(writer)
    return closed, sent


async def peer_stalls(port: int) -> bool:
    reader, writer = await connect(port)
    writer.write(b"agi_network: yes\n")  # then nothing: the header timeout must fire
    try:
        return await closed_by_server(reader, within=3.0)
    finally:
        await shut(writer)


async def normal_session(port: int) -> list[str]:
    transcript = await play_asterisk(
        port, environment("ivr-main"), ["200 result=0\n", "200 result=1\n"]
    )
    return transcript.commands


async def wait_until(predicate: object, within: float = 3.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def hostile_mix(port: int) -> tuple[bool, tuple[bool, int], bool, list[str], object]:
    """Every kind of hostile peer at once, plus one normal call in the middle of them."""
    misc = asyncio.gather(
        *(peer_closes_immediately(port) for _ in range(20)),
        *(peer_sends_half_environment(port) for _ in range(20)),
    )
    return await asyncio.gather(
        peer_sends_garbage(port, 300_000),
        peer_sends_huge_header(port),
        peer_stalls(port),
        normal_session(port),
        misc,
    )


async def flood(port: int, seen: Callable[[], int], count: int) -> None:
    """Open ``count`` connections, hold them until the server has seen all, then close."""
    seen_before = seen()
    conns = await asyncio.gather(*(connect(port) for _ in range(count)))
    deadline = time.monotonic() + 60  # a hang guard only: a loaded machine may be slow
    # The server runs in another thread's loop: polling is the only way to watch it.
    while seen() - seen_before < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    for _, writer in conns:
        writer.close()


async def bare_server_flood_cost(count: int, backlog: int) -> Heartbeat:
    """The same flood against a bare asyncio server that closes each connection: the peer
    whose cost the machine sets, measured in the same run as ccbridge's."""
    accepted = 0

    async def close_at_once(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    bare = await asyncio.start_server(close_at_once, "127.0.0.1", 0, backlog=backlog)
    try:
        port = bare.sockets[0].getsockname()[1]
        beat = Heartbeat()
        beat.start()
        await elsewhere(flood(port, lambda: accepted, count))
        await beat.stop()
        return beat
    finally:
        bare.close()
        await bare.wait_closed()


def elsewhere(coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """Run the peers' side in their own thread and loop, as a PBX or attacker is another
    process: the heartbeat then measures what the server's own work costs its loop."""
    return asyncio.to_thread(asyncio.run, coro)


async def test_hostile_peers_keep_the_loop_responsive(server: FastAgiServer) -> None:
    port = server.port
    await asyncio.sleep(0)  # let start-up tasks settle before counting
    tasks_before = len(asyncio.all_tasks())
    heartbeat = Heartbeat()
    heartbeat.start()

    garbage_closed, (huge_closed, huge_sent), stalled_closed, commands, _ = await elsewhere(
        hostile_mix(port)
    )
    assert garbage_closed
    assert huge_closed
    assert huge_sent <= 5 * 1024 * 1024
    assert stalled_closed
    assert commands == ["ANSWER", 'VERBOSE "still alive" 1']
    await wait_until(lambda: server.stats.active == 0)
    stats = server.stats
    # 20 early closes + 20 half headers + garbage + 5 MB + stall
    assert stats.header_errors == 43
    assert stats.handler_errors == 0

    await heartbeat.stop()
    assert heartbeat.beats > 50
    assert heartbeat.max_overshoot < MAX_OVERSHOOT, heartbeat

    # the server still serves a normal call afterwards
    assert await normal_session(port) == ["ANSWER", 'VERBOSE "still alive" 1']
    await wait_until(lambda: server.stats.active == 0)
    await asyncio.sleep(0.05)  # let transports finish closing
    assert len(asyncio.all_tasks()) == tasks_before
    assert server.listening


async def test_flood_beyond_the_session_cap_is_refused_without_stalling() -> None:
    """600 connections at once against max_sessions=500: 100 are refused at once.

    asyncio accepts up to ``backlog`` connections per loop turn, so a flood costs more than one
    hostile peer; it must still cost the loop no more than a small multiple of what the same
    flood costs a bare asyncio server in the same run (thread CPU time, so other processes do
    not count; a ratio, so a slow or loaded machine moves both sides). The header timeout is
    long here so that no held connection times out on a slow machine before all 600 arrive.
    """
    router = AgiRouter()
    router.add_route("ivr-main", echo_handler)
    config = AgiServerConfig(port=0, header_timeout=30.0, max_sessions=500, command_timeout=2.0)
    server = FastAgiServer(config, router)
    await server.start()
    try:
        peer_beat = await bare_server_flood_cost(600, backlog=min(4096, max(128, 500)))
        flood_beat = Heartbeat()
        flood_beat.start()
        await elsewhere(flood(server.port, lambda: server.stats.total, 600))
        assert server.stats.refused_capacity == 100
        await wait_until(lambda: server.stats.active == 0, within=30.0)
        await flood_beat.stop()
        allowed = max(FLOOD_FLOOR, FLOOD_MAX_RATIO * peer_beat.max_overshoot)
        assert flood_beat.max_overshoot < allowed, (flood_beat, peer_beat)
        assert await normal_session(server.port) == ["ANSWER", 'VERBOSE "still alive" 1']
    finally:
        await server.stop()


async def test_huge_header_is_not_buffered(server: FastAgiServer) -> None:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        closed, _ = await peer_sends_huge_header(server.port)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert closed
    # the reader's limit is 64 KiB; buffering the 5 MB would show up as >= 5 MB
    assert peak - baseline < 1024 * 1024, peak - baseline
    assert server.stats.header_errors == 1


async def test_early_eof_returns_promptly(server: FastAgiServer) -> None:
    """panoramisk hazard #1 (busy loop on EOF before the blank line) is absent here."""
    heartbeat = Heartbeat()
    heartbeat.start()
    await peer_sends_half_environment(server.port)
    # A hang guard: a session spinning on EOF would never end (and would burn the loop's CPU).
    await wait_until(lambda: server.stats.header_errors == 1 and server.stats.active == 0)
    beats = heartbeat.beats
    await wait_until(lambda: heartbeat.beats > beats + 2)  # the loop still turns
    await heartbeat.stop()
    assert heartbeat.max_overshoot < MAX_OVERSHOOT
    assert server.stats.total == 1


PANORAMISK_PROBE = """
import asyncio, sys
from panoramisk.fast_agi import Application

async def route(request):
    await request.send_command("ANSWER")

async def main():
    app = Application()
    app.add_route("ivr-main", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"agi_network: yes\\nagi_network_script: ivr-main\\n")  # no blank line
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.3)
    print("loop alive", flush=True)

asyncio.run(main())
"""


def test_panoramisk_busy_loop_regression_reference() -> None:
    """Document the contrast: panoramisk 1.4 spins forever on the same early EOF."""
    pytest.importorskip("panoramisk.fast_agi")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [sys.executable, "-c", PANORAMISK_PROBE],
            capture_output=True,
            timeout=2.0,
            check=False,
        )
