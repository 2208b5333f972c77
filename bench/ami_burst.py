"""B3: a 30k ev/s burst for 60 s from a fake PBX that times each of its socket writes.

Usage: PYTHONPATH=src .venv/bin/python bench/ami_burst.py [--rate 30000] [--seconds 60] [--runs 3]

Asterisk writes each event to a manager session on its own and kicks a reader that leaves a
write blocked longer than ``writetimeout`` (100 ms by default). The fake PBX here runs in its
own process, logs ccbridge in, answers the login resync, then sends the real capture mix
(every event type, distinct calls: Uniqueid/Linkedid rewritten per repetition, ``Timestamp``
set to the send time) one write per event at ``--rate``, timing every write. ccbridge runs
the production path: ``AmiClient`` → ``PbxCoordinator`` → calls, seats and recordings
handlers, with the seat and recording writer tasks running.

Checks, per run: no write blocked > 100 ms (a kick); 0 lost events (the call tracker applied
every telephony event the sent frames carry); lag p99 <= 500 ms (from the PBX's write to the
end of the handlers' batch that took the event). Exit 1 on any miss. There is no peer to run
beside: the figures are absolute (Asterisk's own kick rule is the reference).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import re
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ami_ingest import BANNER, KeepLatest, _reply, capture_mix, production_pbx
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.ami.codec import EventFrame, FrameDecoder, peek_event_name
from ccbridge.asterisk.ami.normalize import normalize
from ccbridge.asterisk.call_feed import LIVE_EVENTS
from ccbridge.bootstrap import freeze_startup_heap

KICK_SECONDS = 0.100
LAG_GOAL = 0.500
_SPLIT = re.compile(
    rb"(?<=(?:Uniqueid|Linkedid|UniqueID|LinkedID): )([0-9]+\.[0-9]+)|(?<=\nTimestamp: )([0-9.]+)"
)


def event_templates() -> list[list[bytes | int]]:
    """Each event frame of the mix as parts: bytes, 1 = a call id to tag, 2 = the timestamp."""
    out: list[list[bytes | int]] = []
    for frame in FrameDecoder(max_frame=1 << 30).feed(capture_mix()):
        if peek_event_name(frame) is None:
            continue
        parts: list[bytes | int] = []
        pos = 0
        for match in _SPLIT.finditer(frame):
            parts.append(frame[pos : match.start()])
            parts.append(1 if match.group(1) is not None else 2)
            if match.group(1) is not None:
                parts.append(match.group(1))
            pos = match.end()
        parts.append(frame[pos:] + b"\r\n\r\n")
        out.append(parts)
    return out


def render(parts: Sequence[bytes | int], tag: bytes, now: float) -> bytes:
    """One event as sent: call ids tagged with the repetition, the send time as Timestamp."""
    out: list[bytes] = []
    tag_next = False
    for part in parts:
        if part == 1:
            tag_next = True
        elif part == 2:
            out.append(b"%.6f" % now)
        elif tag_next:
            out.append(part + tag)  # type: ignore[operator]
            tag_next = False
        else:
            out.append(part)  # type: ignore[arg-type]
    return b"".join(out)


def telephony_events_per_frame(templates: list[list[bytes | int]]) -> list[int]:
    """How many events the call tracker gets from each frame (the 0-lost reference)."""
    counts = []
    for parts in templates:
        raw = render(parts, b".0", time.time())[:-4]
        name = (peek_event_name(raw) or b"").decode()
        if name not in LIVE_EVENTS:  # CoreShowChannel, QueueEntry: resync items, not live
            counts.append(0)
            continue
        counts.append(len(normalize(EventFrame(raw, name), lambda: datetime.now(UTC))))
    return counts


# --------------------------------------------------------------------------- the fake PBX


def fake_pbx(sock: socket.socket, rate: int, total: int, report: Connection) -> None:
    """Child process: log the client in, answer the resync, then burst; report write times."""
    templates = event_templates()
    conn, _ = sock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(BANNER)
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            report.send({"error": "client left before the burst"})
            return
        buf += data
        started = False
        while b"\r\n\r\n" in buf:
            action, buf = buf.split(b"\r\n\r\n", 1)
            reply, name = _reply(action)
            conn.sendall(reply)
            started = started or name == b"queuestatus"
        if started:
            break
    blocked: list[float] = []
    clock = time.perf_counter
    t0 = clock()
    sent = 0
    n = len(templates)
    while sent < total:
        due = min(total, int((clock() - t0) * rate) + 1)
        while sent < due:
            frame = render(templates[sent % n], b".%d" % (sent // n), time.time())
            w0 = clock()
            conn.sendall(frame)  # blocking: returns when the kernel took it all
            blocked.append(clock() - w0)
            sent += 1
        pause = t0 + sent / rate - clock()
        if pause > 0:
            time.sleep(pause)
    elapsed = clock() - t0
    report.send({"sent": sent, "elapsed": elapsed, "blocked": blocked})
    try:  # stay up until the client logs off, as Asterisk would
        conn.settimeout(60)
        while data := conn.recv(65536):
            if b"Logoff" in data:
                conn.sendall(b"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n")
    except OSError:
        pass
    conn.close()


# --------------------------------------------------------------------------- ccbridge


async def run_once(rate: int, seconds: float, counts: list[int]) -> dict[str, float]:
    """One burst against the production path; return the figures."""
    total = int(rate * seconds)
    full, rest = divmod(total, len(counts))
    expected = full * sum(counts) + sum(counts[:rest])
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ours, theirs = mp.Pipe()
    child = mp.get_context("fork").Process(target=fake_pbx, args=(sock, rate, total, theirs))
    child.start()
    client = AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=port,
            username="bench",
            secret="x",
            auth="plain",
            ping_interval=3600,
        )
    )
    sink = KeepLatest()
    pbx, writers = production_pbx(client, sink, attach=False)  # attached once timed below
    lags: list[float] = []
    handle = pbx.on_events

    def timed(frames: Sequence[EventFrame]) -> None:
        handle(frames)
        done = time.time()
        lags.extend(done - float(f.get("Timestamp") or done) for f in frames)

    pbx.on_events = timed  # type: ignore[method-assign]
    pbx.attach()
    freeze_startup_heap()  # as `ccbridge serve` does after wiring
    service = pbx.calls._service  # type: ignore[union-attr]
    tasks = [asyncio.create_task(w.run()) for w in writers]  # type: ignore[attr-defined]
    runner = asyncio.create_task(client.run())
    try:
        await client.wait_synced(30)
        applied0 = 0  # the login resync (empty lists) applies no live event
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, ours.recv)
        if "error" in result:
            raise RuntimeError(result["error"])
        deadline = time.monotonic() + 30
        while service.events_applied - applied0 < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        applied = service.events_applied - applied0
    finally:
        await client.stop()
        await runner
        for task in tasks:
            task.cancel()
        child.join(timeout=40)
        sock.close()
    blocked = sorted(result["blocked"])
    lags.sort()
    return {
        "sent": result["sent"],
        "rate": result["sent"] / result["elapsed"],
        "kicks": sum(1 for b in blocked if b > KICK_SECONDS),
        "write_p99_ms": 1000 * blocked[int(0.99 * (len(blocked) - 1))],
        "write_max_ms": 1000 * blocked[-1],
        "expected": expected,
        "applied": applied,
        "lost": expected - applied,
        "lag_p50_ms": 1000 * lags[len(lags) // 2],
        "lag_p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))],
        "lag_max_ms": 1000 * lags[-1],
        "calls": len(sink.records),
    }


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """min / median / max."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> int:
    """Run ``--runs`` bursts; print min/median/max; exit 1 on a kick, a loss or a slow p99."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    counts = telephony_events_per_frame(event_templates())
    print(
        f"B3 burst: {args.rate:,} ev/s for {args.seconds:g} s, {args.runs} run(s); capture mix "
        f"of {len(counts)} events, {sum(counts)} telephony events per repetition"
    )
    runs = [asyncio.run(run_once(args.rate, args.seconds, counts)) for _ in range(args.runs)]
    for key in ("sent", "rate", "kicks", "write_p99_ms", "write_max_ms", "expected", "applied"):
        print(f"  {key:<14} {spread([r[key] for r in runs])}")
    for key in ("lost", "calls", "lag_p50_ms", "lag_p99_ms", "lag_max_ms"):
        print(f"  {key:<14} {spread([r[key] for r in runs])}")
    worst_kicks = max(r["kicks"] for r in runs)
    worst_lost = max(r["lost"] for r in runs)
    worst_p99 = max(r["lag_p99_ms"] for r in runs)
    ok = worst_kicks == 0 and worst_lost == 0 and worst_p99 <= LAG_GOAL * 1000
    print(
        f"B3 worst run: kicks {worst_kicks:.0f} (goal 0), lost {worst_lost:.0f} (goal 0), "
        f"lag p99 {worst_p99:.0f} ms (goal <= {LAG_GOAL * 1000:.0f}): "
        + ("goal met" if ok else "goal MISSED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
