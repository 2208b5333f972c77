"""Off-boarding: final export to the tenant's server, then a purge with a signed report;
and the purge CLI's dry run."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from ccbridge.bootstrap import secret_box
from ccbridge.cli import app
from ccbridge.crypto.report_signing import Ed25519ReportSigner, verify_with_public_key
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.event_tables import (
    CallParamsRow,
    EventRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
)
from ccbridge.db.ivr_tables import IvrCallLogRow
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.recording_tables import PurgeReportRow
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.recording_exports import ExportRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.db.tables import CallRow
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy
from ccbridge.ftp.push import FtplibTransport
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.recording_export import ExportService
from ccbridge.settings import Settings
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, SettableClock, make_recording
from tests.integration.test_recording_export import ClientServer
from tests.support.egress import loopback_egress

SIGNER = Ed25519ReportSigner("offboarding-test-report-key-0123456789")


async def test_final_export_then_signed_purge(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    client_root = tmp_path / "client"
    client_root.mkdir()
    server = ClientServer(client_root)
    store = RecordingRepository(session_factory, cipher=CIPHER)
    exports = ExportRepository(session_factory)
    calls = CallRepository(session_factory)
    files = LocalRecordingFiles(tmp_path / "rec")
    clock = SettableClock(datetime(2026, 3, 1, tzinfo=UTC))
    recs = [
        await make_recording(files, t, datetime(2026, 2, 1, 9, tzinfo=UTC) + timedelta(days=i))
        for i, t in enumerate(["t9", "t9", "t1"])
    ]
    for rec in recs:
        await store.add(rec, clock.now())
        await calls.upsert_many(
            [
                CallRecord(
                    call_id=rec.call_id,
                    started_at=rec.started_at,
                    state=CallState.ENDED,
                    tenant=rec.tenant,
                    caller="13800138000",
                )
            ]
        )
    (files.root / "t9" / "stray.wav").write_bytes(b"RIFF")  # not in the index: goes too
    target = ExportTarget("127.0.0.1", server.port, "client", "client-pw", tls=False, directory="/")
    await store.set_policy(RecordingPolicy("t9", export_target=target), clock.now())
    export = ExportService(
        store, exports, files, FtplibTransport(timeout=5), clock, egress=loopback_egress()
    )
    service = OffboardingService(store, exports, export, files, clock, SIGNER)
    try:
        job = await service.final_export("t9")
    finally:
        server.kill()
    for rec in recs[:2]:
        got = (client_root / rec.path.split("/", 1)[1]).read_bytes()
        assert hashlib.sha256(got).hexdigest() == rec.sha256

    progress: list[int] = []
    report = await service.purge("t9", job, lambda done, _t: progress.append(done))
    assert progress == [1, 2]
    assert not (files.root / "t9").exists()
    assert (files.root / recs[2].path).exists()  # another tenant untouched
    assert await store.all_of_tenant("t9") == []
    assert await calls.count(tenant="t9") == 0
    assert await calls.count(tenant="t1") == 1
    m = report.manifest
    assert {r["id"] for r in m["recordings"]} == {recs[0].id, recs[1].id}
    assert (m["files_deleted"], m["recording_rows_deleted"], m["call_rows_deleted"]) == (3, 2, 2)
    assert m["final_export"] == job
    stored = await exports.purge_report(report.id)
    assert stored == (m, report.signature)
    # The client verifies with the public key alone (no secret of ours).
    pem = SIGNER.public_key_pem()
    assert "PRIVATE" not in pem
    assert verify_with_public_key(pem, stored[0], stored[1])
    assert m["signature_algorithm"] == "Ed25519"
    assert m["key_id"] == SIGNER.key_id
    tampered = {**stored[0], "call_rows_deleted": 0}
    assert not verify_with_public_key(pem, tampered, stored[1])
    other = Ed25519ReportSigner("another-key-entirely-0123456789abc").public_key_pem()
    assert not verify_with_public_key(other, stored[0], stored[1])
    async with SqlAccessUnitOfWork(session_factory) as uow:
        entries = await uow.audit.list(tenant_id="t9", limit=10)
    assert [e.action for e in entries] == ["tenant.data_purge"]


def test_purge_cli_dry_run_counts_and_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    files = LocalRecordingFiles(tmp_path / "rec")
    old_start = datetime.now(UTC) - timedelta(days=70)

    async def seed() -> Path:
        await run_migrations_async(url)
        engine = create_engine(url)
        box = secret_box(Settings())  # what the CLI will decrypt with (the dev default)
        try:
            store = RecordingRepository(create_session_factory(engine), cipher=box)
            old = await make_recording(files, "t1", old_start)
            await store.add(old, datetime.now(UTC))
            await store.add(await make_recording(files, "t1", datetime.now(UTC)), datetime.now(UTC))
            return files.root / old.path
        finally:
            await engine.dispose()

    import asyncio

    old_path = asyncio.run(seed())
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("CCBRIDGE_RECORDINGS__DIR", str(files.root))
    monkeypatch.setenv("CCBRIDGE_EGRESS_ALLOW_NETWORKS", '["127.0.0.1/32"]')  # its FTP server
    runner = CliRunner()
    dry = runner.invoke(app, ["recordings", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "t1: 1 recording(s) past the horizon" in dry.output
    assert old_path.exists()
    real = runner.invoke(app, ["recordings", "purge"])
    assert real.exit_code == 0, real.output
    assert "deleted 1 recording(s)" in real.output
    assert not old_path.exists()


def _cli_world(tmp_path: Path) -> tuple[str, LocalRecordingFiles, Path, ClientServer]:
    """A database URL for the CLI, a recordings tree, and the client's FTP server with its root."""
    client_root = tmp_path / "client"
    client_root.mkdir()
    return (
        f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        LocalRecordingFiles(tmp_path / "rec"),
        client_root,
        ClientServer(client_root),
    )


def test_export_cli_pushes_a_range_with_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import json

    url, files, client_root, server = _cli_world(tmp_path)

    async def seed() -> str:
        await run_migrations_async(url)
        engine = create_engine(url)
        box = secret_box(Settings())  # what the CLI will decrypt with (the dev default)
        try:
            store = RecordingRepository(create_session_factory(engine), cipher=box)
            rec = await make_recording(files, "t1", datetime(2026, 1, 10, 9, tzinfo=UTC))
            await store.add(rec, datetime.now(UTC))
            target = ExportTarget("127.0.0.1", server.port, "client", "client-pw", tls=False)
            await store.set_policy(RecordingPolicy("t1", export_target=target), datetime.now(UTC))
            return rec.path.split("/", 1)[1]
        finally:
            await engine.dispose()

    remote = asyncio.run(seed())
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("CCBRIDGE_RECORDINGS__DIR", str(files.root))
    monkeypatch.setenv("CCBRIDGE_EGRESS_ALLOW_NETWORKS", '["127.0.0.1/32"]')  # its FTP server
    try:
        result = CliRunner().invoke(
            app, ["recordings", "export", "t1", "--from", "2026-01-10", "--to", "2026-01-11"]
        )
    finally:
        server.kill()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["files"] == 1
    assert (client_root / remote).read_bytes() == (files.root / "t1" / remote).read_bytes()
    assert (client_root / "MANIFEST.sha256").read_text().endswith(f"  {remote}\n")


def test_offboard_cli_prints_a_report_clients_verify_with_the_public_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import json

    from sqlalchemy import text

    from ccbridge.domain.recordings.signing import sign_report
    from ccbridge.settings import DEV_LINK_SECRET

    url, files, client_root, server = _cli_world(tmp_path)
    legacy_manifest = {"report_id": "old", "tenant": "t0", "recordings": []}

    async def seed() -> str:
        await run_migrations_async(url)
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO tenants (id, name, status, timezone, created_at) VALUES "
                        "('t9', 'T9', 'terminated', 'UTC', CURRENT_TIMESTAMP)"
                    )
                )
            sessions = create_session_factory(engine)
            store = RecordingRepository(sessions, cipher=secret_box(Settings()))
            rec = await make_recording(files, "t9", datetime(2026, 1, 10, 9, tzinfo=UTC))
            await store.add(rec, datetime.now(UTC))
            target = ExportTarget("127.0.0.1", server.port, "client", "client-pw", tls=False)
            await store.set_policy(RecordingPolicy("t9", export_target=target), datetime.now(UTC))
            async with sessions() as session:  # a report signed before Ed25519 (HMAC)
                session.add(
                    PurgeReportRow(
                        id="old",
                        tenant="t0",
                        created_at=datetime.now(UTC),
                        manifest=legacy_manifest,
                        signature=sign_report(DEV_LINK_SECRET.encode(), legacy_manifest),
                    )
                )
                await session.commit()
            return rec.path.split("/", 1)[1]
        finally:
            await engine.dispose()

    remote = asyncio.run(seed())
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("CCBRIDGE_RECORDINGS__DIR", str(files.root))
    monkeypatch.setenv("CCBRIDGE_EGRESS_ALLOW_NETWORKS", '["127.0.0.1/32"]')  # its FTP server
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["recordings", "offboard", "t9", "--yes"])
    finally:
        server.kill()
    assert result.exit_code == 0, result.output
    assert "final export" in result.output
    assert (client_root / remote).exists()
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["manifest"]["tenant"] == "t9"
    assert not (files.root / "t9").exists()
    again = runner.invoke(app, ["recordings", "offboard", "t9", "--yes"])  # already done
    assert again.exit_code == 0, again.output
    assert json.loads(again.output.strip().splitlines()[-1]) == printed

    pem = runner.invoke(app, ["recordings", "public-key"])
    assert pem.exit_code == 0
    (tmp_path / "ccbridge.pub").write_text(pem.stdout)
    (tmp_path / "report.json").write_text(json.dumps(printed))
    offline = [
        "--file",
        str(tmp_path / "report.json"),
        "--public-key",
        str(tmp_path / "ccbridge.pub"),
    ]
    monkeypatch.setenv("CCBRIDGE_RECORDINGS__REPORT_SIGNING_KEY", "not-the-key-that-signed-it-0123")
    ok = runner.invoke(app, ["recordings", "verify-report", *offline])
    assert (ok.exit_code, ok.output.strip()) == (0, "signature OK")  # public key only
    printed["manifest"]["call_rows_deleted"] = 99
    (tmp_path / "report.json").write_text(json.dumps(printed))
    bad = runner.invoke(app, ["recordings", "verify-report", *offline])
    assert (bad.exit_code, bad.output.strip()) == (1, "signature MISMATCH")
    monkeypatch.delenv("CCBRIDGE_RECORDINGS__REPORT_SIGNING_KEY")
    stored = runner.invoke(app, ["recordings", "verify-report", printed["manifest"]["report_id"]])
    assert (stored.exit_code, stored.output.strip()) == (0, "signature OK")
    legacy = runner.invoke(app, ["recordings", "verify-report", "old"])
    assert (legacy.exit_code, legacy.output.strip()) == (0, "signature OK")


def _call_data(tenant: str, n: int, at: datetime) -> list[object]:
    """*n* rows of every kind of per-call data for *tenant* (what the purge must remove)."""
    endpoint = f"ep-{tenant}"
    rows: list[object] = [
        WebhookEndpointRow(
            id=endpoint,
            tenant=tenant,
            url="https://crm.example.com/hook",
            event_types=["*"],
            secrets=[],
            enabled=True,
            disabled_reason=None,
            cursor=0,
            attempts=0,
            next_attempt_at=None,
            failing_since=None,
            created_at=at,
            updated_at=at,
        )
    ]
    for i in range(n):
        call_id = f"{tenant}-call-{i}"
        rows += [
            CallRow(
                call_id=call_id,
                started_at=at,
                state="ended",
                tenant=tenant,
                legs=[],
                version=1,
                updated_at=at,
            ),
            CallParamsRow(
                call_id=call_id,
                tenant=tenant,
                detail={"caller": "13800138000"},
                version=1,
                updated_at=at,
            ),
            EventRow(
                tenant=tenant,
                seq=i + 1,
                id=f"{tenant}-ev-{i}",
                type="call.ended",
                call_id=call_id,
                occurred_at=at,
                recorded_at=at,
                data={"caller": "13800138000"},
                envelope=None,
                has_extras=False,
            ),
            IvrCallLogRow(
                tenant_id=tenant,
                flow_id="main",
                revision=1,
                uniqueid=call_id,
                caller="13800138000",
                started_at=at,
                ended_at=at,
                path=["menu"],
                steps=[],
                route="queue",
                target="sales",
                reason="menu",
                drop_off_node=None,
            ),
            WebhookDeliveryRow(
                endpoint_id=endpoint,
                tenant=tenant,
                event_seq=i + 1,
                event_id=f"{tenant}-ev-{i}",
                status="succeeded",
                manual=False,
                attempt=1,
                http_status=200,
                error=None,
                duration_ms=5,
                at=at,
            ),
        ]
    return rows


async def test_purge_removes_every_kind_of_call_data_and_signs_the_counts(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """REC-06: no copy of a terminated tenant's calls is kept: events, call records, call
    parameters, IVR call logs and webhook deliveries go with its recordings, and the signed
    report counts each; another tenant's rows stay."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    async with session_factory() as session:
        session.add_all([*_call_data("t9", 3, at), *_call_data("t1", 2, at)])
        await session.commit()
    store = RecordingRepository(session_factory, cipher=CIPHER)
    exports = ExportRepository(session_factory)
    files = LocalRecordingFiles(tmp_path / "rec")
    clock = SettableClock(at)
    export = ExportService(store, exports, files, FtplibTransport(timeout=5), clock)
    service = OffboardingService(store, exports, export, files, clock, SIGNER)

    report = await service.purge("t9", None)

    m = report.manifest
    counted = {k: v for k, v in m.items() if k.endswith("_rows_deleted")}
    assert counted == {
        "recording_rows_deleted": 0,
        "call_rows_deleted": 3,
        "call_param_rows_deleted": 3,
        "event_rows_deleted": 3,
        "ivr_call_log_rows_deleted": 3,
        "webhook_delivery_rows_deleted": 3,
        "webhook_endpoint_rows_deleted": 1,
    }
    assert verify_with_public_key(SIGNER.public_key_pem(), m, report.signature)
    assert not verify_with_public_key(
        SIGNER.public_key_pem(), {**m, "event_rows_deleted": 0}, report.signature
    )
    async with session_factory() as session:
        for table, column in (
            (CallRow, CallRow.tenant),
            (CallParamsRow, CallParamsRow.tenant),
            (EventRow, EventRow.tenant),
            (IvrCallLogRow, IvrCallLogRow.tenant_id),
            (WebhookDeliveryRow, WebhookDeliveryRow.tenant),
            (WebhookEndpointRow, WebhookEndpointRow.tenant),
        ):
            left = dict(
                (await session.execute(select(column, func.count()).group_by(column))).all()
            )
            assert "t9" not in left, table.__tablename__
            assert left["t1"] >= 1, table.__tablename__
