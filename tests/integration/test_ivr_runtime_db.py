"""The production IVR wiring on SQLite and PostgreSQL: a published revision is served from the
DB-backed cache to a call on FastAGI, and the call's path lands in ivr_call_logs; each call runs
in the tenant's time zone and re-checks a transfer against the outbound rights in force."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.db.repositories.dial_policies import DialPolicyRepository
from ccbridge.db.repositories.ivr import (
    IvrCallLogRepository,
    IvrFlowRepository,
    IvrPromptRepository,
)
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import ALL_SCOPES, Principal, Role
from ccbridge.domain.acd.membership import queue_name
from ccbridge.domain.dialing import DialPolicy
from ccbridge.domain.leases.model import SeatKind, SeatLease
from ccbridge.ivr_format.parse import YamlJsonFlowCodec
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.dialing import TenantFactsReader
from ccbridge.services.ivr import IvrService
from ccbridge.services.ivr_ports import PromptRecord
from ccbridge.services.ivr_runtime import ActiveFlowCache, BufferedCallLog, CachedTenantFacts
from ccbridge.services.seat_ports import DialPolicyRecord, SkillGroupRecord
from ccbridge.services.tenants import AccessService
from ccbridge.testing.fake_agi import AgiCall
from ccbridge.testing.fake_ivr_caller import FakeIvrCaller
from tests.fakes.ivr import FLOWS_DIR

DID = "4008001234"
ADMIN = Principal("key:ops", Role.PLATFORM_ADMIN, None, ALL_SCOPES)


@contextlib.asynccontextmanager
async def fastagi(runner: IvrRunner) -> AsyncIterator[str]:
    """A FastAGI server that runs tenant t1's flow on DID; yields its AGI URL."""
    router = AgiRouter()
    router.add_route(SCRIPT, InboundRouteHandler({DID: InboundRoute("t1", "t1-x")}, None, runner))
    server = FastAgiServer(AgiServerConfig(port=0), router)
    await server.start()
    try:
        yield f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    finally:
        await server.stop()


async def test_published_flow_runs_from_the_db_and_logs_each_call(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    now = datetime.fromisoformat("2026-12-01T10:00+08:00").astimezone(UTC)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec("x" * 32),
        now=lambda: now,
        token_ttl_seconds=600,
    )
    await access.create_tenant(ADMIN, tenant_id="t1", name="T1")
    flows, prompts = IvrFlowRepository(sessions), IvrPromptRepository(sessions)
    codec = YamlJsonFlowCodec()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), lambda: now)
    groups = SkillGroupRepository(sessions)
    tenants = TenantFactsReader(
        lambda: SqlAccessUnitOfWork(sessions),
        groups,
        LeaseRepository(sessions),
        DialPolicyRepository(sessions),
    )
    for group in ("sales", "service", "vip"):
        await groups.create(SkillGroupRecord("t1", group, queue_name("t1", group)))
    calendar = CalendarService(CalendarRepository(sessions), audit, lambda: now)
    service = IvrService(
        flows, prompts, codec, audit, lambda: now, tenants=tenants, calendar=calendar
    )
    body = (FLOWS_DIR / "main_menu_bilingual.yaml").read_bytes()
    await service.create_flow(ADMIN, "t1", "main", body, "application/yaml")
    parsed = codec.parse(codec.load(body, "application/yaml"))
    assert parsed.flow is not None
    for pid in sorted(parsed.flow.prompt_ids()):
        await prompts.add(PromptRecord("t1", pid, f"f{pid}.wav", 1, 1, now, "test"))
    await service.publish(ADMIN, "t1", "main", "go live")

    logs = IvrCallLogRepository(sessions)
    call_log = BufferedCallLog(logs.add_many)
    cache = ActiveFlowCache(flows, prompts, codec, prompts_root="/srv/prompts", check_every=0)
    runner = IvrRunner(cache, call_log, lambda: now, prompts_root="/srv/prompts")
    async with fastagi(runner) as url:
        chosen = await FakeIvrCaller(url, AgiCall(dnid=DID, uniqueid="1.1"), dtmf=["1", "1"]).run()
        dropped = FakeIvrCaller(
            url, AgiCall(dnid=DID, uniqueid="1.2"), dtmf=["2"], hangup_at_input=2
        )
        await dropped.run()
    assert chosen.variables_set["CCB_QUEUE"] == "t1-sales"
    assert dropped.played[0] == "/srv/prompts/t1/flang_select"
    assert await call_log.flush() == 2
    by_call = {r.uniqueid: r for r in await logs.list("t1")}
    sales = by_call["1.1"]
    assert sales.path == ["hours", "choose_language", "main_menu", "sales"]
    assert {"node": "main_menu", "type": "menu", "input": "1", "outcome": "option:销售 sales"} in (
        sales.steps
    )
    assert (sales.route, sales.target, sales.revision) == ("queue", "sales", 1)
    gone = by_call["1.2"]
    assert (gone.reason, gone.drop_off_node) == ("caller_hung_up", "main_menu")
    assert cache.reloads == 1
    reader = IvrService(
        flows,
        prompts,
        codec,
        audit,
        lambda: now,
        tenants=tenants,
        calendar=calendar,
        call_logs=logs,
    )
    (newest, older) = await reader.call_logs("t1", 10)
    assert {newest.uniqueid, older.uniqueid} == {"1.1", "1.2"}
    assert await reader.call_logs("t2", 10) == []


LONDON_FLOW = {
    "name": "London desk",
    "start": "hours",
    "fallback": {"route": "queue", "target": "sales"},
    "nodes": {
        "hours": {
            "type": "time_switch",
            "hours": [{"days": ["all"], "from": "09:00", "to": "18:00"}],
            "open": "menu",
            "closed": "bye",
        },
        "menu": {
            "type": "menu",
            "prompt": "sys:beep",
            "options": {"1": {"next": "boss"}},
            "on_fail": "bye",
        },
        "boss": {"type": "transfer", "number": "13911112222"},
        "bye": {"type": "hangup"},
    },
}


async def test_a_call_uses_the_tenants_zone_and_rechecks_the_transfer_when_it_starts(
    engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(engine)
    # 10:00 in London, 18:00 (closed) in Shanghai
    now = datetime.fromisoformat("2026-12-01T10:00+00:00")
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec("x" * 32),
        now=lambda: now,
        token_ttl_seconds=600,
    )
    await access.create_tenant(ADMIN, tenant_id="t1", name="T1", timezone="Europe/London")
    groups, leases = SkillGroupRepository(sessions), LeaseRepository(sessions)
    policies = DialPolicyRepository(sessions)
    await groups.create(SkillGroupRecord("t1", "sales", queue_name("t1", "sales")))
    await leases.create(SeatLease("t1", {SeatKind.INBOUND_OUTBOUND: 1}, date(2026, 1, 1)))
    reader = TenantFactsReader(lambda: SqlAccessUnitOfWork(sessions), groups, leases, policies)
    flows, prompts = IvrFlowRepository(sessions), IvrPromptRepository(sessions)
    codec = YamlJsonFlowCodec()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), lambda: now)
    calendar = CalendarService(CalendarRepository(sessions), audit, lambda: now)
    service = IvrService(
        flows, prompts, codec, audit, lambda: now, tenants=reader, calendar=calendar
    )
    await service.create_flow(ADMIN, "t1", "desk", orjson.dumps(LONDON_FLOW), "application/json")
    await service.publish(ADMIN, "t1", "desk", "go live")  # the transfer is allowed now

    logs = IvrCallLogRepository(sessions)
    call_log = BufferedCallLog(logs.add_many)
    cache = ActiveFlowCache(flows, prompts, codec, prompts_root="/p", check_every=0)
    ticks = [0.0]
    facts = CachedTenantFacts(reader, ttl=5.0, monotonic=lambda: ticks[0])
    runner = IvrRunner(cache, call_log, lambda: now, tenants=facts, prompts_root="/p")
    async with fastagi(runner) as url:

        async def call(uniqueid: str) -> dict[str, str]:
            caller = FakeIvrCaller(url, AgiCall(dnid=DID, uniqueid=uniqueid), dtmf=["1"])
            return (await caller.run()).variables_set

        first = await call("2.1")
        # the platform admin narrows the policy after the flow was published
        narrow = DialPolicy(allow=("0",), deny=())
        await policies.put(DialPolicyRecord("t1", narrow, now, "key:ops"))
        cached = await call("2.2")  # facts are read at most every 5 s
        ticks[0] = 5.0
        with capture_logs() as captured:
            refused = await call("2.3")
    assert (first["CCB_ROUTE"], first["CCB_TRANSFER"]) == ("transfer", "13911112222")
    assert cached["CCB_ROUTE"] == "transfer"
    assert (refused["CCB_ROUTE"], refused["CCB_QUEUE"]) == ("queue", "t1-sales")
    assert "CCB_TRANSFER" not in refused
    (warning,) = [e for e in captured if e["event"] == "ivr_transfer_refused"]
    assert (warning["tenant"], warning["node"], warning["number"], warning["refusal"]) == (
        "t1",
        "boss",
        "13911112222",
        "number_not_allowed",
    )
    assert await call_log.flush() == 3
    by_call = {r.uniqueid: r for r in await logs.list("t1")}
    assert by_call["2.1"].path == ["hours", "menu", "boss"]  # open: London time, not Shanghai
    gone = by_call["2.3"]
    assert (gone.route, gone.target, gone.reason) == ("queue", "sales", "transfer_not_allowed")
    assert gone.steps[-1] == {
        "node": "boss",
        "type": "transfer",
        "input": "13911112222",
        "outcome": "number_not_allowed",
    }
