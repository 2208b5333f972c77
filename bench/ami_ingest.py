"""B1: AMI ingest with state, the production path beside panoramisk 1.4 on the same bytes.

Usage: PYTHONPATH=src .venv/bin/python bench/ami_ingest.py [--mb 50] [--runs 3]

The stream is the real Asterisk 22 capture mix (both call captures in
/work/shared/asterisk-captures, banner removed, every event type kept: VarSet, CEL, Newexten,
transfers...), repeated to ~``--mb`` MB with the Uniqueid/Linkedid of every repetition
rewritten, so each replayed call is a distinct call. A fake PBX process sends it over a
loopback socket.

- ccbridge: the production path. ``AmiClient`` logs in over the socket; the
  ``PbxCoordinator`` runs the login resync and is the only event sink; its calls handler
  (normalise + ``CallTracker``), seats handler and recordings handler take each socket read's
  events; the seat and recording writer tasks run as in ``ccbridge serve``. Changed call
  snapshots go to a sink that keeps them (persistence is B8).
- panoramisk 1.4 (the peer): ``Manager`` logs in over the same kind of socket and parses the
  same bytes, with no callback but the end marker (it does less work than ccbridge).
The fake PBX is a separate process for both, so neither shares its GIL with the sender.

The clock runs from the fake PBX's first stream byte to the client having read the last
event. Goal: ccbridge >= 2.0x panoramisk and >= 100k ev/s (median of ``--runs``); exit 1 on
a miss. Also B4 (linear framing) as before.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing as mp
import re
import socket
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from ccbridge.asterisk.ami.client import AmiClient, AmiConfig, _Session
from ccbridge.asterisk.ami.codec import FrameDecoder, peek_event_name
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.recording_control import AmiRecordingFeed
from ccbridge.asterisk.seat_feed import AmiSeatFeed
from ccbridge.bootstrap import freeze_startup_heap
from ccbridge.domain.calls.model import CallRecord
from ccbridge.services.calls import CallTrackingService

CAPTURES = Path("/work/shared/asterisk-captures")
FALLBACK = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asterisk-captures"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 64 * 1024
END_MARKER = b"Event: BenchEnd\r\nPrivilege: user,all\r\n\r\n"
GOAL_RATIO = 2.0
GOAL_EPS = 100_000

_IDS = re.compile(rb"(?<=(?:Uniqueid|Linkedid|UniqueID|LinkedID): )([0-9]+\.[0-9]+)")


def capture_mix() -> bytes:
    """Both real call captures, banner removed, back to back."""
    root = CAPTURES if CAPTURES.is_dir() else FALLBACK
    out = b""
    for name in ("queue-call-and-sip", "call-centre-scenarios"):
        data = (root / name / "ami-from-asterisk.txt").read_bytes()
        assert data.startswith(BANNER)
        out += data[len(BANNER) :]
    return out


def build_stream(target_mb: float) -> tuple[bytes, int, int]:
    """Return (stream, events, repetitions): the mix repeated with distinct call ids."""
    one = capture_mix()
    parts = _IDS.split(one)
    reps = max(1, int(target_mb * 1e6 // len(one)))
    pieces: list[bytes] = []
    for rep in range(reps):
        tag = b".%d" % rep
        for i, part in enumerate(parts):
            pieces.append(part + tag if i % 2 else part)
    stream = b"".join(pieces)
    frames = FrameDecoder(max_frame=len(stream) + 1).feed(stream)
    events = sum(1 for f in frames if peek_event_name(f) is not None)
    return stream, events, reps


# --------------------------------------------------------------------------- the fake PBX


def _reply(action: bytes) -> tuple[bytes, bytes]:
    """Answer one action; return (reply bytes, action name)."""
    fields = dict(line.split(b": ", 1) for line in action.split(b"\r\n") if b": " in line)
    name = fields.get(b"Action", b"").lower()
    aid = fields.get(b"ActionID", b"")
    head = b"Response: Success\r\nActionID: " + aid + b"\r\n"
    if name in (b"coreshowchannels", b"queuestatus"):
        done = (
            b"CoreShowChannelsComplete" if name == b"coreshowchannels" else b"QueueStatusComplete"
        )
        return (
            head
            + b"EventList: start\r\nMessage: list will follow\r\n\r\n"
            + b"Event: "
            + done
            + b"\r\nActionID: "
            + aid
            + b"\r\nEventList: Complete\r\nListItems: 0\r\n\r\n",
            name,
        )
    if name == b"logoff":
        return b"Response: Goodbye\r\nActionID: " + aid + b"\r\n\r\n", name
    return head + b"Message: Authentication accepted\r\n\r\n", name


class FakePbx:
    """A blocking loopback AMI server in its own process (so it never holds this process's
    GIL): log in, answer the resync, then send the stream once the trigger action is
    answered; note when the first stream byte went out (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self, stream: bytes, trigger: bytes) -> None:
        self.stream = stream
        self.trigger = trigger
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._started = mp.get_context("fork").Value("d", 0.0)
        self.process = mp.get_context("fork").Process(target=self._serve, daemon=True)
        self.process.start()

    @property
    def started_at(self) -> float:
        """``time.perf_counter()`` when the stream's first byte was written."""
        return float(self._started.value)

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(BANNER)
            buf = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    action, buf = buf.split(b"\r\n\r\n", 1)
                    reply, name = _reply(action)
                    try:
                        conn.sendall(reply)
                        if name == self.trigger:
                            self._started.value = time.perf_counter()
                            view = memoryview(self.stream)
                            for i in range(0, len(view), CHUNK):
                                conn.sendall(view[i : i + CHUNK])
                            conn.sendall(END_MARKER)
                        if name == b"logoff":
                            return
                    except OSError:
                        return

    def close(self) -> None:
        self.sock.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()


# --------------------------------------------------------------------------- ccbridge


class KeepLatest:
    """The call writer's place: takes each changed snapshot and counts the distinct calls
    (the batch writer drains what it holds, so neither keeps every call alive)."""

    def __init__(self) -> None:
        self.records: set[str] = set()
        self.submitted = 0
        self.last: CallRecord | None = None

    def submit(self, record: CallRecord) -> None:
        """Count it and keep only the latest."""
        self.submitted += 1
        self.records.add(record.call_id)
        self.last = record


async def _nothing(*_args: object) -> None:
    """A writer task's database call, left out (B8 measures persistence)."""


def production_pbx(
    client: AmiClient, sink: KeepLatest, *, attach: bool = True
) -> tuple[PbxCoordinator, list[object]]:
    """The coordinator wired as in bootstrap, with the three production handlers."""
    seats = AmiSeatFeed(_nothing)
    recordings = AmiRecordingFeed(_nothing, lambda _channel: None)
    pbx = PbxCoordinator(
        client,
        calls=AmiCallFeed(CallTrackingService(sink), lambda: datetime.now(UTC)),
        seats=seats,
        recordings=recordings,
    )
    if attach:
        pbx.attach()
    return pbx, [seats, recordings]


async def _ccbridge_once(stream: bytes, events: int) -> tuple[float, float, int, int]:
    pbx_server = FakePbx(stream, trigger=b"queuestatus")
    client = AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=pbx_server.port,
            username="bench",
            secret="x",
            auth="plain",
            ping_interval=600,
            event_queue_size=1_000_000,
        )
    )
    sink = KeepLatest()
    pbx, writers = production_pbx(client, sink)
    tasks = [asyncio.create_task(w.run()) for w in writers]  # type: ignore[attr-defined]
    cpu0 = time.thread_time()
    runner = asyncio.create_task(client.run())
    # The stream, its end marker and the two list completions of the login resync.
    expected = events + 1 + 2
    try:
        await client.wait_synced(10)
        while client.status.events_received < expected:  # noqa: ASYNC110 (a plain counter)
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - pbx_server.started_at
        cpu = time.thread_time() - cpu0
    finally:
        await client.stop()
        await runner
        for task in tasks:
            task.cancel()
        pbx_server.close()
    return elapsed, cpu, pbx.events, len(sink.records)


def run_ccbridge(stream: bytes, events: int) -> tuple[float, float, int, int]:
    """One timed ccbridge run in a fresh event loop."""
    return asyncio.run(_ccbridge_once(stream, events))


# --------------------------------------------------------------------------- panoramisk


async def _panoramisk_once(stream: bytes) -> tuple[float, float]:
    from panoramisk.manager import Manager

    pbx_server = FakePbx(stream, trigger=b"login")
    done = asyncio.get_running_loop().create_future()
    manager = Manager(
        loop=asyncio.get_running_loop(),
        host="127.0.0.1",
        port=pbx_server.port,
        username="bench",
        secret="x",
        ping_delay=600,
        ping_interval=600,
    )
    manager.register_event("BenchEnd", lambda *_: done.done() or done.set_result(None))
    try:
        cpu0 = time.thread_time()
        await manager.connect()
        await asyncio.wait_for(done, 300)
        return time.perf_counter() - pbx_server.started_at, time.thread_time() - cpu0
    finally:
        manager.close()
        pbx_server.close()


def run_panoramisk(stream: bytes) -> tuple[float, float]:
    """One timed panoramisk run in a fresh event loop."""
    return asyncio.run(_panoramisk_once(stream))


# --------------------------------------------------------------------------- B4


def linear_checks(stream: bytes, steady_mbps: float) -> None:
    """B4: one 8 MB burst buffer through the reader path, and a 16 MB unterminated frame."""
    burst = stream[: 8 * 1024 * 1024]
    burst = burst[: burst.rfind(b"\r\n\r\n") + 4]

    def one_buffer() -> float:
        client = AmiClient(AmiConfig(host="127.0.0.1", username="bench", secret="x"))
        production_pbx(client, KeepLatest())
        session = _Session(asyncio.StreamReader(), None, 1_000_000, 1 << 20)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        client._ingest(session, burst)
        return time.perf_counter() - t0

    t_burst = min(asyncio.run(_wrap(one_buffer)) for _ in range(3))
    burst_mbps = len(burst) / t_burst / 1e6
    print(
        f"B4 8 MB single buffer: {t_burst * 1000:.0f} ms = {burst_mbps:.0f} MB/s "
        f"({burst_mbps / steady_mbps:.0%} of steady-state {steady_mbps:.0f} MB/s; target >= 50%)"
    )
    junk = b"X" * CHUNK
    valid = b"\r\n\r\nEvent: Newchannel\r\nUniqueid: 1\r\n\r\n"
    dec = FrameDecoder()
    t0 = time.perf_counter()
    for _ in range(16 * 1024 * 1024 // CHUNK):
        dec.feed(junk)
    out = dec.feed(valid)
    t_junk = time.perf_counter() - t0
    assert out == [b"Event: Newchannel\r\nUniqueid: 1"], out
    print(
        f"B4 16 MB unterminated frame: {t_junk * 1000:.0f} ms ({16 / t_junk:.0f} MB/s), "
        f"dropped {dec.oversized} frame(s), next valid frame delivered"
    )


async def _wrap(fn: Callable[[], float]) -> float:
    return fn()


# --------------------------------------------------------------------------- main


def spread(values: list[float]) -> str:
    """min / median / max."""
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


def main() -> int:
    """Run both sides ``--runs`` times, interleaved; print the table; 1 on a missed goal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("panoramisk").setLevel(logging.CRITICAL)
    stream, n_events, reps = build_stream(args.mb)
    freeze_startup_heap()  # as `ccbridge serve` does after wiring (both sides share it)
    print(
        f"stream: {len(stream) / 1e6:.1f} MB, {n_events:,} events "
        f"({reps} repetitions of the capture mix, distinct calls), runs: {args.runs}"
    )
    cc: list[float] = []
    pan: list[float] = []
    cc_cpu: list[float] = []
    pan_cpu: list[float] = []
    calls = handled = 0
    for _ in range(args.runs):
        gc.collect()
        seconds, cpu, handled, calls = run_ccbridge(stream, n_events)
        cc.append(n_events / seconds)
        cc_cpu.append(n_events / cpu)
        gc.collect()
        seconds, cpu = run_panoramisk(stream)
        pan.append(n_events / seconds)
        pan_cpu.append(n_events / cpu)
    ratios = [c / p for c, p in zip(cc, pan, strict=True)]
    print("  ccbridge production path (socket -> coordinator -> calls, seats, recordings)")
    print(f"    ev/s min/median/max: {spread(cc)}")
    print(f"    ev/s per CPU-second of the loop thread: {spread(cc_cpu)}")
    print(f"    events handed to handlers: {handled:,} ({handled / n_events:.1%} of all)")
    print(f"    distinct calls tracked: {calls:,}")
    print("  panoramisk 1.4 Manager over a socket, no callbacks but the end marker")
    print(f"    ev/s min/median/max: {spread(pan)}")
    print(f"    ev/s per CPU-second of the loop thread: {spread(pan_cpu)}")
    ratio = statistics.median(ratios)
    eps = statistics.median(cc)
    print(
        f"B1 ratio ccbridge/panoramisk (same run) min/median/max: "
        f"{min(ratios):.2f} / {ratio:.2f} / {max(ratios):.2f}x (goal >= {GOAL_RATIO}x); "
        f"ccbridge {eps:,.0f} ev/s (goal >= {GOAL_EPS:,})"
    )
    cpu_ratios = [c / p for c, p in zip(cc_cpu, pan_cpu, strict=True)]
    print(
        "   (CPU-time ratio, less sensitive to a loaded machine; not the goal) min/median/max: "
        f"{min(cpu_ratios):.2f} / {statistics.median(cpu_ratios):.2f} / {max(cpu_ratios):.2f}x"
    )
    linear_checks(stream, len(stream) / 1e6 / (n_events / eps))
    ok = ratio >= GOAL_RATIO and eps >= GOAL_EPS
    print("B1 goal met" if ok else "B1 goal MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
