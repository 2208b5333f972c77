"""ccbridge wired as ``ccbridge serve`` wires it, against the real test PBX (the tier's helper)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from ccbridge.bootstrap import Service, build_calendar_service, build_ivr_fastagi, build_service
from ccbridge.db.engine import create_engine
from ccbridge.db.migrate import run_migrations_async
from ccbridge.domain.access import Role
from ccbridge.settings import Settings
from tests.support.api_rig import auth, create_tenants


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, generated: Path, tenant: str, *, agi_port: int = 0
) -> AsyncIterator[tuple[Service, httpx.AsyncClient, dict[str, str], dict[str, str]]]:
    """ccbridge as ``serve`` wires it, on the real PBX, writing into ``generated``; with an
    ``agi_port`` its FastAGI server listens there for the PBX's calls. Yields the service, an
    HTTP client, the new tenant's admin headers and the platform admin's."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'pbx-config.db'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        ami={
            "host": os.environ["CCBRIDGE_TEST_AMI_HOST"],
            "port": int(os.environ.get("CCBRIDGE_TEST_AMI_PORT", "5038")),
            "username": os.environ["CCBRIDGE_TEST_AMI_USER"],
            "secret": os.environ["CCBRIDGE_TEST_AMI_SECRET"],
        },
        agi={"port": agi_port},
        asterisk_generated_dir=generated,
    )
    calendar = build_calendar_service(engine)
    ivr, agi = build_ivr_fastagi(settings, engine, calendar)
    service = build_service(settings, engine, agi, None, ivr, calendar)
    task = asyncio.create_task(service.ami.run())
    if agi_port:
        await agi.start()
    try:
        await service.ami.wait_synced(10)
        _key, plaintext = await service.access.create_system_key(
            role=Role.PLATFORM_ADMIN, tenant_id=None, name="test", actor="test"
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.http.config.app), base_url="http://ccbridge"
        ) as client:
            admins = await create_tenants(client, auth(plaintext), {tenant: {}})
            yield service, client, admins[tenant], auth(plaintext)
    finally:
        if agi_port:
            await agi.stop()
        await service.ami.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await task
        await engine.dispose()
