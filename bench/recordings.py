"""Benchmark: recording index search at 100k rows, and FTP RETR throughput vs os.sendfile.

1. Index N recordings (default 100,000) across 10 tenants into a fresh SQLite file (or
   ``--db postgresql+asyncpg://…``) through the repository's bulk insert, migrated schema.
2. Search p50/p99 through ``RecordingRepository.search`` (first page of 50, newest first,
   filtered by tenant + agent_no, tenant + caller, tenant + time range, and a cursor page),
   against the same filters issued as raw SQL on the same connection pool in the same run.
3. RETR a 200 MB file from ccbridge's FTP service (pyftpdlib thread, DB-backed login) with
   ftplib, against ``os.sendfile`` of the same file over a loopback TCP socket.

    .venv/bin/python bench/recordings.py --rows 100000 --file-mb 200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import text

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.ftp_accounts import FtpAccountRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import AuditEntry
from ccbridge.domain.recordings.model import (
    FtpAccount,
    Recording,
    RecordingQuery,
    RecordingStatus,
    recording_path,
)
from ccbridge.domain.recordings.passwords import hash_password
from ccbridge.ftp.bridge import LoopBridge
from ccbridge.ftp.server import FtpServerConfig, FtpService

START = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int) -> list[Recording]:
    out = []
    for i in range(n):
        tenant = f"t{i % 10}"
        at = START + timedelta(seconds=i * 25)
        call_id = f"{int(at.timestamp())}.{i}"
        out.append(
            Recording(
                id=secrets.token_hex(16),
                tenant=tenant,
                call_id=call_id,
                path=recording_path(tenant, call_id, at),
                started_at=at,
                status=RecordingStatus.OK,
                agent_no=f"{1000 + i % 200}",
                skill_group=f"{tenant}-g{i % 5}",
                caller=f"138{i % 50_000:08d}",
                callee="4008001234",
                ended_at=at + timedelta(seconds=90),
                duration_ms=90_000,
                size_bytes=1_440_044,
                sha256="0" * 64,
            )
        )
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


RAW = {
    "agent": "SELECT * FROM recordings WHERE tenant = :t AND agent_no = :a AND status = 'ok' "
    "ORDER BY started_at DESC, id DESC LIMIT 50",
    "caller": "SELECT * FROM recordings WHERE tenant = :t AND caller = :c AND status = 'ok' "
    "ORDER BY started_at DESC, id DESC LIMIT 50",
    "range": "SELECT * FROM recordings WHERE tenant = :t AND started_at >= :f AND started_at < :u "
    "AND status = 'ok' ORDER BY started_at DESC, id DESC LIMIT 50",
}


async def bench_search(url: str, n: int, rounds: int) -> None:
    await run_migrations_async(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    repo = RecordingRepository(sessions)
    data = rows(n)
    t0 = time.perf_counter()
    for i in range(0, n, 5000):
        await repo.add_many(data[i : i + 5000], START)
    print(f"indexed {n:,} recordings in {time.perf_counter() - t0:.1f} s")
    lite = url.startswith("sqlite")
    f, u = START + timedelta(days=5), START + timedelta(days=6)
    fmt = (lambda d: d.replace(tzinfo=None)) if lite else (lambda d: d)
    cases = {
        "agent": (RecordingQuery(tenant="t3", agent_no="1013"), {"t": "t3", "a": "1013"}),
        "caller": (
            RecordingQuery(tenant="t3", caller=data[3].caller),
            {"t": "t3", "c": data[3].caller},
        ),
        "range": (
            RecordingQuery(tenant="t3", started_from=f, started_to=u),
            {"t": "t3", "f": fmt(f), "u": fmt(u)},
        ),
    }
    for name, (query, params) in cases.items():
        ours, raw = [], []
        for _ in range(rounds):
            s = time.perf_counter()
            page = await repo.search(query, None, 50)
            ours.append(time.perf_counter() - s)
            s = time.perf_counter()
            async with sessions() as session:
                got = (await session.execute(text(RAW[name]), params)).all()
            raw.append(time.perf_counter() - s)
        assert len(page) == len(got), (name, len(page), len(got))
        print(
            f"search {name:6} ({len(page)} rows): p50 {pct(ours, 0.5) * 1e3:.2f} ms, "
            f"p99 {pct(ours, 0.99) * 1e3:.2f} ms | raw SQL p50 {pct(raw, 0.5) * 1e3:.2f} ms, "
            f"p99 {pct(raw, 0.99) * 1e3:.2f} ms | ratio p99 {pct(ours, 0.99) / pct(raw, 0.99):.2f}x"
        )
    # Deep cursor page: the keyset stays an index range however far back.
    page = await repo.search(RecordingQuery(tenant="t3"), None, 50)
    cursor = (page[-1].started_at, page[-1].id)
    times = []
    for _ in range(rounds):
        s = time.perf_counter()
        nxt = await repo.search(RecordingQuery(tenant="t3"), cursor, 50)
        times.append(time.perf_counter() - s)
        cursor = (nxt[-1].started_at, nxt[-1].id) if nxt else None
    p50, p99 = pct(times, 0.5) * 1e3, pct(times, 0.99) * 1e3
    print(f"search cursor pages: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    await engine.dispose()


def write_random(path: Path, mb: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(mb):
            fh.write(os.urandom(1 << 20))


def sendfile_rate(path: Path) -> float:
    size = path.stat().st_size
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        with conn, open(path, "rb") as fh:
            offset = 0
            while offset < size:
                offset += os.sendfile(conn.fileno(), fh.fileno(), offset, size - offset)

    th = threading.Thread(target=serve)
    th.start()
    cli = socket.create_connection(("127.0.0.1", port))
    s = time.perf_counter()
    got = 0
    while chunk := cli.recv(1 << 20):
        got += len(chunk)
    elapsed = time.perf_counter() - s
    th.join()
    cli.close()
    srv.close()
    assert got == size
    return size / elapsed / 1e6


async def bench_ftp(url: str, mb: int, rounds: int) -> None:
    import ftplib

    engine = create_engine(url)
    sessions = create_session_factory(engine)
    accounts = FtpAccountRepository(sessions)
    await accounts.add(FtpAccount("bench", "t1", hash_password("bench-pw"), False, START, "bench"))

    async def append(entry: AuditEntry) -> None:
        async with SqlAccessUnitOfWork(sessions) as uow:
            await uow.audit.append(entry)
            await uow.commit()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = root / "t1" / "big.wav"
        big.parent.mkdir(parents=True)
        await asyncio.to_thread(write_random, big, mb)
        service = FtpService(
            FtpServerConfig(root=root, host="127.0.0.1", port=0),
            LoopBridge(asyncio.get_running_loop(), append, accounts.get),
        )
        service.start()

        def retr() -> float:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", service.port)
            ftp.login("bench", "bench-pw")
            got = 0

            def take(chunk: bytes) -> None:
                nonlocal got
                got += len(chunk)

            s = time.perf_counter()
            ftp.retrbinary("RETR big.wav", take, blocksize=1 << 20)
            elapsed = time.perf_counter() - s
            ftp.quit()
            assert got == big.stat().st_size
            return got / elapsed / 1e6

        ftp_rates = [await asyncio.to_thread(retr) for _ in range(rounds)]
        raw_rates = [await asyncio.to_thread(sendfile_rate, big) for _ in range(rounds)]
        service.stop()
    best_ftp, best_raw = max(ftp_rates), max(raw_rates)
    print(
        f"RETR {mb} MB: ccbridge FTP best {best_ftp:,.0f} MB/s (median "
        f"{statistics.median(ftp_rates):,.0f}) | os.sendfile best {best_raw:,.0f} MB/s "
        f"(median {statistics.median(raw_rates):,.0f}) | ratio {best_ftp / best_raw:.2f}x"
    )
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--file-mb", type=int, default=200)
    parser.add_argument("--ftp-rounds", type=int, default=3)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await bench_search(url, args.rows, args.rounds)
        await bench_ftp(url, args.file_mb, args.ftp_rounds)


if __name__ == "__main__":
    asyncio.run(main())
