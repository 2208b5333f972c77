"""Alembic revisions against both backends: the migrated schema must equal tables.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import ccbridge.db.access_tables
import ccbridge.db.calendar_tables
import ccbridge.db.floor_tables
import ccbridge.db.ha_tables
import ccbridge.db.outbound_tables
import ccbridge.db.recording_tables
import ccbridge.db.report_tables
import ccbridge.db.routing_tables
import ccbridge.db.sla_tables  # noqa: F401  (these tables join the metadata)
from ccbridge.db import migrate
from ccbridge.db.engine import create_engine
from ccbridge.db.migrate import (
    MigrationsNotFoundError,
    alembic_config,
    migrations_dir,
    run_migrations,
    run_migrations_async,
)
from ccbridge.db.tables import Base


async def schema_diff(url: str) -> list[Any]:
    """Return Alembic's autogenerate diff between the live database and the metadata."""

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(diff)
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    """List the tables that exist in the database at *url*."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_head_matches_metadata(db_url: str) -> None:
    await run_migrations_async(db_url)
    assert await schema_diff(db_url) == []


async def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    await run_migrations_async(db_url)
    await run_migrations_async(db_url)
    assert await table_names(db_url) >= {
        "alembic_version",
        "calls",
        "tenants",
        "api_keys",
        "audit_log",
    }


async def test_downgrade_to_base_and_back(db_url: str) -> None:
    await run_migrations_async(db_url)

    def downgrade(conn: Connection) -> None:
        config = alembic_config(db_url)
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    engine = create_engine(db_url, null_pool=True)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
    finally:
        await engine.dispose()
    assert await table_names(db_url) == {"alembic_version"}
    await run_migrations_async(db_url)
    assert await schema_diff(db_url) == []


def test_sync_entry_point_migrates_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sync.db'}"
    run_migrations(url)
    assert (tmp_path / "sync.db").is_file()


def test_migrations_folder_is_found_from_the_package() -> None:
    assert (migrations_dir() / "versions" / "0001_calls.py").is_file()
    assert migrations_dir() == Path(migrate.__file__).resolve().parents[3] / "migrations"


def test_env_var_overrides_migrations_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(migrate.MIGRATIONS_DIR_ENV, str(tmp_path))
    with pytest.raises(MigrationsNotFoundError, match=str(tmp_path)):
        migrations_dir()


def test_percent_in_url_survives_config_interpolation() -> None:
    url = "postgresql+asyncpg://app:p%40ss@db/ccbridge"
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url


async def test_0009_encrypts_stored_export_passwords_and_localises_the_hour(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from ccbridge.crypto.secret_box import SecretBox
    from ccbridge.db.engine import create_session_factory
    from ccbridge.db.repositories.recordings import RecordingRepository

    key = "migration-test-secrets-key-0123456789"
    monkeypatch.setenv("CCBRIDGE_SECRETS_KEY", key)
    await run_migrations_async(db_url, "0008")
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, name, status, timezone, created_at) "
                    "VALUES ('t1', 'T1', 'active', 'Asia/Shanghai', CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO recording_policies (tenant, retention_months, auto_record, "
                    "export_host, export_port, export_username, export_password, export_tls, "
                    "export_dir, export_hour_utc, updated_at) VALUES ('t1', 1, true, "
                    "'127.0.0.1', 21, 'client', 'plain-pw', false, '/', 18, CURRENT_TIMESTAMP)"
                )
            )
        await run_migrations_async(db_url)
        async with engine.connect() as conn:
            stored, at = (
                await conn.execute(
                    text("SELECT export_password, export_time FROM recording_policies")
                )
            ).one()
        assert "plain-pw" not in stored
        assert at == "02:00"  # 18:00 UTC is 02:00 in Shanghai
        store = RecordingRepository(create_session_factory(engine), cipher=SecretBox(key))
        policy = await store.policy("t1")
        assert policy.export_target is not None
        assert policy.export_target.password == "plain-pw"
        assert policy.export_time is not None
        assert policy.export_time.hour == 2
    finally:
        await engine.dispose()
    assert await schema_diff(db_url) == []


async def test_0012_claims_the_phones_in_use_where_one_tenant_clearly_owns_them(
    db_url: str,
) -> None:
    from sqlalchemy import text

    await run_migrations_async(db_url, "0011")
    engine = create_engine(db_url)
    agents = [
        ("t1", "1", "PJSIP/1001"),  # claimed for t1
        ("t1", "2", "Local/1002@ccbridge-agents"),  # claimed for t1 (the agents context)
        ("t2", "3", "Local/00881234567@outbound-trunk"),  # a trunk: never claimed
        ("t1", "4", "PJSIP/2000"),  # used by two tenants: ambiguous
        ("t2", "5", "PJSIP/2000"),
        ("t2", "6", "PJSIP/3000"),  # one phone by two names in two tenants: ambiguous
        ("t3", "7", "Local/3000@ccbridge-agents"),
        ("t3", "8", "SIP/legacy"),  # not a PJSIP or agents-context phone
    ]
    try:
        async with engine.begin() as conn:
            for tid in ("t1", "t2", "t3"):
                await conn.execute(
                    text(
                        "INSERT INTO tenants (id, name, status, timezone, created_at) "
                        "VALUES (:t, :t, 'active', 'Asia/Shanghai', CURRENT_TIMESTAMP)"
                    ),
                    {"t": tid},
                )
            for tid, no, iface in agents:
                await conn.execute(
                    text(
                        "INSERT INTO agents (tenant_id, agent_no, name, certified, interface, "
                        "seat_kind, version, created_at, updated_at) VALUES (:t, :n, 'x', true, "
                        ":i, 'inbound', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"t": tid, "n": no, "i": iface},
                )
            for sid, iface, closed in (("s1", "PJSIP/4000", None), ("s2", "PJSIP/5000", "x")):
                await conn.execute(
                    text(
                        "INSERT INTO seat_sessions (id, tenant_id, agent_no, kind, interface, "
                        "signed_in_at, signed_out_at, status, version, updated_at) VALUES "
                        "(:id, 't3', '7', 'inbound', :i, CURRENT_TIMESTAMP, "
                        + ("NULL" if closed is None else "CURRENT_TIMESTAMP")
                        + ", '{}', 1, CURRENT_TIMESTAMP)"
                    ),
                    {"id": sid, "i": iface},
                )
        await run_migrations_async(db_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT tenant_id, technology, name, interface FROM endpoints")
                )
            ).all()
        assert sorted(tuple(r) for r in rows) == [
            ("t1", "Local", "1002", "Local/1002@ccbridge-agents"),
            ("t1", "PJSIP", "1001", "PJSIP/1001"),
            ("t3", "PJSIP", "4000", "PJSIP/4000"),  # an open seat's phone; closed ones don't count
        ]
    finally:
        await engine.dispose()
    assert await schema_diff(db_url) == []


async def test_0023_keeps_each_events_json_once_and_gives_it_back_on_downgrade(
    db_url: str,
) -> None:
    import orjson
    from sqlalchemy import text

    from ccbridge.db.engine import create_session_factory
    from ccbridge.db.journal import SqlJournal

    await run_migrations_async(db_url, "0021")
    engine = create_engine(db_url, null_pool=True)
    envelope = {
        "id": "e1",
        "cursor": "1",
        "type": "call.queued",
        "schema_version": 1,
        "tenant": "t1",
        "call_id": "c1",
        "occurred_at": "2026-12-03T09:00:00Z",
        "recorded_at": "2026-12-03T09:00:01Z",
        "data": {"call_id": "c1", "params": {"caller": "主叫", "n": 1.5}, "extras": {}},
    }
    old_data = {"call_id": "c2", "state": "ended"}
    rows = [  # one as written since 0011 (both copies), one from before 0011 (data only)
        ("e1", 1, orjson.dumps(envelope["data"]).decode(), orjson.dumps(envelope)),
        ("e2", 2, orjson.dumps(old_data).decode(), None),
    ]

    async def stored() -> list[tuple[Any, ...]]:
        async with engine.connect() as conn:
            got = await conn.execute(text("SELECT id, data, envelope FROM events ORDER BY seq"))
            return [
                (
                    r[0],
                    None if r[1] is None else orjson.loads(r[1]) if isinstance(r[1], str) else r[1],
                    r[2],
                )
                for r in got
            ]

    def downgrade(conn: Connection) -> None:
        config = alembic_config(db_url)
        config.attributes["connection"] = conn
        command.downgrade(config, "0021")

    try:
        async with engine.begin() as conn:
            for eid, seq, data, env in rows:
                await conn.execute(
                    text(
                        "INSERT INTO events (tenant, seq, id, type, call_id, occurred_at, "
                        "recorded_at, data, envelope, has_extras) VALUES ('t1', :seq, :id, "
                        "'call.queued', 'c1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                        + (
                            "CAST(:data AS json)"
                            if engine.dialect.name == "postgresql"
                            else ":data"
                        )
                        + ", :env, false)"
                    ),
                    {"seq": seq, "id": eid, "data": data, "env": env},
                )
        await run_migrations_async(db_url)
        assert [(r[0], r[1]) for r in await stored()] == [("e1", None), ("e2", old_data)]
        journal = SqlJournal(create_session_factory(engine))
        assert [e.data for e in await journal.list_after("t1", 0, 10)] == [
            envelope["data"],
            old_data,
        ]
        assert (await journal.get("t1", 1)).data == envelope["data"]  # type: ignore[union-attr]

        async with engine.begin() as conn:
            await conn.run_sync(downgrade)
        back = await stored()
        assert [(r[0], r[1]) for r in back] == [("e1", envelope["data"]), ("e2", old_data)]
        assert bytes(back[0][2]) == orjson.dumps(envelope)
    finally:
        await engine.dispose()
    await run_migrations_async(db_url)
    assert await schema_diff(db_url) == []
