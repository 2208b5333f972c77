"""B-WH: what claiming each webhook delivery costs (ADR 0030), beside the unclaimed path.

Usage: .venv/bin/python bench/webhook_claims.py [--events 400] [--rounds 3] [--goal 0.4]
       [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

One endpoint, ``--events`` journal events after its cursor, one dispatcher delivering them in
order to a sender that answers 204 at once (no HTTP: what is measured is the database work
of a delivery). Three modes, each against its peer in the same run:

* ``sqlite``: one node on SQLite (claim and mark, no lease check);
* ``pg``: one node on PostgreSQL (claim ``FOR UPDATE SKIP LOCKED`` and mark);
* ``pg-ha``: an HA owner on PostgreSQL (both also check the lease row ``FOR SHARE``).

The peer is the same dispatcher and store with the claim left out (the mark alone, one
transaction per delivery: the path before ADR 0030). Printed per mode: deliveries/s of the
claimed path, min/median/max over ``--rounds``, and the ratio of its median to the peer's.
Exit 1 when a ratio is below ``--goal``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import SqlEventSettings, SqlJournal
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.calls import CallRepository
from ccbridge.db.webhooks import SqlWebhookStore
from ccbridge.domain.journal.types import EventType, NewEvent
from ccbridge.domain.time import SystemClock
from ccbridge.services.event_hub import EventHub
from ccbridge.services.event_ports import (
    DeliveryAttempt,
    DeliveryClaim,
    SendResult,
    WebhookEndpoint,
    WebhookSecret,
)
from ccbridge.services.events import EventService
from ccbridge.services.webhooks import WebhookDispatcher

TENANT = "t1"
TOKEN = ("default", "bench-node", 1)


class InstantSender:
    """Answers 204 at once; counts the deliveries."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], allow_private: Sequence[str]
    ) -> SendResult:
        del url, body, headers, allow_private  # the port's signature
        self.sent += 1
        return SendResult(True, 204)

    async def check_target(self, url: str, allow_private: Sequence[str]) -> None:  # noqa: ARG002
        return None


class UnclaimedStore(SqlWebhookStore):
    """The peer: no claim transaction, the mark without the claim guard (before ADR 0030)."""

    async def claim(self, endpoint_id: str, seq: int) -> DeliveryClaim | None:
        return DeliveryClaim(endpoint_id, seq, "peer", 0)

    async def advance(
        self,
        endpoint: WebhookEndpoint,
        attempt: DeliveryAttempt | None,
        claim: DeliveryClaim | None = None,  # noqa: ARG002 (left out: the point of the peer)
    ) -> None:
        await super().advance(endpoint, attempt)


async def _pg_admin(url: str, statement: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _prepare(engine: AsyncEngine, events: int, ha: bool) -> tuple[SqlJournal, EventService]:
    sessions = create_session_factory(engine)
    journal = SqlJournal(sessions)
    now = datetime.now(UTC)
    for start in range(0, events, 100):
        await journal.write(
            [
                NewEvent(
                    tenant=TENANT,
                    type=EventType.CALL_QUEUED,
                    occurred_at=now,
                    key=f"bench:{n}",
                    call_id=None,
                    data={"n": n},
                )
                for n in range(start, min(events, start + 100))
            ]
        )
    if ha:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO pbx_owners (pbx, node, epoch, acquired_at, expires_at) "
                    "VALUES (:pbx, :node, :epoch, :now, :until)"
                ),
                {
                    "pbx": TOKEN[0],
                    "node": TOKEN[1],
                    "epoch": TOKEN[2],
                    "now": now,
                    "until": now + timedelta(days=1),
                },
            )
    events_api = EventService(
        journal,
        EventHub(),
        SqlEventSettings(sessions),
        CallRepository(sessions),
        None,
        SystemClock().now,
    )
    return journal, events_api


async def _one_round(
    engine: AsyncEngine,
    journal: SqlJournal,
    events_api: EventService,
    events: int,
    *,
    claimed: bool,
    ha: bool,
) -> float:
    """Deliver every event to a fresh endpoint; return deliveries per second."""
    sessions = create_session_factory(engine)
    store = SqlWebhookStore(sessions) if claimed else UnclaimedStore(sessions)
    if ha:
        store.fence = lambda: TOKEN
        store.idle_in_transaction_ms = 4000
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(
        id=str(uuid.uuid4()),
        tenant=TENANT,
        url="https://crm.example/hook",
        event_types=(),
        secrets=(WebhookSecret("whsec_" + "A" * 32, now),),
        enabled=True,
        cursor=0,
        created_at=now,
    )
    await store.add(endpoint)
    sender = InstantSender()
    dispatcher = WebhookDispatcher(
        store, journal, events_api, sender, EventHub(), SystemClock(), idle_wait=0.01
    )
    started = time.perf_counter()
    while True:
        idle = await dispatcher.step(TENANT, endpoint.id)
        if idle is None or idle > 0:
            break
    elapsed = time.perf_counter() - started
    assert sender.sent == events, (sender.sent, events)
    return events / elapsed


async def _mode(name: str, url: str, args: argparse.Namespace) -> float:
    await run_migrations_async(url)
    engine = create_engine(url)
    try:
        ha = name == "pg-ha"
        journal, events_api = await _prepare(engine, args.events, ha)
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for claimed in (False, True):  # interleaved, so load drifts hit both alike
                rates[claimed].append(
                    await _one_round(
                        engine, journal, events_api, args.events, claimed=claimed, ha=ha
                    )
                )
    finally:
        await engine.dispose()
    ours, peer = rates[True], rates[False]
    ratio = statistics.median(ours) / statistics.median(peer)
    print(
        f"{name:7} claimed: min {min(ours):7.0f} / median {statistics.median(ours):7.0f} / "
        f"max {max(ours):7.0f} deliveries/s; unclaimed peer median "
        f"{statistics.median(peer):7.0f}/s; ratio {ratio:.2f}"
    )
    return ratio


async def _run(args: argparse.Namespace) -> int:
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ratios["sqlite"] = await _mode(
            "sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args
        )
    for mode in ("pg", "pg-ha"):
        name = f"ccbridge_whbench_{secrets.token_hex(4)}"
        await _pg_admin(args.pg, f'CREATE DATABASE "{name}"')
        try:
            url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
            ratios[mode] = await _mode(mode, url, args)
        finally:
            with contextlib.suppress(Exception):
                await _pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    missed = [m for m, r in ratios.items() if r < args.goal]
    verdict = "FAIL " + ", ".join(missed) if missed else "PASS"
    print(f"verdict: {verdict} (goal: claimed ≥ {args.goal:.2f} × the unclaimed peer)")
    return 1 if missed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--goal", type=float, default=0.4)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    sys.exit(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
