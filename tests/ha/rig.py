"""The HA drills' world: a migrated throw-away PostgreSQL database with the demo tenants, two
``ccbridge serve`` nodes (subprocesses) against one fake PBX that keeps its queue log, a
webhook receiver, and the checks every drill ends with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text

from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import SqlEventSettings
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.calls import CallRepository
from ccbridge.db.repositories.routing import InboundNumberRepository
from ccbridge.domain.access import Role
from ccbridge.domain.calls.pbx_records import PbxCall, assemble_calls, parse_queue_log_line
from ccbridge.domain.time import SystemClock
from ccbridge.services.call_audit import audit_period
from ccbridge.services.tenants import AccessService
from ccbridge.testing.call_generator import CallHandle, SimulatorConfig
from ccbridge.testing.demo import seed_numbers
from ccbridge.testing.demo_db import seed_demo_database
from ccbridge.testing.fake_pbx import FakeAsterisk, demo_dids
from ccbridge.testing.ha_cluster import (
    NODE_SECRET,
    LeaseKnobs,
    Node,
    NodeSpec,
    start_node,
    wait_for,
)
from tests.integration.conftest import pg_execute
from tests.support.db_cut_proxy import DbCutProxy
from tests.support.event_rig import Receiver, poll_all, serve
from tests.support.gap_drill import assert_every_call_whole

SCALE = 0.05
"""Real seconds per PBX second: a 40 s conversation takes 2 s."""
LEASE = LeaseKnobs(ttl=3.0, renew=0.5, margin=1.0)
"""Short leases keep the drills short; the bench measures the shipped defaults."""
NODES = ("node-a", "node-b")
DIDS = ("4008001234", "4008001235", "4008005678")
SEAT = ("t1", "1101")
HANG_GUARD = 240.0
JWT_SECRET = "ha-drill-jwt-secret-ha-drill-jwt-secret"


@dataclass
class Cluster:
    """Everything a drill touches."""

    pbx: FakeAsterisk
    admin_url: str
    database_url: str
    records: Path
    workdir: Path
    keys: dict[str, dict[str, str]]
    receiver: Receiver
    proxies: dict[str, DbCutProxy] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    handles: list[CallHandle] = field(default_factory=list)
    hook_url: str = ""
    faults: list[str] = field(default_factory=list)
    """Each fault the drill caused (kill, cut, stop), in order."""

    def fault(self, what: str) -> None:
        """Note that the drill is about to kill, cut or stop a node."""
        self.faults.append(what)

    def in_doubt(self) -> Counter[tuple[str, str]]:
        """``(tenant, event id)`` of every delivery a node found in doubt (logged as
        ``webhook_delivery_in_doubt``: claimed by an earlier term, never marked)."""
        found: Counter[tuple[str, str]] = Counter()
        for log_path in self.workdir.glob("*/node.log"):
            for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                if "webhook_delivery_in_doubt" not in line:
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    found[(str(entry.get("tenant")), str(entry.get("event_id")))] += 1
        return found

    async def start(
        self, name: str, *, through_proxy: bool = False, env: dict[str, str] | None = None
    ) -> Node:
        """Start one node; with ``through_proxy`` its database link can be cut; *env* adds or
        overrides settings."""
        url = self.database_url
        if through_proxy:
            real = make_url(url)
            proxy = DbCutProxy(real.host or "127.0.0.1", real.port or 5432)
            await proxy.start()
            self.proxies[name] = proxy
            url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        spec = NodeSpec(
            name,
            url,
            self.pbx.ami_port,
            self.workdir / name,
            self.records / "queue_log",
            LEASE,
            extra_env=env or {},
        )
        node = await start_node(spec)
        self.nodes[name] = node
        return node

    async def call(self, n: int) -> CallHandle:
        """Place the ``n``-th call of a burst: varied numbers, talk times, some abandoned."""
        did = DIDS[n % len(DIDS)]
        if n % 7 == 3:
            handle = await self.pbx.simulator.place_call(did=did, abandon_after=1.0)
        else:
            talk = 20.0 + (n * 13) % 60
            handle = await self.pbx.simulator.place_call(
                did=did, talk_seconds=talk, agent_hangs_up=False
            )
        self.handles.append(handle)
        return handle

    async def burst(self, first: int, count: int, gap: float = 0.25) -> None:
        """Place ``count`` calls, one every ``gap`` real seconds."""
        for n in range(first, first + count):
            await self.call(n)
            await asyncio.sleep(gap)

    async def traffic(self, first: int, stop: asyncio.Event, gap: float = 0.4) -> int:
        """Place calls one every ``gap`` seconds until ``stop``; return the next call number."""
        n = first
        while not stop.is_set():
            await self.call(n)
            n += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(gap):
                    await stop.wait()
        return n

    async def api(self, node: Node) -> httpx.AsyncClient:
        """An HTTP client for one node's API."""
        return httpx.AsyncClient(base_url=node.base_url, timeout=30.0)

    def actions_of(self, user: str) -> list[str]:
        """The actions one node's AMI user sent, in order."""
        return [m.get("Action") or "" for u, m in self.pbx.ami.actions_by if u == user]

    def pbx_calls(self) -> list[PbxCall]:
        """Every call of the PBX's queue log (the undisturbed record of what happened)."""
        text = (self.records / "queue_log").read_text(encoding="utf-8")
        return assemble_calls(e for line in text.split("\n") if (e := parse_queue_log_line(line)))

    async def settle(self) -> None:
        """Every call over on the PBX."""
        async with asyncio.timeout(HANG_GUARD):
            await asyncio.gather(*(h.task for h in self.handles), return_exceptions=True)


async def _seed(url: str) -> dict[str, dict[str, str]]:
    """Demo tenants, agents and phones; a platform key, tenant-admin and CRM keys; webhooks
    of both tenants may reach the loopback receiver."""
    engine = create_engine(url)
    try:
        sessions = create_session_factory(engine)
        access = AccessService(
            lambda: SqlAccessUnitOfWork(sessions),
            JwtCodec(JWT_SECRET),
            now=SystemClock().now,
            token_ttl_seconds=600,
        )
        await seed_demo_database(engine, access)
        keys: dict[str, dict[str, str]] = {}
        _, platform = await access.create_system_key(
            role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
        )
        keys["platform"] = {"Authorization": f"Bearer {platform}"}
        # The demo numbers, assigned as `ccbridge serve --simulate-pbx` assigns them.
        routes = {did: (r.tenant, r.queue) for did, r in demo_dids().items()}
        await seed_numbers(InboundNumberRepository(sessions), routes, SystemClock().now())
        settings = SqlEventSettings(sessions)
        for tenant in ("t1", "t2"):
            for role in (Role.TENANT_ADMIN, Role.CRM):
                _, key = await access.create_system_key(
                    role=role, tenant_id=tenant, name=role.value, actor="test"
                )
                keys[f"{tenant}:{role.value}"] = {"Authorization": f"Bearer {key}"}
            await settings.put(tenant, [], False, ["127.0.0.0/8"])
        return keys
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def cluster(admin_url: str, tmp: Path) -> AsyncIterator[Cluster]:
    """A fresh database, the fake PBX (a user per node) and the webhook receiver; nodes are
    started by the drill and stopped here."""
    name = f"ccbridge_ha_{secrets.token_hex(4)}"
    await pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    records = tmp / "pbx-records"
    failed = False
    try:
        await run_migrations_async(url)
        keys = await _seed(url)
        receiver = Receiver()
        config = SimulatorConfig(ring_seconds=(1.0, 2.0), poll_interval=0.01)
        async with (
            FakeAsterisk(
                users=dict.fromkeys(NODES, NODE_SECRET),
                agi_url=None,
                time_scale=SCALE,
                config=config,
                records_dir=records,
                seed=20,
            ) as pbx,
            serve(receiver) as hook_url,
        ):
            world = Cluster(pbx, admin_url, url, records, tmp, keys, receiver, hook_url=hook_url)
            try:
                yield world
            except BaseException:
                failed = True
                raise
            finally:
                await pbx.simulator.stop()
                for node in world.nodes.values():
                    await node.stop()
                for proxy in world.proxies.values():
                    await proxy.close()
    finally:
        if failed and os.environ.get("CCBRIDGE_HA_KEEP_FAILED_DB") == "1":
            sys.stdout.write(f"kept the failed drill's database {name}\n")
        else:
            await pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def subscribe_webhooks(world: Cluster, node: Node) -> None:
    """One endpoint per tenant, created over one node's API."""
    async with await world.api(node) as http:
        for tenant in ("t1", "t2"):
            resp = await http.post(
                "/api/v1/webhooks",
                json={"url": f"{world.hook_url}/{tenant}"},
                headers=world.keys[f"{tenant}:tenant_admin"],
            )
            assert resp.status_code == 201, resp.text


async def sign_in_seat(world: Cluster, node: Node) -> None:
    """Sign agent 1101 in over one node's API (the owner adds it to its queues)."""
    tenant, agent = SEAT
    async with await world.api(node) as http:
        resp = await http.post(
            f"/api/v1/tenants/{tenant}/seats/{agent}/sign-in", headers=world.keys["platform"]
        )
        assert resp.status_code in (200, 201), resp.text


async def journal_of(world: Cluster, node: Node) -> dict[str, list[dict[str, Any]]]:
    """Both tenants' journals, read whole over one node's API, by tenant."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with await world.api(node) as http:
        for tenant in ("t1", "t2"):
            out[tenant] = await poll_all(http, world.keys[f"{tenant}:crm"])
    return out


async def calls_of(world: Cluster, node: Node, calls: list[PbxCall]) -> dict[str, dict[str, Any]]:
    """``GET /api/v1/calls/{id}`` of every PBX call over one node's API."""
    out: dict[str, dict[str, Any]] = {}
    async with await world.api(node) as http:
        for call in calls:
            resp = await http.get(
                f"/api/v1/calls/{call.linkedid}", headers=world.keys[f"{call.tenant}:crm"]
            )
            assert resp.status_code == 200, (call, resp.text)
            out[call.linkedid] = resp.json()
    return out


async def wait_until_written(world: Cluster, node: Node) -> None:
    """Until the database holds every call of the PBX's queue log as the PBX recorded it
    (the new owner's resync and backfill may still be writing the last ones)."""
    engine = create_engine(world.database_url)
    try:
        repo = CallRepository(create_session_factory(engine))
        log = QueueLogFile(world.records / "queue_log")

        async def audited() -> bool:
            calls = world.pbx_calls()
            if not calls:
                return False
            start = min(c.started_at for c in calls) - timedelta(seconds=1)
            end = max(c.started_at for c in calls) + timedelta(seconds=1)
            checked, diffs = await audit_period(log, repo, start, end)
            if len(checked) != len(calls) or diffs:
                return False
            # ...and each call's last snapshot (its end) is written, not only its outcome.
            stored = await repo.stored([c.linkedid for c in calls])
            return all(r.state.is_final for r in stored.values()) and len(stored) == len(calls)

        await wait_for(audited, "every PBX call stored as the PBX recorded it", HANG_GUARD)
    finally:
        await engine.dispose()


async def stored_journal(world: Cluster) -> dict[str, list[str]]:
    """Each tenant's event ids in cursor order, read straight from the database."""
    engine = create_engine(world.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT tenant, id FROM events ORDER BY tenant, seq"))
            ).all()
    finally:
        await engine.dispose()
    out: dict[str, list[str]] = {"t1": [], "t2": []}
    for tenant, event_id in rows:
        out.setdefault(tenant, []).append(str(event_id))
    return out


@dataclass(frozen=True)
class Verdict:
    """What the end-of-drill checks found, for the drill's own assertions and messages."""

    calls: int
    events: int
    webhook_repeats: int
    """Acknowledged deliveries that reached their receiver a second time (same id)."""
    in_doubt: int
    """Deliveries a node sent again because an earlier claim of it was never marked."""


async def check_calls(world: Cluster, reader: Node) -> dict[str, list[dict[str, Any]]]:
    """Every PBX call whole in the API and the journal (each step once, in order), read
    over ``reader``'s API; return the journal by tenant."""
    await wait_until_written(world, reader)
    calls = world.pbx_calls()
    api = await calls_of(world, reader, calls)
    journal = await journal_of(world, reader)
    # The node's API pages (memory first, database second) are the journal, cursor by cursor.
    stored = await stored_journal(world)
    for tenant, events in journal.items():
        assert [e["id"] for e in events] == stored[tenant], f"{tenant}: API != database"
    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for events in journal.values():
        for env in events:
            # Call steps; the same call's recording.ready has its own lifecycle.
            if env.get("call_id") and env["type"].startswith("call."):
                by_call[env["call_id"]].append(env)
    assert_every_call_whole(calls, api, by_call)
    ids = [env["id"] for events in journal.values() for env in events]
    assert len(ids) == len(set(ids)), "a journal event was written twice"
    return journal


async def check_everything(world: Cluster, reader: Node) -> Verdict:
    """The drill's end state: :func:`check_calls`, no QueueAdd twice, every journal event
    delivered by webhook."""
    journal = await check_calls(world, reader)
    calls = world.pbx_calls()
    ids = [env["id"] for events in journal.values() for env in events]
    # The seat was added to its queues once, by the owner of the day; the next owner found
    # it there and added nothing.
    adds = Counter(
        (m.get("Queue"), m.get("Interface"))
        for _, m in world.pbx.ami.actions_by
        if (m.get("Action") or "").lower() == "queueadd"
    )
    assert adds, "the drill must exercise QueueAdd"
    assert max(adds.values()) == 1, adds
    originates = Counter(
        m.get("ActionID") for _, m in world.pbx.ami.actions_by if m.get("Action") == "Originate"
    )
    assert all(n == 1 for n in originates.values())
    # Webhooks: every journal event of each tenant reached its endpoint.
    want = {t: {env["id"] for env in events} for t, events in journal.items()}

    def delivered() -> dict[str, Counter[str]]:
        got: dict[str, Counter[str]] = {"t1": Counter(), "t2": Counter()}
        for r in world.receiver.received:
            tenant = r.envelope.get("tenant") or ""
            if tenant in got and r.answered is not None and 200 <= r.answered < 300:
                got[tenant][r.headers.get("webhook-id", "")] += 1
        return got

    async def all_delivered() -> bool:
        got = delivered()
        return all(want[t] <= set(got[t]) for t in want)

    await wait_for(all_delivered, "every journal event delivered by webhook", HANG_GUARD)
    got = delivered()
    for tenant, ids_wanted in want.items():
        assert set(got[tenant]) == ids_wanted, tenant  # after dedupe by id: exactly once
    repeats = check_webhook_repeats(world)
    verdict = Verdict(len(calls), len(ids), repeats, sum(world.in_doubt().values()))
    sys.stdout.write(f"drill verdict: {verdict}\n")  # -s shows it
    return verdict


def check_webhook_repeats(world: Cluster) -> int:
    """The strongest statement true at the HTTP boundary (ADR 0030), per endpoint: the only
    acknowledged delivery that reaches its receiver twice is one a fault caught between
    its POST and its mark. The next claimant names it in doubt (its log) and sends it first,
    so nothing reaches the endpoint between the two copies; every other delivery arrives
    once. Return the number of repeats."""
    in_doubt = world.in_doubt()
    repeats = 0
    for tenant in ("t1", "t2"):
        arrivals = [
            (r.headers.get("webhook-id", ""), r.answered is not None and 200 <= r.answered < 300)
            for r in world.receiver.received
            if r.envelope.get("tenant") == tenant
        ]
        acked: Counter[str] = Counter(i for i, ok in arrivals if ok)
        for event_id, n in acked.items():
            if n == 1:
                continue
            repeats += n - 1
            assert world.faults, (tenant, event_id, "repeated without a fault")
            assert n - 1 <= in_doubt[(tenant, event_id)], (tenant, event_id, "not in doubt")
            copies = [k for k, (i, ok) in enumerate(arrivals) if i == event_id and ok]
            between = {i for i, _ in arrivals[copies[0] + 1 : copies[-1]]} - {event_id}
            assert not between, (tenant, event_id, "others arrived between the copies", between)
        # One claim per endpoint at a time: at most one delivery in doubt per fault.
        per_tenant = sum(n for (t, _), n in in_doubt.items() if t == tenant)
        assert per_tenant <= len(world.faults), (tenant, per_tenant, len(world.faults))
    return repeats


async def tail_cursor(world: Cluster, node: Node, tenant: str) -> int:
    """The tenant's newest cursor, read over one node's API."""
    after = 0
    async with await world.api(node) as http:
        while True:
            resp = await http.get(
                "/api/v1/events",
                params={"after": after, "limit": 1000},
                headers=world.keys[f"{tenant}:crm"],
            )
            assert resp.status_code == 200, resp.text
            page = resp.json()
            if not page["items"]:
                return after
            after = int(page["next_after"])


async def first_streamed_call_event(
    world: Cluster, node: Node, tenant: str, after: int, opened: asyncio.Event
) -> dict[str, Any]:
    """Open an SSE stream on ``node`` after ``after`` and return the first call event it
    pushes. A stream waits on the node's hub, which hears other nodes' commits only by
    LISTEN/NOTIFY: without it, this never returns."""
    async with (
        await world.api(node) as http,
        http.stream(
            "GET",
            "/api/v1/events/stream",
            params={"after": after},
            headers=world.keys[f"{tenant}:crm"],
            timeout=httpx.Timeout(10.0, read=None),
        ) as resp,
    ):
        assert resp.status_code == 200
        opened.set()
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                env: dict[str, Any] = json.loads(line[5:])
                if str(env.get("type", "")).startswith("call."):
                    return env
    raise AssertionError("the stream ended without a call event")
