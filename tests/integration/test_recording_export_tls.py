"""Push export over explicit FTPS to a real pyftpdlib TLS server with a self-signed cert: the
target's ``ca_pem`` makes the client trust it; without it (or with another CA) the push fails
with a clear error and nothing is marked as sent."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.repositories.recording_exports import ExportRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.egress import EgressError
from ccbridge.domain.recordings.export import ExportStatus
from ccbridge.domain.recordings.model import ExportTarget, Recording, RecordingPolicy
from ccbridge.ftp.push import ExportTlsError, FtplibTransport
from ccbridge.services.recording_export import ExportFailedError, ExportService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, SettableClock, make_recording
from tests.integration.test_recording_export import ClientServer
from tests.support.egress import loopback_egress

DAY = datetime(2026, 1, 10, tzinfo=UTC)


def self_signed(directory: Path, name: str) -> tuple[Path, str]:
    """A self-signed cert for 127.0.0.1 (SAN), key included; returns (PEM file, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    path = directory / f"{name}.pem"
    path.write_bytes(
        cert_pem.encode()
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, cert_pem


async def _setup(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> tuple[ExportService, ExportRepository, list[Recording], LocalRecordingFiles]:
    """Two recordings of t1 on DAY and an export service over them."""
    store = RecordingRepository(session_factory, cipher=CIPHER)
    files = LocalRecordingFiles(tmp_path / "rec")
    clock = SettableClock(DAY + timedelta(days=1))
    recs = [await make_recording(files, "t1", DAY + timedelta(hours=h)) for h in (9, 10)]
    for rec in recs:
        await store.add(rec, clock.now())
    exports = ExportRepository(session_factory)
    service = ExportService(
        store, exports, files, FtplibTransport(timeout=5), clock, egress=loopback_egress()
    )
    return service, exports, recs, files


async def test_ftps_push_trusts_the_targets_own_ca(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    certfile, cert_pem = self_signed(tmp_path, "client-ftps")
    root = tmp_path / "client"
    root.mkdir()
    server = ClientServer(root, certfile=certfile)
    try:
        service, _, recs, files = await _setup(session_factory, tmp_path)
        target = ExportTarget(
            "127.0.0.1", server.port, "client", "client-pw", True, "/tls", ca_pem=cert_pem
        )
        store = RecordingRepository(session_factory, cipher=CIPHER)
        await store.set_policy(RecordingPolicy("t1", export_target=target), DAY)
        job = await service.create("t1", DAY, DAY + timedelta(days=1))
        done = await service.run(job.id)
    finally:
        server.kill()
    assert done.status is ExportStatus.DONE, done.error
    assert done.sent_files == 2
    for rec in recs:
        remote = root / "tls" / rec.path.split("/", 1)[1]
        assert remote.read_bytes() == (files.root / rec.path).read_bytes()
    assert (root / "tls" / "MANIFEST.sha256").read_text().count("\n") == 2


@pytest.mark.parametrize("trust", ["system store", "another CA"])
async def test_untrusted_ftps_certificate_fails_clearly_and_sends_nothing(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path, trust: str
) -> None:
    certfile, _ = self_signed(tmp_path, "client-ftps")
    _, other_pem = self_signed(tmp_path, "someone-else")
    root = tmp_path / "client"
    root.mkdir()
    server = ClientServer(root, certfile=certfile)
    try:
        service, exports, _, _ = await _setup(session_factory, tmp_path)
        ca = None if trust == "system store" else other_pem
        target = ExportTarget(
            "127.0.0.1", server.port, "client", "client-pw", True, "/tls", ca_pem=ca
        )
        store = RecordingRepository(session_factory, cipher=CIPHER)
        await store.set_policy(RecordingPolicy("t1", export_target=target), DAY)
        job = await service.create("t1", DAY, DAY + timedelta(days=1))
        with pytest.raises(ExportFailedError) as caught:
            await service.run(job.id)
    finally:
        server.kill()
    tls = caught.value.__cause__
    assert isinstance(tls, EgressError)
    assert isinstance(tls.__cause__, ExportTlsError)  # our log keeps the detail ...
    assert f"127.0.0.1:{server.port}" in str(tls.__cause__)
    assert "ca_pem" in str(tls.__cause__)  # ... and what to do about it
    failed = await exports.get(job.id)
    assert failed is not None
    assert failed.status is ExportStatus.FAILED
    assert failed.error == "tls_error"  # the tenant sees one word (docs: set ca_pem)
    assert (failed.sent_files, failed.sent_bytes) == (0, 0)
    assert not any(f.sent for f in await exports.files(job.id))
    assert not any(root.rglob("*"))  # the server received nothing
    assert server.events == []
