"""Alembic environment: async engine, batch mode on SQLite, metadata from ccbridge.db.tables."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import ccbridge.db.access_tables  # noqa: F401  (registers tenants, api_keys, audit_log)
from ccbridge.db import (
    calendar_tables,  # noqa: F401  (the platform's working-day calendar)
    event_tables,  # noqa: F401  (event journal, call params, webhooks)
    floor_tables,  # noqa: F401  (floor rules and alerts)
    ha_tables,  # noqa: F401  (the PBX ownership lease of active/standby nodes)
    idempotency_tables,  # noqa: F401  (Idempotency-Key answers of telephony POSTs)
    ivr_tables,  # noqa: F401  (IVR flows, revisions, prompts, call logs)
    outbound_tables,  # noqa: F401  (agent-dialled calls of the last hour: outbound caps)
    recording_tables,  # noqa: F401  (recordings, FTP accounts, exports)
    routing_tables,  # noqa: F401  (inbound numbers, routing policies, call-back requests)
    seat_tables,  # noqa: F401  (agents, skill groups, leases, seat sessions)
)
from ccbridge.db.engine import DEFAULT_DATABASE_URL, create_engine
from ccbridge.db.tables import Base

config = context.config

# Only the `alembic` CLI passes an ini file; ccbridge.db.migrate keeps the app's logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    """Pick the URL: the config (set by ccbridge.db.migrate), then the env var, then SQLite."""
    return (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("CCBRIDGE_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``) without a database."""
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the revisions on *connection*; SQLite gets batch mode because it can barely ALTER."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds tables (copy, drop, rename); enforced foreign keys would fire
        # ON DELETE actions or block the drop. Checked again below once the rebuild is done.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        if broken:
            raise RuntimeError(f"migration left foreign key violations: {broken[:10]}")


async def run_async_migrations() -> None:
    """Open a throw-away async engine and run the revisions through it."""
    engine = create_engine(database_url(), null_pool=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Use the connection lent by ccbridge.db.migrate, else open one (the CLI path)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
