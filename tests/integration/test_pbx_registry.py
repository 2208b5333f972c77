"""The PBXs a database knows, and forgetting a retired one (ADR 0033), on SQLite and PostgreSQL;
``ccbridge pbx list`` and ``ccbridge pbx forget`` as an operator runs them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from ccbridge.cli import app
from ccbridge.db.access_tables import TenantRow
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.pbx_ownership import SqlPbxSystemNames
from ccbridge.db.pbx_registry import PbxForgetRefused, SqlPbxRegistry
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.domain.ha.placement import CLUSTER_LEASE

NOW = datetime.now(UTC)


async def _world(sessions: async_sessionmaker[AsyncSession]) -> None:
    """pbx-a served now with tenant ta; pbx-old retired (expired, no tenant, name ast-old)."""
    async with sessions.begin() as s:
        await s.execute(
            insert(PbxOwnerRow),
            [
                {
                    "pbx": pbx,
                    "node": f"n-{pbx}",
                    "epoch": 3,
                    "acquired_at": NOW - timedelta(hours=1),
                    "expires_at": NOW + (timedelta(hours=1) if live else -timedelta(days=2)),
                }
                for pbx, live in (("pbx-a", True), ("pbx-old", False), (CLUSTER_LEASE, True))
            ],
        )
        await s.execute(
            insert(TenantRow),
            [
                {
                    "id": "ta",
                    "name": "ta",
                    "status": "active",
                    "timezone": "Asia/Shanghai",
                    "created_at": NOW,
                    "pbx_id": "pbx-a",
                }
            ],
        )
    names = SqlPbxSystemNames(sessions)
    await names.claim_system_name("pbx-a", "ast-a")
    await names.claim_system_name("pbx-old", "ast-old")
    await SqlRecordCursors(sessions).save("queue_log@pbx-old", NOW)


async def test_known_pbxs_say_who_serves_them_their_name_and_tenants(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _world(session_factory)
    known = await SqlPbxRegistry(session_factory).known()
    assert [(p.pbx, p.live, p.system_name, p.tenants) for p in known] == [
        ("pbx-a", True, "ast-a", 1),
        ("pbx-old", False, "ast-old", 0),
    ]


async def test_a_retired_pbx_is_forgotten_and_its_name_is_free_again(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _world(session_factory)
    registry = SqlPbxRegistry(session_factory)
    names = SqlPbxSystemNames(session_factory)
    assert (await names.claim_system_name("pbx-a", "ast-old")).holder == "pbx-old"
    assert await registry.forget("pbx-old", "queue_log@pbx-old") is True
    assert [p.pbx for p in await registry.known()] == ["pbx-a"]
    assert await SqlRecordCursors(session_factory).load("queue_log@pbx-old") is None
    assert (await names.claim_system_name("pbx-a", "ast-old")).holder is None
    assert await registry.forget("pbx-old", "queue_log@pbx-old") is False  # already gone


@pytest.mark.parametrize(
    ("pbx", "says"),
    [
        ("pbx-a", "node 'n-pbx-a' serves PBX 'pbx-a' now"),
        (CLUSTER_LEASE, "the cluster lease, not a PBX"),
    ],
)
async def test_a_served_pbx_and_the_cluster_lease_are_never_forgotten(
    session_factory: async_sessionmaker[AsyncSession], pbx: str, says: str
) -> None:
    await _world(session_factory)
    with pytest.raises(PbxForgetRefused, match=says):
        await SqlPbxRegistry(session_factory).forget(pbx, "queue_log")
    async with session_factory() as s:
        assert await s.get(PbxOwnerRow, pbx) is not None


async def test_a_pbx_with_tenants_is_not_forgotten_even_when_no_node_serves_it(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _world(session_factory)
    async with session_factory.begin() as s:
        await s.execute(
            update(PbxOwnerRow)
            .where(PbxOwnerRow.pbx == "pbx-a")
            .values(expires_at=NOW - timedelta(minutes=1))
        )
    with pytest.raises(PbxForgetRefused, match=r"1 tenant\(s\) are placed on PBX 'pbx-a'"):
        await SqlPbxRegistry(session_factory).forget("pbx-a", "queue_log@pbx-a")
    async with session_factory() as s:
        assert (await s.execute(select(PbxOwnerRow.pbx))).scalars().all()


def test_the_pbx_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def seed() -> None:
        await run_migrations_async(url)
        engine = create_engine(url)
        try:
            await _world(create_session_factory(engine))
        finally:
            await engine.dispose()

    asyncio.run(seed())
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", url)
    runner = CliRunner()
    listed = runner.invoke(app, ["pbx", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith("pbx-a\tserved by n-pbx-a (epoch 3)\tsystemname='ast-a'\ttenants=1")
    assert lines[1] == "pbx-old\tno live node\tsystemname='ast-old'\ttenants=0"
    refused = runner.invoke(app, ["pbx", "forget", "pbx-a"])
    assert refused.exit_code == 1
    assert "not forgotten: node 'n-pbx-a' serves PBX 'pbx-a' now" in refused.output
    done = runner.invoke(app, ["pbx", "forget", "pbx-old"])
    assert done.exit_code == 0, done.output
    assert "forgot PBX 'pbx-old'" in done.output
    unknown = runner.invoke(app, ["pbx", "forget", "pbx-old"])
    assert unknown.exit_code == 2
    assert "no PBX 'pbx-old' is known" in unknown.output
