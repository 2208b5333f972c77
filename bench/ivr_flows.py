"""Benchmark B8: IVR flow execution on FastAGI, ccbridge's engine vs a bare panoramisk route.

200 (``--concurrency``) fake callers run the bilingual main menu at once: language choice,
menu, "9" (repeat) twice, then "1" (sales). ccbridge runs the real flow (inbound route →
IvrRunner → pure engine → one AGI command per step); the peer is a panoramisk 1.4 FastAGI
route sending the very same command lines in the same order, with no flow logic.

The step time is the server's turnaround as Asterisk sees it: from Asterisk writing a reply to
receiving the next command (the session set-up before the first command is not a step).
The callers run in a separate process (Asterisk is another process too), and each reply
waits a random "media time" of 0–2×``--think-ms`` (a prompt playing, a caller pressing a
key), so 200 calls are concurrently in the flow as on a PBX. ``--think-ms 0`` measures
saturation instead.

    .venv/bin/python bench/ivr_flows.py --calls 2000 --concurrency 200 --think-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from agi_sessions import pin_to_one_core
from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.domain.ivr.model import Flow
from ccbridge.ivr_format.parse import load_document, parse_flow
from ccbridge.services.ivr_ports import ActiveFlow, IvrCallRecord

FLOW = Path(__file__).resolve().parent.parent / "ivr_flows" / "main_menu_bilingual.yaml"
DID = "4008001234"
KEYS = ["2", "9", "9", "1"]
NOW = datetime.fromisoformat("2026-12-01T10:00+08:00")


def environment() -> bytes:
    """An Asterisk 22 AGI environment for one inbound call to the demo DID."""
    lines = {
        "agi_network": "yes",
        "agi_network_script": SCRIPT,
        "agi_request": f"agi://127.0.0.1/{SCRIPT}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": "1795433102.1",
        "agi_version": "22.10.1",
        "agi_callerid": "13800138000",
        "agi_calleridname": "unknown",
        "agi_dnid": DID,
        "agi_context": "ccbridge-inbound",
        "agi_extension": DID,
        "agi_priority": "3",
    }
    return ("".join(f"{k}: {v}\n" for k, v in lines.items()) + "\n").encode()


async def play_call(port: int, env: bytes, think_ms: float, turnaround: list[int]) -> list[bytes]:
    """Be Asterisk for one call: GET DATA takes the next key, everything else succeeds."""
    clock = time.perf_counter_ns
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    sent = clock()
    keys = list(KEYS)
    commands: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            break
        if commands:  # the first command also pays for accept + environment: not a flow step
            turnaround.append(clock() - sent)
        commands.append(line)
        if think_ms:
            await asyncio.sleep(random.uniform(0, 2 * think_ms) / 1000)
        if line.startswith(b"GET DATA"):
            reply = b"200 result=" + (keys.pop(0).encode() if keys else b" (timeout)") + b"\n"
        elif line.startswith(b"STREAM FILE"):
            reply = b"200 result=0 endpos=8000\n"
        elif line.startswith(b"SET VARIABLE"):
            reply = b"200 result=1\n"
        else:
            reply = b"200 result=0\n"
        writer.write(reply)
        sent = clock()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return commands


async def _callers(
    port: int, calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[bytes], list[int]]:
    env = environment()
    remaining = calls
    transcript: list[bytes] = []
    turnaround: list[int] = []

    async def caller() -> None:
        nonlocal remaining, transcript
        while remaining > 0:
            remaining -= 1
            transcript = await play_call(port, env, think_ms, turnaround)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started, transcript, turnaround


def _asterisk_process(port: int, calls: int, concurrency: int, think_ms: float) -> Any:
    """The callers' process (pinned to another core when there is one)."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    return asyncio.run(_callers(port, calls, concurrency, think_ms))


async def drive(
    port: int, calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[bytes], list[int]]:
    """Run the callers in another process; return (wall time, one transcript, turnarounds)."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result: tuple[float, list[bytes], list[int]] = await loop.run_in_executor(
            pool, _asterisk_process, port, calls, concurrency, think_ms
        )
    return result


class _Flows:
    def __init__(self, flow: Flow) -> None:
        self._active = ActiveFlow("t1", "main", 1, flow)

    async def flow_for(self, tenant_id: str, did: str) -> ActiveFlow | None:  # noqa: ARG002
        return self._active


class _Sink:
    def __init__(self) -> None:
        self.records: list[IvrCallRecord] = []

    def record(self, entry: IvrCallRecord) -> None:
        self.records.append(entry)


def summary(samples: list[int]) -> tuple[float, float]:
    """Return (p50, p99) in microseconds."""
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] / 1000, cuts[98] / 1000


async def run_ccbridge(
    flow: Flow, calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[int], Any]:
    """Serve the flow with ccbridge; return (calls/s, turnarounds in ns, a transcript)."""
    sink = _Sink()
    runner = IvrRunner(_Flows(flow), sink, lambda: NOW)
    router = AgiRouter()
    router.add_route(
        SCRIPT, InboundRouteHandler({DID: InboundRoute("t1", "t1-sales")}, None, runner)
    )
    server = FastAgiServer(AgiServerConfig(port=0, max_sessions=max(500, concurrency)), router)
    await server.start()
    try:
        elapsed, transcript, samples = await drive(server.port, calls, concurrency, think_ms)
    finally:
        await server.stop()
    assert len(sink.records) == calls
    assert all(r.target == "sales" for r in sink.records)
    return calls / elapsed, samples, transcript


async def run_panoramisk(
    commands: list[str], calls: int, concurrency: int, think_ms: float
) -> tuple[float, list[int]]:
    """Serve the same command lines from a bare panoramisk route."""
    from panoramisk.fast_agi import Application

    async def handler(request: Any) -> None:
        for command in commands:
            await request.send_command(command)

    app = Application()
    app.add_route(SCRIPT, handler)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        elapsed, _, samples = await drive(port, calls, concurrency, think_ms)
    finally:
        server.close()
        await server.wait_closed()
    return calls / elapsed, samples


async def main(calls: int, concurrency: int, rounds: int, think_ms: float) -> None:
    """Warm up, then measure both (best p99 of ``rounds``) and print figures and ratios."""
    path = FLOW
    parsed = parse_flow(load_document(path.read_bytes(), "application/yaml"))
    assert parsed.flow is not None
    flow = parsed.flow
    _, _, transcript = await run_ccbridge(flow, 200, 20, 0)
    commands = [line.decode().rstrip("\n") for line in transcript]
    await run_panoramisk(commands, 200, 20, 0)
    print(f"{len(commands)} AGI commands per call: " + " | ".join(c[:28] for c in commands))
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(rounds):
        cc_rate, cc_samples, _ = await run_ccbridge(flow, calls, concurrency, think_ms)
        pk_rate, pk_samples = await run_panoramisk(commands, calls, concurrency, think_ms)
        for name, rate, samples in (
            ("ccbridge", cc_rate, cc_samples),
            ("panoramisk", pk_rate, pk_samples),
        ):
            p50, p99 = summary(samples)
            if name not in best or p99 < best[name][2]:
                best[name] = (rate, p50, p99)
    cc, pk = best["ccbridge"], best["panoramisk"]
    print(f"{'':>12} {'calls/s':>9} {'step p50 us':>12} {'step p99 us':>12}")
    for name, (rate, p50, p99) in best.items():
        print(f"{name:>12} {rate:>9,.0f} {p50:>12.1f} {p99:>12.1f}")
    print(
        f"ratio ccbridge/panoramisk: calls/s {cc[0] / pk[0]:.2f}, step p99 {cc[2] / pk[2]:.2f}; "
        f"target step p99 <= 2000 us at {concurrency} concurrent calls: "
        f"{'met' if cc[2] <= 2000 else 'NOT met'}"
    )


def cli() -> None:
    """Parse arguments, quieten logs, pin the CPU and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--think-ms", type=float, default=50.0)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("panoramisk").setLevel(logging.WARNING)
    print("not pinned" if args.no_pin else pin_to_one_core())
    print(f"{args.calls} calls, {args.concurrency} at once, media time 0-{2 * args.think_ms:g} ms")
    asyncio.run(main(args.calls, args.concurrency, args.rounds, args.think_ms))


if __name__ == "__main__":
    cli()
