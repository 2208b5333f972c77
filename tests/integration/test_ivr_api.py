"""IVR flows through the real app on SQLite and PostgreSQL: bad flows are refused with the JSON
path of each fault and nothing is stored; drafts, scheduled publish, revisions, diff, rollback,
simulation, activation and tenant isolation."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.db.repositories.dial_policies import DialPolicyRepository
from ccbridge.db.repositories.ivr import (
    IvrCallLogRepository,
    IvrFlowRepository,
    IvrPromptRepository,
)
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.acd.membership import queue_name
from ccbridge.ivr_format.parse import YamlJsonFlowCodec
from ccbridge.media.sox import SoxPromptConverter
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.dialing import TenantFactsReader
from ccbridge.services.ivr import IvrService
from ccbridge.services.ivr_ports import IvrCallRecord, PromptRecord
from ccbridge.services.ivr_runtime import ActiveFlowCache
from ccbridge.services.seat_ports import SkillGroupRecord
from ccbridge.services.tenants import AccessService
from tests.fakes.ivr import FLOWS_DIR
from tests.fakes.seats import FakeClock
from tests.support.api_rig import auth, create_tenants

SECRET = "integration-test-secret-0123456789abcdef"
BASE = "/api/v1/tenants/t1/ivr"
HOLIDAYS = (date(2026, 12, 25),)
"""The working-day calendar's 2026 holidays in these tests (Christmas Day), stored in the DB."""
YAML = {"content-type": "application/yaml"}
ROOT = Principal(actor="test", role=Role.PLATFORM_ADMIN, tenant_id=None)


@dataclass
class World:
    client: httpx.AsyncClient
    clock: FakeClock
    flows: IvrFlowRepository
    prompts: IvrPromptRepository
    service: IvrService
    groups: SkillGroupRepository
    leases: LeaseRepository
    policies: DialPolicyRepository
    platform: dict[str, str]
    t1: dict[str, str]
    t2: dict[str, str]
    prompts_dir: Path
    calendar: CalendarService

    async def put(
        self,
        flow_id: str,
        body: bytes,
        who: dict[str, str] | None = None,
        yaml: bool = False,
        **params: Any,
    ) -> httpx.Response:
        headers = {**(who or self.t1), **(YAML if yaml else {"content-type": "application/json"})}
        return await self.client.put(
            f"{BASE}/flows/{flow_id}", content=body, headers=headers, params=params
        )

    async def add_groups(self, tenant: str, *names: str) -> None:
        for name in names:
            await self.groups.create(SkillGroupRecord(tenant, name, queue_name(tenant, name)))

    async def nothing_stored(self) -> None:
        assert await self.flows.list_flows("t1") == []
        assert await self.flows.count_revisions("t1") == 0


@pytest.fixture
async def world(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    flows, prompts = IvrFlowRepository(sessions), IvrPromptRepository(sessions)
    groups, leases = SkillGroupRepository(sessions), LeaseRepository(sessions)
    policies = DialPolicyRepository(sessions)
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    await calendar.put(ROOT, 2026, HOLIDAYS, ())
    service = IvrService(
        flows,
        prompts,
        YamlJsonFlowCodec(),
        audit,
        clock.now,
        tenants=TenantFactsReader(
            lambda: SqlAccessUnitOfWork(sessions), groups, leases, policies, calendar
        ),
        calendar=calendar,
        converter=SoxPromptConverter(tmp_path / "prompts"),
        call_logs=IvrCallLogRepository(sessions),
    )
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        ivr_api=service,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, platform, {"t1": {}, "t2": {}})
        yield World(
            client,
            clock,
            flows,
            prompts,
            service,
            groups,
            leases,
            policies,
            platform,
            admins["t1"],
            admins["t2"],
            tmp_path / "prompts",
            calendar,
        )


def _flow(nodes: dict[str, Any], start: str = "a", **extra: Any) -> bytes:
    return orjson.dumps({"name": "test", "start": start, "nodes": nodes, **extra})


def _paths(resp: httpx.Response) -> dict[str, str]:
    return {e["field"]: e.get("code", "") for e in resp.json()["errors"]}


async def test_cyclic_flow_without_exit_is_refused_with_its_path(world: World) -> None:
    body = _flow(
        {
            "a": {"type": "play", "prompt": "p1", "next": "b"},
            "b": {"type": "play", "prompt": "p2", "next": "a"},
        }
    )
    resp = await world.put("main", body)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert _paths(resp) == {"$.nodes.a": "loop_without_exit"}
    await world.nothing_stored()


async def test_loop_through_a_menu_needs_no_limit_but_a_spinning_loop_does(world: World) -> None:
    body = _flow(
        {
            "a": {
                "type": "condition",
                "rules": [{"variable": "tier", "op": "eq", "value": "vip", "next": "q"}],
                "default": "b",
            },
            "b": {"type": "set", "variable": "x", "value": "1", "next": "a"},
            "q": {"type": "queue", "skill_group": "vip"},
        }
    )
    resp = await world.put("main", body)
    assert _paths(resp) == {"$.nodes.a": "loop_without_visit_limit"}
    await world.nothing_stored()


async def test_dangling_transition_and_bad_key_are_refused_with_their_paths(world: World) -> None:
    body = _flow(
        {
            "main_menu": {
                "type": "menu",
                "prompt": "menu",
                "options": {
                    "1": {"next": "sales"},
                    "9": {"next": "nowhere"},
                    "x": {"next": "sales"},
                },
                "on_fail": "sales",
            },
            "sales": {"type": "queue", "skill_group": "sales"},
            "orphan": {"type": "hangup"},
            "odd": {"type": "teleport", "next": "sales"},
        },
        start="main_menu",
    )
    resp = await world.put("main", body)
    assert resp.status_code == 422
    assert _paths(resp) == {
        "$.nodes.main_menu.options.9.next": "dangling_transition",
        "$.nodes.main_menu.options.x": "bad_dtmf_key",
        "$.nodes.odd.type": "unknown_node_type",
    }  # reachability is not judged while a node is unreadable (its edges are unknown)
    body = _flow(
        {"a": {"type": "queue", "skill_group": "s"}, "orphan": {"type": "hangup"}}, start="a"
    )
    resp = await world.put("main", body)
    assert _paths(resp) == {"$.nodes.orphan": "unreachable_node"}
    await world.nothing_stored()


async def test_prompt_given_as_a_path_is_refused(world: World) -> None:
    body = _flow(
        {
            "a": {"type": "play", "prompt": "../../etc/passwd", "next": "h"},
            "h": {"type": "hangup", "prompt": {"zh": "bye", "en": "/etc/shadow"}},
        },
        languages=["zh", "en"],
    )
    resp = await world.put("main", body)
    assert resp.status_code == 422
    assert _paths(resp) == {
        "$.nodes.a.prompt": "bad_prompt_id",
        "$.nodes.h.prompt": "bad_prompt_id",
    }
    assert "../../etc/passwd" in resp.text
    await world.nothing_stored()


async def test_ten_thousand_nodes_are_refused_naming_the_limit(world: World) -> None:
    nodes = {f"n{i}": {"type": "play", "prompt": "p", "next": f"n{i + 1}"} for i in range(10_000)}
    resp = await world.put("main", _flow(nodes, start="n0"))
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {
            "field": "$.nodes",
            "code": "max_nodes",
            "message": "the flow has 10000 nodes; the limit is 500",
        }
    ]
    await world.nothing_stored()


async def test_five_megabytes_are_refused_with_413_naming_the_limit(world: World) -> None:
    body = _flow({"a": {"type": "hangup", "label": "x" * 100}}, description="y" * (5 * 2**20))
    resp = await world.put("main", body)
    assert resp.status_code == 413
    assert resp.json()["errors"][0]["code"] == "max_body_bytes"
    assert "1048576 bytes" in resp.json()["detail"]
    resp = await world.client.post(f"{BASE}/validate", content=body, headers=world.t1)
    assert resp.status_code == 413
    await world.nothing_stored()


async def test_deep_nesting_and_yaml_aliases_are_refused(world: World) -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"k": deep}
    resp = await world.put("main", _flow({"a": {"type": "hangup"}}, layout=deep))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["code"] == "max_depth"
    bomb = b"name: &a x\nstart: a\nnodes: {a: {type: hangup, label: *a}}\n"
    resp = await world.put("main", bomb, yaml=True)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["code"] == "yaml_aliases"
    await world.nothing_stored()


async def test_validate_lists_faults_and_stores_nothing(world: World) -> None:
    body = (FLOWS_DIR / "main_menu_bilingual.yaml").read_bytes()
    resp = await world.client.post(f"{BASE}/validate", content=body, headers={**world.t1, **YAML})
    assert resp.status_code == 200
    out = resp.json()
    assert out["valid"] is False  # no prompt uploaded, no skill group yet: all listed at once
    assert {e["code"] for e in out["errors"]} == {"missing_prompt", "unknown_skill_group"}
    assert "$.nodes.main_menu.prompt.zh" in {e["path"] for e in out["errors"]}
    groups = {e["path"] for e in out["errors"] if e["code"] == "unknown_skill_group"}
    assert groups == {
        "$.fallback.target",
        "$.nodes.sales.skill_group",
        "$.nodes.service.skill_group",
        "$.nodes.vip.skill_group",
    }
    await world.add_groups("t1", "sales", "service")
    out = (
        await world.client.post(f"{BASE}/validate", content=body, headers={**world.t1, **YAML})
    ).json()
    assert [e["path"] for e in out["errors"] if e["code"] == "unknown_skill_group"] == [
        "$.nodes.vip.skill_group"
    ]
    await world.nothing_stored()


async def _upload_prompts(world: World, tenant: str, flow_file: str) -> None:
    from ccbridge.ivr_format.parse import load_document, parse_flow

    path = FLOWS_DIR / flow_file
    media = "yaml" if path.suffix == ".yaml" else "json"
    flow = parse_flow(load_document(path.read_bytes(), media)).flow
    assert flow is not None
    for pid in sorted(flow.prompt_ids()):
        await world.prompts.add(
            PromptRecord(tenant, pid, f"{pid}-x.wav", 100, 1000, world.clock.now(), "test")
        )


async def test_publish_schedule_revisions_diff_rollback_and_activation(world: World) -> None:
    body = (FLOWS_DIR / "main_menu_bilingual.yaml").read_bytes()
    resp = await world.put("main", body, yaml=True)
    assert resp.status_code == 200, resp.text
    assert resp.json()["draft_version"] == 1
    # a flow that references a missing prompt cannot be published
    resp = await world.client.post(
        f"{BASE}/flows/main/publish", json={"message": "v1"}, headers=world.t1
    )
    assert resp.status_code == 422
    assert {e["code"] for e in resp.json()["errors"]} == {"missing_prompt", "unknown_skill_group"}
    assert await world.flows.count_revisions("t1") == 0
    await _upload_prompts(world, "t1", "main_menu_bilingual.yaml")
    await world.add_groups("t1", "sales", "service", "vip", "sales2")

    # tenant roles: effective one working day later by default; earlier is refused
    soon = (world.clock.now() + timedelta(hours=1)).isoformat()
    resp = await world.client.post(
        f"{BASE}/flows/main/publish", json={"message": "v1", "effective_at": soon}, headers=world.t1
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "effective_at"
    resp = await world.client.post(
        f"{BASE}/flows/main/publish", json={"message": "v1"}, headers=world.t1
    )
    assert resp.status_code == 201, resp.text
    rev1 = resp.json()
    assert rev1["revision"] == 1
    assert rev1["activated_at"] is None
    effective = datetime.fromisoformat(rev1["effective_at"])
    assert timedelta(days=1) <= effective - world.clock.now() <= timedelta(days=3)

    cache = ActiveFlowCache(
        world.flows, world.prompts, YamlJsonFlowCodec(), prompts_root="/p", check_every=0
    )
    assert await cache.flow_for("t1", "4008001234") is None
    world.clock.current = effective
    activated = await world.service.activate_due()
    assert [(r.flow_id, r.revision) for r in activated] == [("main", 1)]
    active = await cache.flow_for("t1", "4008001234")
    assert active is not None
    assert active.revision == 1
    assert active.prompt_files["menu_zh"] == "/p/t1/menu_zh-x"

    # edit the draft (optimistic version), publish as platform admin: immediate
    doc = orjson.loads(orjson.dumps(__import__("yaml").safe_load(body)))
    doc["nodes"]["sales"]["skill_group"] = "sales2"
    doc["layout"] = {"hours": {"x": 5, "y": 5}}
    resp = await world.put("main", orjson.dumps(doc), draft_version=1)
    assert resp.json()["draft_version"] == 2
    resp = await world.put("main", orjson.dumps(doc), draft_version=1)
    assert resp.status_code == 409
    resp = await world.client.post(
        "/api/v1/tenants/t1/ivr/flows/main/publish",
        json={"message": "sales2"},
        headers=world.platform,
    )
    assert resp.json()["revision"] == 2
    assert resp.json()["activated_at"] is not None
    active = await cache.flow_for("t1", "")
    assert active is not None
    assert active.revision == 2

    resp = await world.client.get(f"{BASE}/flows/main/diff?from=1&to=2", headers=world.t1)
    assert resp.json() == {
        "nodes": [{"node": "sales", "change": "changed", "fields": ["skill_group"]}],
        "settings": [],
        "layout_changed": True,
    }
    resp = await world.client.post(
        f"{BASE}/flows/main/revisions/1/rollback", json={"message": "back"}, headers=world.platform
    )
    assert resp.status_code == 201
    assert (resp.json()["revision"], resp.json()["rollback_of"]) == (3, 1)
    revs = (await world.client.get(f"{BASE}/flows/main/revisions", headers=world.t1)).json()
    assert [(r["revision"], r["message"]) for r in revs] == [(3, "back"), (2, "sales2"), (1, "v1")]
    one = (await world.client.get(f"{BASE}/flows/main/revisions/3", headers=world.t1)).json()
    assert one["document"]["nodes"]["sales"]["skill_group"] == "sales"

    audit = (await world.client.get("/api/v1/audit", headers=world.t1)).json()["items"]
    actions = [e["action"] for e in audit]
    assert actions[:6] == [
        "ivr.revision.rollback",
        "ivr.revision.publish",
        "ivr.draft.update",
        "ivr.revision.activate",
        "ivr.revision.publish",
        "ivr.flow.create",
    ]

    # another tenant sees nothing
    for path in ("/flows/main", "/flows/main/revisions", "/flows/main/revisions/1"):
        resp = await world.client.get(f"{BASE}{path}", headers=world.t2)
        assert resp.status_code == 404, path


async def test_simulate_over_http_returns_path_and_actions(world: World) -> None:
    body = (FLOWS_DIR / "return_visit_survey.yaml").read_bytes()
    assert (await world.put("survey", body, yaml=True)).status_code == 200
    resp = await world.client.post(
        f"{BASE}/flows/survey/simulate",
        json={
            "digits": ["1", "2", "3", "1", "3#", "1"],
            "at": "2026-12-01T10:00:00+08:00",
            "caller": "13800138000",
        },
        headers=world.t1,
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["path"] == [
        "intro",
        "convenient",
        "solved",
        "attitude",
        "charged",
        "score",
        "complaint",
        "complaints",
    ]
    assert (out["route"], out["target"]) == ("queue", "complaints")
    assert out["variables"]["survey_score"] == "3"
    assert out["actions"][1] == {
        "action": "ask",
        "node": "convenient",
        "prompt": "survey_convenient",
        "timeout_ms": 5000,
        "max_digits": 1,
    }
    resp = await world.client.post(f"{BASE}/flows/survey/simulate", json={}, headers=world.t2)
    assert resp.status_code == 404


async def test_simulated_workdays_hours_are_closed_on_a_holiday_in_the_calendar(
    world: World,
) -> None:
    nodes = {
        "t": {
            "type": "time_switch",
            "hours": [{"days": ["workdays"], "from": "09:00", "to": "18:00"}],
            "open": "o",
            "closed": "c",
        },
        "o": {"type": "queue", "skill_group": "sales"},
        "c": {"type": "hangup"},
    }
    assert (await world.put("hours", _flow(nodes, start="t"))).status_code == 200

    async def ends_at(when: str) -> str:
        resp = await world.client.post(
            f"{BASE}/flows/hours/simulate", json={"at": when}, headers=world.t1
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["path"][-1])

    assert await ends_at("2026-12-24T10:00:00+08:00") == "o"
    assert await ends_at("2026-12-25T10:00:00+08:00") == "c"  # Christmas, in the calendar


async def test_prompt_upload_is_converted_to_8khz_mono_and_unlocks_publishing(
    world: World, tmp_path: Path, sox: str
) -> None:
    tone = tmp_path / "tone.wav"
    proc = await asyncio.create_subprocess_exec(
        sox, "-n", "-r", "44100", "-c", "2", "-b", "16", str(tone), "synth", "0.5", "sine", "440"
    )
    assert await proc.wait() == 0
    resp = await world.client.post(
        f"{BASE}/prompts",
        data={"prompt_id": "hello"},
        files={"file": ("../../etc/passwd.wav", tone.read_bytes(), "audio/wav")},
        headers=world.t1,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["duration_ms"] == 500
    (stored,) = list((world.prompts_dir / "t1").iterdir())
    assert stored.name.startswith("p")
    assert stored.suffix == ".wav"
    with wave.open(str(stored)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    # not audio, and a path as id, are refused; nothing new is stored
    resp = await world.client.post(
        f"{BASE}/prompts",
        data={"prompt_id": "junk"},
        files={"file": ("junk.wav", b"not audio at all", "audio/wav")},
        headers=world.t1,
    )
    assert resp.status_code == 422
    resp = await world.client.post(
        f"{BASE}/prompts",
        data={"prompt_id": "../../etc/passwd"},
        files={"file": ("a.wav", tone.read_bytes(), "audio/wav")},
        headers=world.t1,
    )
    assert resp.status_code == 422
    assert len(list((world.prompts_dir / "t1").iterdir())) == 1
    listed = (await world.client.get(f"{BASE}/prompts", headers=world.t1)).json()
    assert [p["prompt_id"] for p in listed] == ["hello"]
    # played back as stored (what callers hear); another tenant's prompt is a 404
    resp = await world.client.get(f"{BASE}/prompts/hello/file", headers=world.t1)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "audio/wav"
    assert resp.content == stored.read_bytes()
    resp = await world.client.get(f"{BASE}/prompts/hello/file", headers=world.t2)
    assert resp.status_code == 404
    resp = await world.client.get(f"{BASE}/prompts/missing/file", headers=world.t1)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    # a flow using it publishes; one using a missing prompt does not
    body = _flow({"a": {"type": "play", "prompt": "hello", "next": "h"}, "h": {"type": "hangup"}})
    assert (await world.put("hi", body)).status_code == 200
    resp = await world.client.post(
        f"{BASE}/flows/hi/publish", json={"message": "hi"}, headers=world.platform
    )
    assert resp.status_code == 201, resp.text
    body = _flow({"a": {"type": "play", "prompt": "gone", "next": "h"}, "h": {"type": "hangup"}})
    assert (await world.put("hi", body, draft_version=1)).status_code == 200
    resp = await world.client.post(
        f"{BASE}/flows/hi/publish", json={"message": "gone"}, headers=world.platform
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "$.nodes.a.prompt"
    assert await world.flows.count_revisions("t1") == 1


async def test_call_logs_are_listed_per_tenant(world: World, engine: AsyncEngine) -> None:
    logs = IvrCallLogRepository(create_session_factory(engine))
    now = world.clock.now()
    await logs.add_many(
        [
            IvrCallRecord(
                "t1",
                "main",
                2,
                "9.1",
                "138",
                now,
                now,
                ["hours", "main_menu"],
                [{"node": "main_menu", "type": "menu", "input": None, "outcome": "no_input"}],
                "hangup",
                "",
                "caller_hung_up",
                "main_menu",
            )
        ]
    )
    resp = await world.client.get(f"{BASE}/calls", headers=world.t1)
    assert resp.status_code == 200
    (call,) = resp.json()
    assert (call["uniqueid"], call["drop_off_node"], call["path"]) == (
        "9.1",
        "main_menu",
        ["hours", "main_menu"],
    )
    assert (await world.client.get(f"{BASE}/calls", headers=world.t2)).status_code == 404
    assert (await world.client.get("/api/v1/tenants/t2/ivr/calls", headers=world.t2)).json() == []


async def _tenant(world: World, tenant_id: str, timezone: str) -> dict[str, str]:
    """A tenant in ``timezone`` with a tenant-admin key."""
    resp = await world.client.post(
        "/api/v1/tenants",
        json={"id": tenant_id, "name": tenant_id, "timezone": timezone},
        headers=world.platform,
    )
    assert resp.status_code == 201, resp.text
    resp = await world.client.post(
        f"/api/v1/tenants/{tenant_id}/api-keys",
        json={"name": "admin", "role": "tenant_admin"},
        headers=world.platform,
    )
    return auth(resp.json()["key"])


@pytest.mark.parametrize(
    ("timezone", "now", "earliest"),
    [
        # Friday 23:30 in London is already Saturday 07:30 in Shanghai: Monday 23:30 London,
        # not Monday 07:30 Shanghai (Sunday 23:30 UTC).
        ("Europe/London", "2026-12-04T23:30:00+00:00", "2026-12-07T23:30:00+00:00"),
        # Thursday 20:00 in New York is Christmas morning in Shanghai: Friday 25th is a
        # holiday and the weekend follows, so Monday 28th 20:00 New York.
        ("America/New_York", "2026-12-25T01:00:00+00:00", "2026-12-29T01:00:00+00:00"),
        # Sunday 22:00 in New York: the next working day is Monday, 24 hours on.
        ("America/New_York", "2026-11-30T03:00:00+00:00", "2026-12-01T03:00:00+00:00"),
        # Shanghai tenants keep their rule: Friday 10:00 → Monday 10:00.
        ("Asia/Shanghai", "2026-12-04T02:00:00+00:00", "2026-12-07T02:00:00+00:00"),
    ],
)
async def test_default_publish_time_is_one_working_day_in_the_tenants_zone(
    world: World, timezone: str, now: str, earliest: str
) -> None:
    who = await _tenant(world, "tz", timezone)
    world.clock.current = datetime.fromisoformat(now)
    flows = "/api/v1/tenants/tz/ivr/flows"
    body = _flow({"a": {"type": "hangup"}})
    put = await world.client.put(
        f"{flows}/main", content=body, headers={**who, "content-type": "application/json"}
    )
    assert put.status_code == 200, put.text
    due = datetime.fromisoformat(earliest)
    early = (due - timedelta(minutes=1)).isoformat()
    resp = await world.client.post(
        f"{flows}/main/publish", json={"message": "early", "effective_at": early}, headers=who
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "effective_at"
    assert await world.flows.count_revisions("tz") == 0
    resp = await world.client.post(f"{flows}/main/publish", json={"message": "v1"}, headers=who)
    assert resp.status_code == 201, resp.text
    assert datetime.fromisoformat(resp.json()["effective_at"]) == due
    resp = await world.client.post(
        f"{flows}/main/publish",
        json={"message": "on time", "effective_at": due.isoformat()},
        headers=who,
    )
    assert resp.status_code == 201, resp.text


async def test_publish_time_counts_a_makeup_saturday_stored_in_the_calendar(world: World) -> None:
    who = await _tenant(world, "mk", "Asia/Shanghai")
    flows = "/api/v1/tenants/mk/ivr/flows"
    body = _flow({"a": {"type": "hangup"}})
    put = await world.client.put(
        f"{flows}/main", content=body, headers={**who, "content-type": "application/json"}
    )
    assert put.status_code == 200, put.text
    world.clock.current = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)  # Fri 9 Oct, 10:00 Shanghai
    resp = await world.client.post(f"{flows}/main/publish", json={"message": "v1"}, headers=who)
    assert resp.status_code == 201, resp.text
    assert datetime.fromisoformat(resp.json()["effective_at"]) == datetime(
        2026, 10, 12, 2, 0, tzinfo=UTC
    )
    # The platform admin loads Saturday 10 Oct as a make-up working day (调休): it counts now.
    await world.calendar.put(ROOT, 2026, HOLIDAYS, (date(2026, 10, 10),))
    resp = await world.client.post(f"{flows}/main/publish", json={"message": "v2"}, headers=who)
    assert resp.status_code == 201, resp.text
    assert datetime.fromisoformat(resp.json()["effective_at"]) == datetime(
        2026, 10, 10, 2, 0, tzinfo=UTC
    )


TRANSFER_FLOW = {
    "m": {
        "type": "menu",
        "prompt": "sys:beep",
        "options": {"1": {"next": "sales"}, "2": {"next": "boss"}, "3": {"next": "abroad"}},
        "on_fail": "bye",
    },
    "sales": {"type": "queue", "skill_group": "sales"},
    "boss": {"type": "transfer", "number": "13911112222"},
    "abroad": {"type": "transfer", "number": "00442079460000"},
    "bye": {"type": "hangup", "prompt": "bye_zh"},
}


async def test_publish_refuses_every_group_and_transfer_fault_at_once(world: World) -> None:
    from ccbridge.domain.dialing import DialPolicy
    from ccbridge.domain.leases.model import SeatKind, SeatLease
    from ccbridge.services.seat_ports import DialPolicyRecord

    body = _flow(TRANSFER_FLOW, start="m")
    assert (await world.put("main", body)).status_code == 200  # drafts may wait for the tenant
    publish = f"{BASE}/flows/main/publish"
    resp = await world.client.post(publish, json={"message": "v1"}, headers=world.platform)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert _paths(resp) == {
        "$.nodes.bye.prompt": "missing_prompt",
        "$.nodes.sales.skill_group": "unknown_skill_group",
        "$.nodes.boss.number": "transfer_not_leased",  # t1 has no inbound+outbound seat
        "$.nodes.abroad.number": "transfer_not_leased",
    }
    assert "4 fault(s)" in resp.json()["detail"]
    assert "$.nodes.boss.number (transfer_not_leased)" in resp.json()["detail"]

    await world.add_groups("t1", "sales")
    await world.prompts.add(PromptRecord("t1", "bye_zh", "b.wav", 1, 1, world.clock.now(), "t"))
    await world.leases.create(
        SeatLease("t1", {SeatKind.INBOUND: 5, SeatKind.INBOUND_OUTBOUND: 1}, date(2026, 1, 1))
    )
    resp = await world.client.post(f"{BASE}/validate", content=body, headers=world.t1)
    assert [(e["path"], e["code"]) for e in resp.json()["errors"]] == [
        ("$.nodes.abroad.number", "number_not_allowed")  # the default policy: no 00
    ]
    resp = await world.client.post(publish, json={"message": "v1"}, headers=world.platform)
    assert _paths(resp) == {"$.nodes.abroad.number": "number_not_allowed"}
    assert await world.flows.count_revisions("t1") == 0
    audit = (await world.client.get("/api/v1/audit", headers=world.t1)).json()["items"]
    assert "ivr.revision.publish" not in {e["action"] for e in audit}

    wide = DialPolicy(allow=("0", "1", "0044"), deny=("00",))
    await world.policies.put(DialPolicyRecord("t1", wide, world.clock.now(), "test"))
    resp = await world.client.post(publish, json={"message": "v1"}, headers=world.platform)
    assert resp.status_code == 201, resp.text

    # the simulator applies the tenant's rights in force, as a real call would
    await world.policies.put(DialPolicyRecord("t1", DialPolicy(), world.clock.now(), "test"))
    resp = await world.client.post(
        f"{BASE}/flows/main/simulate", json={"digits": ["3"]}, headers=world.t1
    )
    out = resp.json()
    assert (out["route"], out["reason"]) == ("hangup", "transfer_not_allowed")
    # and a rollback is checked like a publish
    resp = await world.client.post(
        f"{BASE}/flows/main/revisions/1/rollback", json={"message": "again"}, headers=world.platform
    )
    assert _paths(resp) == {"$.nodes.abroad.number": "number_not_allowed"}
    assert await world.flows.count_revisions("t1") == 1


async def test_a_broken_shell_does_not_hide_the_nodes_faults(world: World) -> None:
    body = orjson.dumps(
        {
            "start": "a",
            "max_steps": 0,
            "nodes": {
                "a": {"type": "play", "prompt": "../x", "next": "b"},
                "b": {"type": "teleport"},
                "c": {"type": "menu", "prompt": "m", "options": {}, "on_fail": "a"},
            },
        }
    )
    resp = await world.put("main", body)
    assert resp.status_code == 422
    assert _paths(resp) == {
        "$.name": "missing",
        "$.max_steps": "greater_than_equal",
        "$.nodes.a.prompt": "bad_prompt_id",
        "$.nodes.b.type": "unknown_node_type",
        "$.nodes.c.options": "too_short",
    }
    await world.nothing_stored()


CRM_FLOW = {
    "meta": {
        "type": "http_lookup",
        "url": "http://169.254.169.254/latest/meta-data",
        "query": {"n": "{caller}"},
        "assign": {"tier": "level"},
        "next": "crm",
        "on_error": "crm",
    },
    "crm": {
        "type": "http_lookup",
        "url": "https://crm.example.com/c",
        "query": {"n": "{caller}"},
        "assign": {"tier": "level"},
        "next": "lan",
        "on_error": "lan",
    },
    "lan": {
        "type": "http_lookup",
        "url": "http://internal-crm.example:8080/c",
        "query": {"n": "{caller}"},
        "assign": {"tier": "level"},
        "next": "bye",
        "on_error": "bye",
    },
    "bye": {"type": "hangup", "prompt": "sys:beep"},
}


async def test_publish_refuses_crm_lookups_to_addresses_the_tenant_may_not_reach(
    world: World,
) -> None:
    from ccbridge.egress.resolve import ResolvingHostChecker
    from ccbridge.services.egress import ConfigurationChecker, EgressPolicy
    from tests.support.egress import StaticAllowLists, fake_dns

    allow = StaticAllowLists()
    world.service.crm_targets = ConfigurationChecker(
        EgressPolicy(allow), ResolvingHostChecker(fake_dns)
    )
    body = _flow(CRM_FLOW, start="meta")
    assert (await world.put("main", body)).status_code == 200
    publish = f"{BASE}/flows/main/publish"
    resp = await world.client.post(publish, json={"message": "v1"}, headers=world.platform)
    assert resp.status_code == 422, resp.text
    assert _paths(resp) == {
        "$.nodes.meta.url": "refused_address",  # cloud metadata
        "$.nodes.lan.url": "refused_address",  # resolves to 10.0.0.5
    }
    assert await world.flows.count_revisions("t1") == 0
    allow.lists["t1"] = ["10.0.0.0/24", "169.254.169.254/32"]  # a platform admin opened both
    resp = await world.client.post(publish, json={"message": "v1"}, headers=world.platform)
    assert resp.status_code in (200, 201), resp.text
