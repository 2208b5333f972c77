"""B1/B4: AMI ingest throughput of ccbridge's client path vs panoramisk 1.4 on the same bytes.

Usage: .venv/bin/python bench/ami_ingest.py [--mb 50] [--runs 3]

The stream is the recorded call mix (both real Asterisk 22 captures, banner removed), repeated
to ~``--mb`` MB and fed in 64 KiB chunks, like socket reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from ccbridge.asterisk.ami.client import AmiClient, AmiConfig, _Session
from ccbridge.asterisk.ami.codec import AmiMessage, FrameDecoder, peek_event_name
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.domain.calls.model import CallRecord
from ccbridge.services.calls import CallTrackingService

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "asterisk-captures"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
CHUNK = 64 * 1024

# What a call tracker needs (see the brief); everything else is skipped unparsed.
TRACKER_EVENTS = (
    "Newchannel",
    "Newstate",
    "Hangup",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "BridgeEnter",
    "BridgeLeave",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "QueueMemberStatus",
    "QueueMemberPenalty",
    "QueueMemberRinginuse",
)


def build_stream(target_mb: float) -> tuple[bytes, int, int]:
    """Return (stream, events in it, frames in it) for the repeated call mix."""
    one = b""
    for name in ("queue-call-and-sip", "call-centre-scenarios"):
        data = (CAPTURES / name / "ami-from-asterisk.txt").read_bytes()
        assert data.startswith(BANNER)
        one += data[len(BANNER) :]
    frames = FrameDecoder(max_frame=len(one) + 1).feed(one)
    events = sum(1 for f in frames if peek_event_name(f) is not None)
    reps = max(1, int(target_mb * 1e6 // len(one)))
    return one * reps, events * reps, len(frames) * reps


def chunks_of(data: bytes, size: int = CHUNK) -> list[bytes]:
    """Slice the stream like socket reads."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def noop(msg: AmiMessage) -> None:
    """A subscriber that does nothing (measures the library, not the handler)."""


class _DiscardSink:
    """Takes changed call records and drops them (persistence is benchmarked elsewhere)."""

    def __init__(self) -> None:
        self.last: CallRecord | None = None

    def submit(self, record: CallRecord) -> None:
        """Keep only the latest record."""
        self.last = record


def make_client(mode: str) -> AmiClient:
    """A client wired for one variant: no-op subscriptions, catch-all, or the real tracker."""
    client = AmiClient(AmiConfig(host="127.0.0.1", username="bench", secret="x"))
    if mode == "catch-all":
        client.subscribe(None, noop)
    elif mode == "tracker":
        feed = AmiCallFeed(client, CallTrackingService(_DiscardSink()), lambda: datetime.now(UTC))
        feed.attach()
    else:
        for name in TRACKER_EVENTS:
            client.subscribe(name, noop)
    return client


async def _ccbridge_once(chunks: list[bytes], mode: str) -> tuple[float, int, int]:
    """Feed chunks through the client's real reader path and its ordered consumer task."""
    client = make_client(mode)
    session = _Session(asyncio.StreamReader(), None, 1_000_000, 1 << 20)  # type: ignore[arg-type]
    consumer = asyncio.create_task(client._consume(session))
    ingest = client._ingest
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for chunk in chunks:
        ingest(session, chunk)
        await asyncio.sleep(0)  # one loop turn per socket read, as in the reader task
    session.queue.put_nowait(None)
    await consumer
    elapsed = time.perf_counter() - t0
    st = client.status
    return elapsed, st.events_received, st.events_skipped


def run_ccbridge(chunks: list[bytes], mode: str) -> tuple[float, int, int]:
    """One timed ccbridge run in a fresh event loop."""
    return asyncio.run(_ccbridge_once(chunks, mode))


class _NullTransport:
    """Stands in for the socket: panoramisk only writes to it when sending actions."""

    def write(self, data: bytes) -> None:
        """Discard."""

    def close(self) -> None:
        """Nothing to close."""


def run_panoramisk(chunks: list[bytes]) -> float:
    """Bare ``AMIProtocol.data_received`` wired the way Manager wires it, with no callbacks."""
    from panoramisk.ami_protocol import AMIProtocol
    from panoramisk.manager import Manager

    loop = asyncio.new_event_loop()
    try:
        manager = Manager(loop=loop, host="127.0.0.1")
        manager.patterns = []  # drop the default FullyBooted route: no callbacks at all
        manager.callbacks.clear()
        proto = AMIProtocol()
        proto.connection_made(_NullTransport())
        proto.factory = manager
        proto.encoding = manager.encoding = "utf8"
        feed: Callable[[bytes], Any] = proto.data_received
        feed(BANNER)
        t0 = time.perf_counter()
        for chunk in chunks:
            feed(chunk)
        return time.perf_counter() - t0
    finally:
        loop.close()


def best(fn: Callable[[], Any], runs: int) -> Any:
    """Run ``fn`` several times and keep the fastest result (first element is the time)."""
    results = []
    for _ in range(runs):
        gc.collect()
        results.append(fn())
    return min(results, key=lambda r: r[0] if isinstance(r, tuple) else r)


def linear_checks(stream: bytes, steady_mbps: float) -> None:
    """B4: one 8 MB burst buffer and a 16 MB unterminated frame."""
    burst = stream[: 8 * 1024 * 1024]
    cut = burst.rfind(b"\r\n\r\n") + 4
    burst = burst[:cut]

    async def one_buffer() -> float:
        client = make_client(False)
        session = _Session(asyncio.StreamReader(), None, 1_000_000, 1 << 20)  # type: ignore[arg-type]
        consumer = asyncio.create_task(client._consume(session))
        t0 = time.perf_counter()
        client._ingest(session, burst)
        session.queue.put_nowait(None)
        await consumer
        return time.perf_counter() - t0

    t_burst = min(asyncio.run(one_buffer()) for _ in range(3))
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
        f"B4 16 MB unterminated frame: {t_junk * 1000:.0f} ms "
        f"({16 / t_junk:.0f} MB/s), dropped {dec.oversized} frame(s), "
        f"max buffered {dec.pending} B after, next valid frame delivered"
    )


def main() -> None:
    """Build the stream, run every variant, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {0})
    stream, n_events, n_frames = build_stream(args.mb)
    chunks = chunks_of(stream)
    mb = len(stream) / 1e6
    print(
        f"stream: {mb:.1f} MB, {n_events:,} events, {n_frames:,} frames, "
        f"{len(chunks):,} chunks of 64 KiB; best of {args.runs}"
    )

    t_cc, received, skipped = best(lambda: run_ccbridge(chunks, "noop"), args.runs)
    assert received == n_events, (received, n_events)
    t_full, _received_full, skipped_full = best(
        lambda: run_ccbridge(chunks, "catch-all"), args.runs
    )
    t_track, _, _ = best(lambda: run_ccbridge(chunks, "tracker"), args.runs)
    assert skipped_full == 0
    t_pan = best(lambda: run_panoramisk(chunks), args.runs)

    def row(label: str, seconds: float) -> float:
        eps = n_events / seconds
        print(f"{label:<44} {eps:>12,.0f} ev/s {mb / seconds:>8.1f} MB/s  {seconds:6.2f} s")
        return eps

    print("B1 ingest (decode + dispatch, no-op subscribers)")
    eps_cc = row(f"  ccbridge, tracker subscriptions ({skipped / received:.0%} skipped)", t_cc)
    eps_full = row("  ccbridge, full parse (catch-all, no skipping)", t_full)
    eps_pan = row("  panoramisk 1.4 data_received, no callbacks", t_pan)
    print("B1 with state updates (the production call feed: normalise + call tracker)")
    eps_track = row("  ccbridge, AmiCallFeed -> CallTracker", t_track)
    print(
        f"ratio ccbridge/panoramisk: {eps_cc / eps_pan:.2f}x (target >= 2.0x); "
        f"full parse: {eps_full / eps_pan:.2f}x; with call tracking: {eps_track / eps_pan:.2f}x; "
        f"target >= 100k ev/s with tracking: {'met' if eps_track >= 100_000 else 'NOT met'}"
    )
    linear_checks(stream, mb / t_cc)


if __name__ == "__main__":
    main()
