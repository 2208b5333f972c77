"""Benchmark B5: FastAGI sessions/s and per-command latency, ccbridge vs bare panoramisk 1.4.

Each session is a 5-command script (ANSWER, SET VARIABLE, GET DATA, EXEC NoOp, VERBOSE)
played by an in-process asyncio client that acts as Asterisk 22 (the environment is the real
capture). Server and client share one event loop, pinned to one core when possible.

    .venv/bin/python bench/agi_sessions.py --sessions 5000 --concurrency 1,50,200

Flow execution (the IVR issue's step-latency target, real flows through the production wiring
beside a bare panoramisk route sending the same commands) is ``bench/ivr_flows.py``, also run as

    .venv/bin/python bench/agi_sessions.py --flows --calls 2000 --concurrency 200 --think-ms 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.agi.session import AgiSession

CAPTURE = (
    Path(__file__).resolve().parent.parent
    / "tests/fixtures/asterisk-captures/call-centre-scenarios/fastagi-from-asterisk.txt"
)
# the same five lines both servers write
COMMANDS = (
    "ANSWER",
    'SET VARIABLE IVR_CHOICE "2"',
    'GET DATA "beep" 2000 4',
    'EXEC NoOp "ivr-node-menu"',
    'VERBOSE "ivr done" 1',
)
REPLIES = {
    b"ANSWER": b"200 result=0\n",
    b"SET VARIABLE": b"200 result=1\n",
    b"GET DATA": b"200 result=12\n",
    b"EXEC": b"200 result=0\n",
    b"VERBOSE": b"200 result=1\n",
}


def environment() -> bytes:
    """Return the captured Asterisk 22 environment for script ``ivr-main``."""
    data = CAPTURE.read_bytes()
    return data[: data.index(b"\n\n") + 2]


def reply_for(command: bytes) -> bytes:
    """Answer like Asterisk would for the benchmark's commands."""
    for prefix, reply in REPLIES.items():
        if command.startswith(prefix):
            return reply
    return b"510 Invalid or unknown command\n"


async def play_session(port: int, env: bytes) -> int:
    """Play one Asterisk call: send the environment, answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    commands = 0
    while True:
        line = await reader.readline()
        if not line:
            break
        commands += 1
        writer.write(reply_for(line))
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return commands


async def drive(port: int, sessions: int, concurrency: int) -> float:
    """Run ``sessions`` calls with ``concurrency`` callers; return the wall time in seconds."""
    env = environment()
    remaining = sessions

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await play_session(port, env) != len(COMMANDS):
                raise RuntimeError("server did not send the 5 commands")

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started


@dataclass
class Latencies:
    """Server-side time from writing a command to having its parsed reply, in ns."""

    samples: list[int] = field(default_factory=list)

    def summary(self) -> tuple[float, float]:
        """Return (p50, p99) in microseconds."""
        if len(self.samples) < 2:
            return (0.0, 0.0)
        cuts = statistics.quantiles(self.samples, n=100)
        return (cuts[49] / 1000, cuts[98] / 1000)


def ccbridge_handler(lat: Latencies) -> Callable[[AgiSession], Awaitable[None]]:
    """Build the 5-command handler for ccbridge, timing every command."""
    clock = time.perf_counter_ns
    record = lat.samples.append

    async def handler(session: AgiSession) -> None:
        t0 = clock()
        await session.answer()
        t1 = clock()
        await session.set_variable("IVR_CHOICE", "2")
        t2 = clock()
        await session.get_data("beep", 2000, 4)
        t3 = clock()
        await session.exec("NoOp", "ivr-node-menu")
        t4 = clock()
        await session.verbose("ivr done", 1)
        t5 = clock()
        for start, end in ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)):
            record(end - start)

    return handler


def panoramisk_handler(lat: Latencies) -> Callable[[Any], Awaitable[None]]:
    """Build the same script for panoramisk's Request.send_command."""
    clock = time.perf_counter_ns
    record = lat.samples.append

    async def handler(request: Any) -> None:
        for command in COMMANDS:
            start = clock()
            await request.send_command(command)
            record(clock() - start)

    return handler


async def run_ccbridge(sessions: int, concurrency: int) -> tuple[float, Latencies]:
    """Serve with FastAgiServer and drive it; return (sessions/s, latencies)."""
    lat = Latencies()
    router = AgiRouter()
    router.add_route("ivr-main", ccbridge_handler(lat))
    server = FastAgiServer(AgiServerConfig(port=0, max_sessions=max(500, concurrency)), router)
    await server.start()
    try:
        elapsed = await drive(server.port, sessions, concurrency)
    finally:
        await server.stop()
    return sessions / elapsed, lat


async def run_panoramisk(sessions: int, concurrency: int) -> tuple[float, Latencies]:
    """Serve with panoramisk.fast_agi.Application and drive it the same way."""
    from panoramisk.fast_agi import Application

    lat = Latencies()
    app = Application()
    app.add_route("ivr-main", panoramisk_handler(lat))
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        elapsed = await drive(port, sessions, concurrency)
    finally:
        server.close()
        await server.wait_closed()
    return sessions / elapsed, lat


def pin_to_one_core() -> str:
    """Pin the process to one CPU so both stacks get the same, single core."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


async def main(sessions: int, levels: list[int], rounds: int) -> None:
    """Warm up, then measure both servers at every concurrency level (best of ``rounds``)."""
    await run_ccbridge(300, 10)
    await run_panoramisk(300, 10)
    header = (
        f"{'conc':>5} {'ccbridge s/s':>13} {'panoramisk s/s':>15} {'ratio':>6} "
        f"{'cc p50 us':>10} {'cc p99 us':>10} {'pk p50 us':>10} {'pk p99 us':>10}"
    )
    print(header)
    for level in levels:
        best_cc: tuple[float, Latencies] | None = None
        best_pk: tuple[float, Latencies] | None = None
        for _ in range(rounds):
            cc = await run_ccbridge(sessions, level)
            pk = await run_panoramisk(sessions, level)
            if best_cc is None or cc[0] > best_cc[0]:
                best_cc = cc
            if best_pk is None or pk[0] > best_pk[0]:
                best_pk = pk
        assert best_cc is not None
        assert best_pk is not None
        cc_p50, cc_p99 = best_cc[1].summary()
        pk_p50, pk_p99 = best_pk[1].summary()
        print(
            f"{level:>5} {best_cc[0]:>13,.0f} {best_pk[0]:>15,.0f} "
            f"{best_cc[0] / best_pk[0]:>6.2f} {cc_p50:>10.1f} {cc_p99:>10.1f} "
            f"{pk_p50:>10.1f} {pk_p99:>10.1f}"
        )


def cli() -> None:
    """Parse arguments, quieten logs, pin the CPU and run (``--flows``: the IVR flow bench)."""
    if "--flows" in sys.argv[1:]:
        import ivr_flows  # beside this file: the flow-execution variant of these sessions

        sys.argv.remove("--flows")
        ivr_flows.cli()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--flows",
        action="store_true",
        help="measure IVR flow execution instead (bench/ivr_flows.py; its options follow)",
    )
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--concurrency", default="1,50,200")
    parser.add_argument("--rounds", type=int, default=1, help="best of N runs per level")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("panoramisk").setLevel(logging.WARNING)
    print("not pinned" if args.no_pin else pin_to_one_core())
    levels = [int(level) for level in args.concurrency.split(",")]
    print(f"{args.sessions} sessions x 5 commands per level, client in-process, asyncio loop")
    asyncio.run(main(args.sessions, levels, args.rounds))


if __name__ == "__main__":
    cli()
