"""The served FastAGI, wired as ``ccbridge serve`` wires it, shares its tenant-status cache with
the tenants service: suspending a tenant unroutes its numbers (assigned in the database, as the
API assigns them) on the very next call."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.inbound_route import SCRIPT
from ccbridge.bootstrap import build_access_service, build_calendar_service, build_ivr_fastagi
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import ROLE_SCOPES, Principal, Role, TenantStatus
from ccbridge.domain.inbound_numbers import NumberTarget, TargetType
from ccbridge.services.seat_ports import SkillGroupRecord
from ccbridge.services.tenants import TenantChanges
from ccbridge.settings import AgiSettings, IvrSettings, Settings
from ccbridge.testing.fake_agi import AgiCall, FakeAgiClient

DID = "4008001234"
ADMIN = Principal("t", Role.PLATFORM_ADMIN, None, ROLE_SCOPES[Role.PLATFORM_ADMIN])


async def test_suspended_tenants_number_is_unrouted_at_once_and_routed_again_after(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        simulate_pbx=False,
        agi=AgiSettings(port=0),
        ivr=IvrSettings(prompts_dir=tmp_path / "prompts"),
    )
    ivr, agi = build_ivr_fastagi(settings, engine, build_calendar_service(engine))
    access = build_access_service(settings, engine, tenant_status=ivr.tenant_status)
    await access.create_tenant(ADMIN, tenant_id="t1", name="T1")
    await SkillGroupRepository(create_session_factory(engine)).create(
        SkillGroupRecord("t1", "sales", "t1-sales")
    )
    await ivr.routing.numbers.assign(ADMIN, "t1", DID)
    await ivr.routing.numbers.set_target(ADMIN, "t1", DID, NumberTarget(TargetType.GROUP, "sales"))
    await agi.start()

    async def call() -> dict[str, str]:
        url = f"agi://127.0.0.1:{agi.port}/{SCRIPT}"
        result = await FakeAgiClient(url, AgiCall(dnid=DID, extension=DID)).run()
        return {"hung_up": "yes"} if result.hung_up else result.variables_set

    try:
        assert (await call())["CCB_QUEUE"] == "t1-sales"
        await access.update_tenant(ADMIN, "t1", TenantChanges(status=TenantStatus.SUSPENDED))
        assert await call() == {"hung_up": "yes"}
        await access.update_tenant(ADMIN, "t1", TenantChanges(status=TenantStatus.ACTIVE))
        assert (await call())["CCB_QUEUE"] == "t1-sales"
        await access.update_tenant(ADMIN, "t1", TenantChanges(status=TenantStatus.TERMINATED))
        assert await call() == {"hung_up": "yes"}
    finally:
        await agi.stop()
