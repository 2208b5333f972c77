"""Several PBXs on one database (issue 20 item 4, ADR 0033): real ``ccbridge serve`` nodes,
one per fake PBX, against one PostgreSQL.

Tenant t1 stays on PBX ``pbx-a`` (systemname ``ast-a``); t2 is moved by the platform admin to
PBX ``pbx-b`` (``ast-b``), the way a provider grows onto a second PBX. Calls go on both PBXs.
Afterwards, read over one node's API (the API spans every PBX): every call of both PBXs'
queue logs is stored whole with its tenant and four variables, each journal step once, no
owner ended another PBX's call, and each node only ever talked to its own PBX. A third PBX
that shares ``ast-a`` is not driven: its node's ``/readyz`` names the clash and the way out,
it sends no action past reading the name, and its calls never reach the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text

from ccbridge.db.engine import create_engine
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.calls.pbx_records import PbxCall, assemble_calls, parse_queue_log_line
from ccbridge.testing.call_generator import CallHandle, SimulatorConfig
from ccbridge.testing.fake_pbx import DidRoute, FakeAsterisk
from ccbridge.testing.ha_cluster import NODE_SECRET, Node, NodeSpec, start_node, wait_for
from tests.ha.rig import HANG_GUARD, LEASE, SCALE, _seed
from tests.integration.conftest import pg_execute
from tests.support.event_rig import poll_all
from tests.support.gap_drill import assert_every_call_whole

pytestmark = pytest.mark.pg

PBXS = {
    "pbx-a": ("ast-a", {"4008001234": DidRoute("t1", "t1-sales")}),
    "pbx-b": ("ast-b", {"4008005678": DidRoute("t2", "t2-service")}),
    "pbx-c": ("ast-a", {"4008001235": DidRoute("t1", "t1-support")}),  # the clash
}
NODE_OF = {"pbx-a": "node-a", "pbx-b": "node-b", "pbx-c": "node-c"}
TENANT_OF = {"pbx-a": "t1", "pbx-b": "t2"}
READ_NAME_ONLY = {"Challenge", "Login", "CoreSettings", "Logoff"}


@contextlib.asynccontextmanager
async def database(pg_database_url: str) -> AsyncIterator[tuple[str, dict[str, dict[str, str]]]]:
    """A fresh migrated database with the demo tenants and keys."""
    admin = make_url(pg_database_url).set(database="postgres").render_as_string(hide_password=False)
    name = f"ccbridge_pbxs_{secrets.token_hex(4)}"
    await pg_execute(admin, f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        await run_migrations_async(url)
        yield url, await _seed(url)
    finally:
        await pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fake_pbx(pbx: str, records: Path) -> FakeAsterisk:
    """One PBX of the provider, with its own systemname, numbers and queue log."""
    system_name, dids = PBXS[pbx]
    return FakeAsterisk(
        users={NODE_OF[pbx]: NODE_SECRET},
        agi_url=None,
        time_scale=SCALE,
        config=SimulatorConfig(ring_seconds=(1.0, 2.0), poll_interval=0.01),
        dids=dids,
        records_dir=records,
        seed=len(pbx) + ord(pbx[-1]),
        system_name=system_name,
    )


async def start(pbx: str, url: str, ami: FakeAsterisk, tmp: Path) -> Node:
    """The node of one PBX (HA on: the cluster lease runs the once-per-database work)."""
    name = NODE_OF[pbx]
    spec = NodeSpec(
        name,
        url,
        ami.ami_port,
        tmp / name,
        tmp / pbx / "queue_log",
        LEASE,
        extra_env={"CCBRIDGE_HA__PBX_ID": pbx},
    )
    return await start_node(spec)


async def synced(node: Node) -> bool:
    checks = await node.readiness() or {}
    return checks.get("pbx_ownership", {}).get("role") == "owner" and bool(
        checks.get("ami", {}).get("synced")
    )


async def burst(ami: FakeAsterisk, did: str, count: int) -> list[CallHandle]:
    """Calls on one PBX: varied talk times, every third one abandoned in the queue."""
    handles = []
    for n in range(count):
        if n % 3 == 2:
            handles.append(await ami.simulator.place_call(did=did, abandon_after=1.0))
        else:
            handles.append(
                await ami.simulator.place_call(
                    did=did, talk_seconds=20.0 + 11 * n, agent_hangs_up=False
                )
            )
        await asyncio.sleep(0.2)
    return handles


def pbx_calls(records: Path) -> list[PbxCall]:
    """Every call of one PBX's queue log."""
    lines = (records / "queue_log").read_text(encoding="utf-8").split("\n")
    return assemble_calls(e for line in lines if (e := parse_queue_log_line(line)))


async def stored_calls(url: str) -> dict[str, tuple[str | None, str]]:
    """``call_id -> (tenant, state)`` of every stored call."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT call_id, tenant, state FROM calls"))).all()
    finally:
        await engine.dispose()
    return {str(r.call_id): (r.tenant, str(r.state)) for r in rows}


async def test_two_pbxs_each_drive_their_own_tenants_and_a_third_with_a_taken_name_is_not_driven(
    pg_database_url: str, tmp_path: Path
) -> None:
    async with database(pg_database_url) as (url, keys):
        pbxs = {pbx: fake_pbx(pbx, tmp_path / pbx) for pbx in PBXS}
        nodes: dict[str, Node] = {}
        async with contextlib.AsyncExitStack() as stack:
            for ami in pbxs.values():
                await stack.enter_async_context(ami)
            try:
                # The first PBX's node adopts every tenant, then the provider adds a PBX...
                nodes["pbx-a"] = await start("pbx-a", url, pbxs["pbx-a"], tmp_path)
                await wait_for(lambda: synced(nodes["pbx-a"]), "node-a drives pbx-a")
                nodes["pbx-b"] = await start("pbx-b", url, pbxs["pbx-b"], tmp_path)
                await wait_for(lambda: synced(nodes["pbx-b"]), "node-b drives pbx-b")
                # ...and moves t2 onto it (no seat, no call of t2 yet).
                async with httpx.AsyncClient(base_url=nodes["pbx-a"].base_url) as http:
                    resp = await http.patch(
                        "/api/v1/tenants/t2", json={"pbx_id": "pbx-b"}, headers=keys["platform"]
                    )
                    assert resp.status_code == 200, resp.text
                    assert resp.json()["pbx_id"] == "pbx-b"

                # A third PBX shares pbx-a's systemname: its node must not drive it.
                nodes["pbx-c"] = await start("pbx-c", url, pbxs["pbx-c"], tmp_path)

                async def refused() -> bool:
                    checks = await nodes["pbx-c"].readiness() or {}
                    return bool(checks.get("pbx_identity", {}).get("reason"))

                await wait_for(refused, "node-c refuses pbx-c")
                identity = (await nodes["pbx-c"].readiness() or {})["pbx_identity"]
                assert identity["system_name"] == "ast-a"
                assert "'pbx-a'" in identity["reason"]
                assert "ccbridge pbx forget pbx-a" in identity["reason"]

                handles = [
                    *await burst(pbxs["pbx-a"], "4008001234", 6),
                    *await burst(pbxs["pbx-b"], "4008005678", 6),
                    *await burst(pbxs["pbx-c"], "4008001235", 3),
                ]
                async with asyncio.timeout(HANG_GUARD):
                    await asyncio.gather(*(h.task for h in handles), return_exceptions=True)

                calls = {pbx: pbx_calls(tmp_path / pbx) for pbx in PBXS}
                assert all(len(c) >= 3 for c in calls.values()), calls
                driven = [*calls["pbx-a"], *calls["pbx-b"]]
                for pbx, tenant in TENANT_OF.items():
                    prefix = f"{PBXS[pbx][0]}-"
                    assert all(c.linkedid.startswith(prefix) for c in calls[pbx])
                    assert {c.tenant for c in calls[pbx]} == {tenant}

                async def all_written() -> bool:
                    stored = await stored_calls(url)
                    return all(
                        c.linkedid in stored and stored[c.linkedid][1] in ("ended", "abandoned")
                        for c in driven
                    )

                await wait_for(all_written, "every call of pbx-a and pbx-b stored", HANG_GUARD)
                stored = await stored_calls(url)
                # Nothing of pbx-c's calls was applied: its ids are pbx-a's form, and the
                # only stored calls are those of the two driven PBXs' queue logs.
                assert set(stored) == {c.linkedid for c in driven}

                # Read over node-b's API: every call whole, each journal step once.
                api: dict[str, dict[str, Any]] = {}
                by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
                async with httpx.AsyncClient(base_url=nodes["pbx-b"].base_url, timeout=30) as http:
                    for call in driven:
                        resp = await http.get(
                            f"/api/v1/calls/{call.linkedid}", headers=keys[f"{call.tenant}:crm"]
                        )
                        assert resp.status_code == 200, resp.text
                        api[call.linkedid] = resp.json()
                    for tenant in ("t1", "t2"):
                        for env in await poll_all(http, keys[f"{tenant}:crm"]):
                            if env.get("call_id") and env["type"].startswith("call."):
                                by_call[env["call_id"]].append(env)
                assert_every_call_whole(driven, api, by_call)

                # Each node talked only to its own PBX; node-c read the name and stopped.
                for pbx, ami in pbxs.items():
                    users = {user for user, _ in ami.ami.actions_by}
                    assert users == {NODE_OF[pbx]}, (pbx, users)
                sent_c = {m.get("Action") or "" for _, m in pbxs["pbx-c"].ami.actions_by}
                assert sent_c <= READ_NAME_ONLY, sent_c
                assert "CoreSettings" in sent_c
            finally:
                for node in nodes.values():
                    await node.stop()
