"""Skill groups reach the PBX or ccbridge says so: the whole `serve` wiring against a fake PBX
that reads queues.conf the way Asterisk does (issue 18, item 1).

The fake PBX includes ``<pbx_dir>/queues.conf``; ccbridge writes into
``CCBRIDGE_ASTERISK_GENERATED_DIR``. When the two differ (the PBX reads the wrong folder), a
new skill group answers 502 ``PBX_CONFIG_MISMATCH`` and ``/readyz`` fails on ``pbx_config``
naming the queue; when they agree the group is 201 and the PBX reports the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.bootstrap import Service, build_calendar_service, build_ivr_fastagi, build_service
from ccbridge.domain.access import Role
from ccbridge.settings import Settings
from ccbridge.testing.fake_pbx import FakeAsterisk
from tests.support.api_rig import auth, create_tenants


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Where ccbridge writes its generated config, and another folder (a PBX's wrong one)."""
    generated, elsewhere = tmp_path / "ccbridge-generated", tmp_path / "pbx-etc"
    generated.mkdir()
    elsewhere.mkdir()
    return generated, elsewhere


@contextlib.asynccontextmanager
async def serving(
    engine: AsyncEngine, generated: Path, pbx_reads: Path
) -> AsyncIterator[tuple[Service, FakeAsterisk, httpx.AsyncClient, dict[str, str]]]:
    """ccbridge as `serve` wires it (AMI running, login hooks done) against a fake PBX."""
    pbx = FakeAsterisk(
        users={"ccbridge": "pbx-config-secret"},
        queues=[],
        agi_url=None,
        queues_conf=pbx_reads / "queues.conf",
    )
    await pbx.start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        ami={"host": "127.0.0.1", "secret": "pbx-config-secret"},
        agi={"port": 0},
        asterisk_generated_dir=generated,
    )
    calendar = build_calendar_service(engine)
    ivr, agi = build_ivr_fastagi(settings, engine, calendar)
    service = build_service(settings, engine, agi, pbx.ami_port, ivr, calendar)
    task = asyncio.create_task(service.ami.run())
    try:
        await service.ami.wait_synced(5)
        _key, plaintext = await service.access.create_system_key(
            role=Role.PLATFORM_ADMIN, tenant_id=None, name="test", actor="test"
        )
        app = service.http.config.app
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ccbridge"
        ) as client:
            admins = await create_tenants(client, auth(plaintext), {"t9": {}})
            yield service, pbx, client, admins["t9"]
    finally:
        await service.ami.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await task
        await pbx.stop()


async def _readyz(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/readyz")
    body: dict[str, Any] = resp.json()
    return resp.status_code, body["checks"]["pbx_config"]


async def test_a_pbx_reading_the_wrong_folder_fails_the_group_and_readyz_by_name(
    engine: AsyncEngine, folders: tuple[Path, Path]
) -> None:
    async with serving(engine, *folders) as (
        _service,
        pbx,
        client,
        admin,
    ):
        status, check = await _readyz(client)
        assert check["ok"] is True, check  # nothing owned yet: nothing missing

        resp = await client.post(
            "/api/v1/tenants/t9/skill-groups", json={"name": "sales"}, headers=admin
        )
        assert resp.status_code == 502, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert problem["code"] == "PBX_CONFIG_MISMATCH"
        assert problem["type"].endswith("/pbx_config_mismatch")
        assert "t9-sales" in problem["detail"]
        assert "ccbridge-generated" in problem["detail"]  # where ccbridge wrote it
        assert "t9-sales" not in pbx.model.queues

        status, check = await _readyz(client)
        assert status == 503
        assert check["ok"] is False
        assert check["missing_queues"] == ["t9-sales"]
        assert "t9-sales" in check["detail"]

        # The group is stored (the database is the truth); it is listed as usual.
        listed = await client.get("/api/v1/tenants/t9/skill-groups", headers=admin)
        assert [g["queue"] for g in listed.json()] == ["t9-sales"]


async def test_the_pbx_reading_the_generated_folder_gets_the_queue_and_readyz_recovers(
    engine: AsyncEngine, folders: tuple[Path, Path]
) -> None:
    generated = folders[0]
    async with serving(engine, generated, generated) as (service, pbx, client, admin):
        resp = await client.post(
            "/api/v1/tenants/t9/skill-groups", json={"name": "sales"}, headers=admin
        )
        assert resp.status_code == 201, resp.text
        assert "t9-sales" in pbx.model.queues
        status, check = await _readyz(client)
        assert check == {
            "ok": True,
            "expected_queues": 1,
            "missing_queues": [],
            "missing_members": [],
        }

        # The admin "queue reload"s a config without the include: the periodic check sees it
        # and names the queue; once the include is back, the next check reloads and recovers.
        pbx.model.queues.pop("t9-sales")
        await _recheck(service)
        status, check = await _readyz(client)
        assert (status, check["missing_queues"]) == (503, ["t9-sales"])
        await _recheck(service)  # after a failure the check reloads first: the file is there
        status, check = await _readyz(client)
        assert check["ok"] is True
        assert "t9-sales" in pbx.model.queues


async def _recheck(service: Service) -> None:
    """Run the periodic verification job once, as the job runner would."""
    jobs = {job.name: job for job in service.jobs.jobs}
    await jobs["pbx-config-verify"].run()
