"""An AMI failure during an API request answers 503 problem+json with Retry-After, never 500:
the PBX not logged in, an action that gets no answer, and an action Asterisk refuses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import RecordingApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.recording_control import AmiRecorderControl
from ccbridge.crypto.report_signing import Ed25519ReportSigner
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.ftp_accounts import FtpAccountRepository
from ccbridge.db.repositories.recording_exports import ExportRepository, OffboardingRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import Role
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.errors import AsteriskUnavailableError
from ccbridge.ftp.push import FtplibTransport
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.ftp_accounts import FtpAccountService
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_policy import RecordingPolicyService
from ccbridge.services.recordings import RecordingService
from ccbridge.services.retention import RetentionService
from ccbridge.services.tenants import AccessService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, SettableClock
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.api_rig import create_tenants
from tests.support.mini_ami import MiniAmi, MiniConn

SECRET = "integration-test-secret-0123456789abcdef"
CALL = "1700000000.1"
CHANNEL = "PJSIP/trunk-00000001"


def _refuse(conn: MiniConn, msg: AmiMessage) -> None:
    conn.reply(msg, ("Message", "No such channel"), ok=False)


@contextlib.asynccontextmanager
async def pbx(fault: str) -> AsyncIterator[AmiClient]:
    """An AMI client in the state *fault* names: never logged in, or facing a PBX that holds
    or refuses MixMonitor."""
    if fault == "not_logged_in":
        yield fake_pbx_client(1, secret="ccbridge-secret")
        return
    server = await MiniAmi().start()
    if fault == "timeout":
        server.hold_actions.add("MixMonitor")
    else:
        server.handlers["MixMonitor"] = _refuse
    client = fake_pbx_client(server.port, secret="ccbridge-secret", action_timeout=0.2)
    try:
        async with running(client):
            yield client
    finally:
        await server.close()


@pytest.mark.parametrize("fault", ["not_logged_in", "timeout", "action_error"])
async def test_recording_control_answers_503_when_the_pbx_fails(
    engine: AsyncEngine, tmp_path: Path, fault: str
) -> None:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = SettableClock(datetime.now(UTC).replace(microsecond=0))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    store = RecordingRepository(sessions, cipher=CIPHER)
    files = LocalRecordingFiles(tmp_path / "rec")
    call = CallRecord(CALL, clock.now(), CallState.CONNECTED, tenant="t1", agent_no="1101")

    async def lookup(call_id: str) -> CallRecord | None:
        return call if call_id == CALL else None

    async with pbx(fault) as ami:
        service = RecordingService(
            store, files, AmiRecorderControl(ami), lookup, audit, clock, LinkSigner(b"k" * 32)
        )
        # The service itself sees only the port-level error (automatic start on answer).
        with pytest.raises(AsteriskUnavailableError):
            await service.on_agent_connect(CALL, CHANNEL)
        exports = ExportService(store, ExportRepository(sessions), files, FtplibTransport(), clock)
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
                policies=RecordingPolicyService(store, audit, clock),
                offboarding=offboarding,
                run_offboarding=lambda _tenant: None,
                retention=RetentionService(store, files, clock),
            ),
        )
        _, platform_key = await access.create_system_key(
            role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admins = await create_tenants(
                client, {"Authorization": f"Bearer {platform_key}"}, {"t1": {}}
            )
            resp = await client.post(
                f"/api/v1/tenants/t1/calls/{CALL}/recording",
                json={"action": "start"},
                headers=admins["t1"],
            )
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["retry-after"].isdigit()
    body = resp.json()
    assert body["code"] == "ASTERISK_UNAVAILABLE"
    assert body["status"] == 503
