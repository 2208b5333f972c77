"""Recording search, signed downloads with HTTP Range, holds, 410 after purge, FTP accounts,
through the real app on both databases; another tenant's recording answers 404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.api.app import RecordingApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.crypto.report_signing import Ed25519ReportSigner
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.ftp_accounts import FtpAccountRepository
from ccbridge.db.repositories.recording_exports import ExportRepository, OffboardingRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import Role
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import Recording
from ccbridge.domain.recordings.passwords import verify_password
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.egress.resolve import ResolvingHostChecker
from ccbridge.ftp.push import FtplibTransport
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.egress import ConfigurationChecker, EgressPolicy
from ccbridge.services.ftp_accounts import FtpAccountService
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_policy import RecordingPolicyService
from ccbridge.services.recordings import RecordingService
from ccbridge.services.retention import RetentionService
from ccbridge.services.tenants import AccessService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, SettableClock, make_recording
from tests.support.api_rig import create_tenants
from tests.support.egress import StaticAllowLists, fake_dns

SECRET = "integration-test-secret-0123456789abcdef"


class NoPbx:
    """Control is not exercised here (no call is in progress)."""

    async def start(self, channel: str, path: str) -> None:
        raise AssertionError("no PBX in this test")

    async def stop(self, channel: str) -> None:
        raise AssertionError("no PBX in this test")

    async def mute(self, channel: str, muted: bool) -> None:
        raise AssertionError("no PBX in this test")


@dataclass
class World:
    client: httpx.AsyncClient
    clock: SettableClock
    t1: dict[str, str]
    t2: dict[str, str]
    recs: list[Recording]
    store: RecordingRepository
    files: LocalRecordingFiles
    access: AccessService
    sessions: async_sessionmaker[AsyncSession]
    platform: dict[str, str]
    allow: StaticAllowLists


@pytest.fixture
async def world(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = SettableClock(datetime.now(UTC).replace(microsecond=0))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    store = RecordingRepository(sessions, cipher=CIPHER)
    files = LocalRecordingFiles(tmp_path / "rec")

    async def no_call(call_id: str) -> CallRecord | None:
        return None

    service = RecordingService(store, files, NoPbx(), no_call, audit, clock, LinkSigner(b"k" * 32))
    allow = StaticAllowLists({"t1": ["127.0.0.1/32"]})  # t1's stand-in FTP server
    egress = EgressPolicy(allow)
    exports = ExportService(
        store, ExportRepository(sessions), files, FtplibTransport(), clock, egress=egress
    )
    offboarding = OffboardingService(
        store,
        ExportRepository(sessions),
        exports,
        files,
        clock,
        Ed25519ReportSigner("api-test-report-signing-key-0123456789"),
        OffboardingRepository(sessions),
        audit,
    )
    background: set[asyncio.Task[object]] = set()

    def run_offboarding(tenant: str) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(offboarding.run(tenant))
        background.add(task)
        task.add_done_callback(background.discard)

    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        recording_api=RecordingApi(
            recordings=service,
            exports=exports,
            ftp_accounts=FtpAccountService(FtpAccountRepository(sessions), audit, clock),
            audit=audit,
            run_export=lambda _job: None,
            policies=RecordingPolicyService(
                store,
                audit,
                clock,
                targets=ConfigurationChecker(egress, ResolvingHostChecker(fake_dns)),
            ),
            offboarding=offboarding,
            run_offboarding=run_offboarding,
            retention=RetentionService(store, files, clock),
        ),
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = {"Authorization": f"Bearer {platform_key}"}
    recs = []
    base = clock.now() - timedelta(days=3)
    for i, (tenant, agent) in enumerate(
        [("t1", "1101"), ("t1", "1102"), ("t1", "1101"), ("t2", "1101")]
    ):
        rec = await make_recording(files, tenant, base + timedelta(hours=i), agent_no=agent)
        recs.append(await store.add(rec, clock.now()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, platform, {"t1": {}, "t2": {}})
        yield World(
            client,
            clock,
            admins["t1"],
            admins["t2"],
            recs,
            store,
            files,
            access,
            sessions,
            platform,
            allow,
        )


async def test_search_by_agent_with_cursor_pages_and_tenant_isolation(world: World) -> None:
    c = world.client
    resp = await c.get("/api/v1/recordings?agent_no=1101&limit=1", headers=world.t1)
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert [r["id"] for r in page["items"]] == [world.recs[2].id]
    assert page["items"][0]["caller"] == "13800138000"
    resp = await c.get(
        f"/api/v1/recordings?agent_no=1101&limit=1&cursor={page['next_cursor']}", headers=world.t1
    )
    assert [r["id"] for r in resp.json()["items"]] == [world.recs[0].id]
    assert resp.json()["next_cursor"] is None
    resp = await c.get("/api/v1/recordings?tenant=t2", headers=world.t1)
    assert resp.status_code == 404
    resp = await c.get(f"/api/v1/recordings/{world.recs[3].id}", headers=world.t1)
    assert resp.status_code == 404
    resp = await c.post(f"/api/v1/recordings/{world.recs[3].id}/link", headers=world.t1)
    assert resp.status_code == 404


async def test_signed_download_with_range_expiry_and_audit(world: World) -> None:
    c, rec = world.client, world.recs[0]
    data = (world.files.root / rec.path).read_bytes()
    resp = await c.post(f"/api/v1/recordings/{rec.id}/link?ttl_seconds=60", headers=world.t1)
    assert resp.status_code == 200, resp.text
    url = resp.json()["url"]
    full = await c.get(url)  # no Authorization header
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["content-type"] == "audio/wav"
    part = await c.get(url, headers={"Range": "bytes=0-43"})
    assert part.status_code == 206
    assert part.content == data[:44]
    assert part.headers["content-range"] == f"bytes 0-43/{len(data)}"
    bad_range = await c.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert bad_range.status_code == 416
    tampered = url.replace(f"tenant={rec.tenant}", "tenant=t2")
    assert (await c.get(tampered)).status_code == 403
    world.clock.at += timedelta(seconds=61)
    expired = await c.get(url)
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]
    async with SqlAccessUnitOfWork(world.sessions) as uow:
        entries = await uow.audit.list(tenant_id="t1", limit=100)
    downloads = [e for e in entries if e.action == "recording.download"]
    assert len(downloads) == 1  # 200, 206 and 416 on one link: one download
    assert {e.object_id for e in downloads} == {rec.id}
    assert downloads[0].detail["range"] is None  # the first request's


async def test_an_invalid_range_is_ignored_and_a_non_ascii_signature_is_refused(
    world: World,
) -> None:
    c, rec = world.client, world.recs[0]
    data = (world.files.root / rec.path).read_bytes()
    resp = await c.post(f"/api/v1/recordings/{rec.id}/link?ttl_seconds=60", headers=world.t1)
    url = resp.json()["url"]
    for invalid in ("bytes", "items=0-10", "bytes=", "bytes=x-y", "bytes=10-5", "bytes=-"):
        full = await c.get(url, headers={"Range": invalid})
        assert full.status_code == 200, (invalid, full.status_code)  # RFC 9110: ignored
        assert full.content == data
    sig = url.rsplit("sig=", 1)[1]
    for forged in ("%C3%A9" * 43, "%E7%AD%BE", sig[:-1] + "%C3%A9"):
        refused = await c.get(url.replace(f"sig={sig}", f"sig={forged}"))
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"


async def test_a_seeking_player_is_audited_once_per_link(world: World) -> None:
    c, rec = world.client, world.recs[0]
    data = (world.files.root / rec.path).read_bytes()

    async def link() -> str:
        resp = await c.post(f"/api/v1/recordings/{rec.id}/link?ttl_seconds=60", headers=world.t1)
        assert resp.status_code == 200, resp.text
        url: str = resp.json()["url"]
        return url

    first = await link()
    for start in range(100, 3000, 100):  # a player seeking: 29 range requests
        part = await c.get(first, headers={"Range": f"bytes={start}-{start + 99}"})
        assert part.status_code == 206
        assert part.content == data[start : start + 100]
    world.clock.at += timedelta(seconds=1)  # a second link (another expiry) is another download
    second = await link()
    assert second != first
    assert (await c.get(second, headers={"Range": "bytes=0-1"})).status_code == 206
    assert (await c.get(second)).status_code == 200
    assert (await c.get(first.replace("sig=", "sig=x"))).status_code == 403  # not audited
    async with SqlAccessUnitOfWork(world.sessions) as uow:
        entries = await uow.audit.list(tenant_id="t1", limit=100)
    downloads = [e for e in entries if e.action == "recording.download"]
    assert [e.detail["range"] for e in downloads] == ["bytes=0-1", "bytes=100-199"]  # newest first
    links = [e for e in entries if e.action == "recording.link"]
    assert len(links) == 2


async def test_purged_recording_answers_410_and_held_ones_survive(world: World) -> None:
    c = world.client
    held, gone = world.recs[0], world.recs[1]
    resp = await c.put(
        f"/api/v1/recordings/{held.id}/hold", json={"reason": "dispute"}, headers=world.t1
    )
    assert resp.status_code == 200, resp.text
    world.clock.at += timedelta(days=62)
    result = await RetentionService(world.store, world.files, world.clock).purge()
    assert result.deleted == 3  # t1's two unheld recordings and t2's one
    resp = await c.get(f"/api/v1/recordings/{gone.id}", headers=world.t1)
    assert resp.status_code == 410
    resp = await c.get(f"/api/v1/recordings/{held.id}", headers=world.t1)
    assert resp.status_code == 200
    assert resp.json()["held"] is True


async def test_ftp_account_password_is_shown_once_and_stored_hashed(world: World) -> None:
    c = world.client
    resp = await c.post(
        "/api/v1/tenants/t1/ftp-accounts", json={"username": "acme-ftp"}, headers=world.t1
    )
    assert resp.status_code == 201, resp.text
    password = resp.json()["password"]
    assert len(password) >= 20
    listed = (await c.get("/api/v1/tenants/t1/ftp-accounts", headers=world.t1)).json()
    assert [(a["username"], a["password"], a["tls_required"]) for a in listed] == [
        ("acme-ftp", None, True)
    ]
    stored = await FtpAccountRepository(world.sessions).get("acme-ftp")
    assert stored is not None
    assert stored.password_hash != password
    assert verify_password(password, stored.password_hash)
    taken = await c.post(
        "/api/v1/tenants/t2/ftp-accounts", json={"username": "acme-ftp"}, headers=world.t2
    )
    assert taken.status_code == 409
    assert (await c.get("/api/v1/tenants/t1/ftp-accounts", headers=world.t2)).status_code == 404


async def test_legal_hold_of_a_call_and_its_deprecated_alias(world: World) -> None:
    c = world.client
    rec = world.recs[0]
    path = f"/api/v1/tenants/t1/calls/{rec.call_id}"
    resp = await c.put(f"{path}/legal-hold", json={"reason": "dispute"}, headers=world.t1)
    assert resp.status_code == 200, resp.text
    assert resp.json()["changed"] >= 1
    assert "Deprecation" not in resp.headers
    assert (await c.get(f"/api/v1/recordings/{rec.id}", headers=world.t1)).json()["held"] is True
    old = await c.put(f"{path}/hold", json={"held": False, "reason": "settled"}, headers=world.t1)
    assert old.status_code == 200, old.text
    assert old.headers["Deprecation"] == "true"
    assert f"{path}/legal-hold" in old.headers["Link"]
    assert (await c.get(f"/api/v1/recordings/{rec.id}", headers=world.t1)).json()["held"] is False
