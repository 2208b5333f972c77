"""The recording policy over the API: defaults, replace, write-only encrypted password,
field-naming 422s, tenant isolation, audit; and the running services obey it (auto-record,
purge horizon, nightly push at the tenant's local time to a real FTP server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.recording_tables import RecordingPolicyRow
from ccbridge.db.repositories.recording_exports import ExportRepository
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.recordings.export import ExportStatus
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.ftp.push import FtplibTransport
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recordings import RecordingService
from ccbridge.services.retention import RetentionService
from tests.integration.recording_support import make_recording
from tests.integration.test_recording_export import ClientServer
from tests.integration.test_recordings_api import World
from tests.integration.test_recordings_api import world as world
from tests.support.egress import loopback_egress

URL = "/api/v1/tenants/t1/recording-policy"
PASSWORD = "s3cret-Pässword!"


def _policy(**export: Any) -> dict[str, Any]:
    target = {
        "host": "ftp.client.example",
        "port": 2121,
        "username": "acme",
        "password": PASSWORD,
        "tls": True,
        "directory": "/incoming/rec",
        "schedule_time": "02:30",
        **export,
    }
    return {
        "retention_months": 2,
        "auto_record": True,
        "auto_record_groups": ["t1-vip"],
        "export": target,
    }


async def _raw_row(w: World, tenant: str) -> dict[str, Any]:
    async with w.sessions() as session:
        row = await session.scalar(
            select(RecordingPolicyRow).where(RecordingPolicyRow.tenant == tenant)
        )
    assert row is not None
    return {c.key: getattr(row, c.key) for c in RecordingPolicyRow.__table__.columns}


async def test_defaults_replace_and_write_only_encrypted_password(world: World) -> None:
    c = world.client
    got = await c.get(URL, headers=world.t1)
    assert got.status_code == 200, got.text
    assert got.json() == {
        "tenant": "t1",
        "timezone": "Asia/Shanghai",
        "retention_months": 1,
        "auto_record": True,
        "auto_record_groups": None,
        "export": None,
    }
    put = await c.put(URL, json=_policy(), headers=world.t1)
    assert put.status_code == 200, put.text
    body = put.json()
    assert PASSWORD not in put.text
    assert body["export"] == {
        "host": "ftp.client.example",
        "port": 2121,
        "username": "acme",
        "password_set": True,
        "tls": True,
        "directory": "/incoming/rec",
        "ca_pem": None,
        "schedule_time": "02:30",
    }
    assert (await c.get(URL, headers=world.t1)).json() == body
    row = await _raw_row(world, "t1")
    assert PASSWORD not in repr(row)
    assert row["export_password"].startswith("v1.")
    assert row["export_time"] == "02:30"
    stored = await world.store.policy("t1")
    assert stored.export_target is not None
    assert stored.export_target.password == PASSWORD

    # Omitted password: the stored one stays (and no new ciphertext is needed to say so).
    again = _policy(port=21)
    del again["export"]["password"]
    assert (await c.put(URL, json=again, headers=world.t1)).status_code == 200
    kept = await world.store.policy("t1")
    assert kept.export_target is not None
    assert (kept.export_target.port, kept.export_target.password) == (21, PASSWORD)

    async with SqlAccessUnitOfWork(world.sessions) as uow:
        entries = [
            e
            for e in await uow.audit.list(tenant_id="t1", limit=50)
            if e.action == "recording_policy.update"
        ]
    assert len(entries) == 2
    assert all(PASSWORD not in repr(e.detail) for e in entries)
    assert [e.detail["password_changed"] for e in entries] == [False, True]  # newest first
    assert entries[0].detail["after"]["export"]["port"] == 21
    assert entries[0].actor.startswith("key:")

    cleared = await c.put(URL, json={"retention_months": 1}, headers=world.t1)
    assert cleared.json()["export"] is None
    assert (await _raw_row(world, "t1"))["export_password"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host": "ftp.example\r\nDELE x"}, "body.export.host"),
        ({"host": "bad host"}, "body.export.host"),
        ({"username": "acme\x00"}, "body.export.username"),
        ({"username": "a\nPASS x"}, "body.export.username"),
        ({"password": "pw\r\nRMD /"}, "body.export.password"),
        ({"directory": "/in\n"}, "body.export.directory"),
        ({"directory": "/in/../../etc"}, "body.export.directory"),
        ({"directory": "relative"}, "body.export.directory"),
        ({"port": 0}, "body.export.port"),
        ({"port": 70000}, "body.export.port"),
        ({"schedule_time": "24:00"}, "body.export.schedule_time"),
        (
            {"ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
            "body.export.ca_pem",
        ),
        ({"surprise": 1}, "body.export.surprise"),
        # The egress guard: private, link-local and unresolvable hosts (t1 may reach only
        # 127.0.0.1, allow-listed for its stand-in server).
        ({"host": "169.254.169.254"}, "body.export.host"),
        ({"host": "10.1.2.3"}, "body.export.host"),
        ({"host": "127.0.0.2"}, "body.export.host"),
        ({"host": "::1"}, "body.export.host"),
        ({"host": "internal.example"}, "body.export.host"),
        ({"host": "nowhere.invalid"}, "body.export.host"),
    ],
)
async def test_bad_fields_answer_422_naming_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    resp = await world.client.put(URL, json=_policy(**change), headers=world.t1)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    assert (await world.store.policy("t1")).export_target is None  # nothing stored


async def test_export_host_refusal_does_not_say_whether_a_name_resolves(world: World) -> None:
    internal = await world.client.put(URL, json=_policy(host="internal.example"), headers=world.t1)
    missing = await world.client.put(URL, json=_policy(host="nowhere.invalid"), headers=world.t1)
    assert internal.status_code == missing.status_code == 422
    assert internal.json()["errors"] == missing.json()["errors"]  # no internal-DNS oracle
    assert "10.0.0.5" not in internal.text


async def test_loopback_export_host_needs_the_tenants_allow_list(world: World) -> None:
    body, t2_url = _policy(host="127.0.0.1"), URL.replace("/t1/", "/t2/")
    refused = await world.client.put(t2_url, json=body, headers=world.t2)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.export.host"
    world.allow.lists["t2"] = ["127.0.0.0/8"]  # a platform admin opened it for t2
    assert (await world.client.put(t2_url, json=body, headers=world.t2)).status_code == 200


async def test_bad_top_level_fields_and_tenant_isolation(world: World) -> None:
    c = world.client
    for body, field in (
        ({"retention_months": 0}, "body.retention_months"),
        ({"auto_record_groups": ["ok", "bad group"]}, "body.auto_record_groups[1]"),
    ):
        resp = await c.put(URL, json=body, headers=world.t1)
        assert resp.status_code == 422, resp.text
        assert field in [e["field"] for e in resp.json()["errors"]]
    assert (await c.get(URL, headers=world.t2)).status_code == 404
    assert (await c.put(URL, json=_policy(), headers=world.t2)).status_code == 404
    platform = world.platform
    assert (await c.get(URL, headers=platform)).status_code == 200
    put = await c.put("/api/v1/tenants/t2/recording-policy", json=_policy(), headers=platform)
    assert put.status_code == 200, put.text
    missing = await c.get("/api/v1/tenants/nope/recording-policy", headers=platform)
    assert missing.status_code == 404
    assert (await world.store.policy("t1")).export_target is None


class Recorder:
    """A PBX control that only notes which channels it was asked to record."""

    def __init__(self) -> None:
        self.started: list[str] = []

    async def start(self, channel: str, path: str) -> None:
        self.started.append(channel)

    async def stop(self, channel: str) -> None:
        pass

    async def mute(self, channel: str, muted: bool) -> None:
        pass


async def test_auto_record_and_purge_horizon_follow_the_policy(world: World) -> None:
    c = world.client
    groups = {"1796000000.1": "t1-sales", "1796000000.2": "t1-vip"}

    async def lookup(call_id: str) -> CallRecord | None:
        return CallRecord(
            call_id=call_id,
            started_at=world.clock.now(),
            state=CallState.CONNECTED,
            tenant="t1",
            skill_group=groups[call_id],
        )

    pbx = Recorder()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(world.sessions), world.clock.now)
    service = RecordingService(
        world.store, world.files, pbx, lookup, audit, world.clock, LinkSigner(b"k" * 32)
    )
    body = {"retention_months": 3, "auto_record": True, "auto_record_groups": ["t1-vip"]}
    assert (await c.put(URL, json=body, headers=world.t1)).status_code == 200
    assert await service.on_agent_connect("1796000000.1", "PJSIP/1101-1") is None
    rec = await service.on_agent_connect("1796000000.2", "PJSIP/1102-1")
    assert rec is not None
    assert pbx.started == ["PJSIP/1102-1"]

    off = {"retention_months": 3, "auto_record": False}
    assert (await c.put(URL, json=off, headers=world.t1)).status_code == 200
    assert await service.on_agent_connect("1796000000.2", "PJSIP/1102-2") is None
    assert pbx.started == ["PJSIP/1102-1"]

    # The fixture's recordings are 3 days old: 62 days on, t2 (1 month) goes, t1 (3) stays.
    world.clock.at += timedelta(days=62)
    result = await RetentionService(world.store, world.files, world.clock).purge()
    assert result.eligible == {"t1": 0, "t2": 1}
    assert result.deleted == 1
    assert (
        await c.get(f"/api/v1/recordings/{world.recs[0].id}", headers=world.t1)
    ).status_code == 200


async def test_nightly_push_runs_at_the_tenants_local_time(world: World, tmp_path: Path) -> None:
    root = tmp_path / "client"
    root.mkdir()
    server = ClientServer(root)
    try:
        target = {
            "host": "127.0.0.1",
            "port": server.port,
            "username": "client",
            "password": "client-pw",
            "tls": False,
            "directory": "/nightly",
            "schedule_time": "02:00",
        }
        put = await world.client.put(URL, json={"export": target}, headers=world.t1)
        assert put.status_code == 200, put.text
        # Asia/Shanghai is UTC+8: local 2026-01-10 is [2026-01-09T16:00Z, 2026-01-10T16:00Z).
        inside = await make_recording(world.files, "t1", datetime(2026, 1, 10, 15, tzinfo=UTC))
        after = await make_recording(world.files, "t1", datetime(2026, 1, 10, 17, tzinfo=UTC))
        before = await make_recording(world.files, "t1", datetime(2026, 1, 9, 15, tzinfo=UTC))
        for rec in (inside, after, before):
            await world.store.add(rec, world.clock.now())
        exports = ExportRepository(world.sessions)
        service = ExportService(
            world.store,
            exports,
            world.files,
            FtplibTransport(timeout=5),
            world.clock,
            egress=loopback_egress(),
        )
        world.clock.at = datetime(2026, 1, 10, 17, 59, tzinfo=UTC)  # 01:59 local on the 11th
        assert await service.nightly() == 0
        world.clock.at = datetime(2026, 1, 10, 18, 5, tzinfo=UTC)  # 02:05 local
        assert await service.nightly() == 1
        assert await service.nightly() == 0  # that day is done
        jobs = await exports.of_tenant("t1")
        assert [(j.kind, j.status, j.total_files) for j in jobs] == [
            ("scheduled", ExportStatus.DONE, 1)
        ]
        assert jobs[0].range_from == datetime(2026, 1, 9, 16, tzinfo=UTC)
        assert jobs[0].range_to == datetime(2026, 1, 10, 16, tzinfo=UTC)
        pushed = root / "nightly" / inside.path.split("/", 1)[1]
        assert pushed.read_bytes() == (world.files.root / inside.path).read_bytes()
        assert not (root / "nightly" / after.path.split("/", 1)[1]).exists()
    finally:
        server.kill()
