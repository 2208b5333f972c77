"""The FTP(S) service for real: pyftpdlib server, ftplib client, DB accounts, audit log."""

from __future__ import annotations

import asyncio
import ftplib
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.repositories.ftp_accounts import FtpAccountRepository
from ccbridge.domain.access import AuditEntry
from ccbridge.domain.recordings.model import FtpAccount
from ccbridge.domain.recordings.passwords import hash_password
from ccbridge.ftp.bridge import LoopBridge
from ccbridge.ftp.server import FtpServerConfig, FtpService
from tests.integration.recording_support import write_wav

T = TypeVar("T")
NOW = datetime(2026, 1, 20, tzinfo=UTC)


def make_cert(directory: Path) -> Path:
    """A self-signed certificate and key for 127.0.0.1 in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = directory / "ftps.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


class Rig:
    """Accounts in the DB, a recordings tree with two tenants and hostile symlinks."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], root: Path) -> None:
        self.sessions = sessions
        self.root = root
        self.accounts = FtpAccountRepository(sessions)

    async def append(self, entry: AuditEntry) -> None:
        async with SqlAccessUnitOfWork(self.sessions) as uow:
            await uow.audit.append(entry)
            await uow.commit()

    async def add(self, user: str, tenant: str, password: str, tls: bool = False) -> None:
        await self.accounts.add(FtpAccount(user, tenant, hash_password(password), tls, NOW, "test"))

    async def audit(
        self, action: str, bridge: LoopBridge, *, at_least: int = 0
    ) -> list[AuditEntry]:
        """Audit entries of *action*; waits (up to 2 s) for *at_least* of them, because the
        FTP thread replies to the client before it hands the audit entry to the loop."""
        entries: list[AuditEntry] = []
        for _ in range(200):
            if bridge.pending() == 0:
                async with SqlAccessUnitOfWork(self.sessions) as uow:
                    entries = [
                        e
                        for e in await uow.audit.list(tenant_id=None, limit=1000)
                        if e.action == action
                    ]
                if len(entries) >= at_least:
                    break
            await asyncio.sleep(0.01)
        return entries


@pytest.fixture
async def rig(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[Rig]:
    root = tmp_path / "recordings"
    rig = Rig(session_factory, root)
    await rig.add("acme", "t1", "pw-acme-1234")
    await rig.add("beta", "t2", "pw-beta-1234")
    await rig.add("acme-tls", "t1", "pw-tls-1234", tls=True)
    write_wav(root, "t1/2026/01/10/1768000000.1.wav", 0.5)
    write_wav(root, "t2/2026/01/10/1768000000.2.wav", 0.5)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (root / "t1" / "escape").symlink_to(root / "t2", target_is_directory=True)
    (root / "t1" / "leak.wav").symlink_to(outside)
    return rig


async def start(rig: Rig, **config: object) -> tuple[FtpService, LoopBridge]:
    bridge = LoopBridge(asyncio.get_running_loop(), rig.append, rig.accounts.get)
    service = FtpService(
        FtpServerConfig(root=rig.root, host="127.0.0.1", port=0, auth_failed_delay=0.05, **config),  # type: ignore[arg-type]
        bridge,
    )
    service.start()
    return service, bridge


async def in_thread(fn: Callable[[], T]) -> T:
    """ftplib blocks; the event loop must stay free to answer the server's DB lookups."""
    return await asyncio.to_thread(fn)


def login(port: int, user: str, password: str) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=5)
    ftp.login(user, password)
    return ftp


def retr(ftp: ftplib.FTP, path: str) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


async def test_tenant_sees_and_downloads_only_its_own_files(rig: Rig) -> None:
    service, bridge = await start(rig)
    try:

        def session() -> tuple[list[str], bytes, list[str]]:
            ftp = login(service.port, "acme", "pw-acme-1234")
            listing = ftp.nlst("/2026/01/10")
            data = retr(ftp, "/2026/01/10/1768000000.1.wav")
            errors = []
            for bad in ("/2026/01/10/1768000000.2.wav", "/t2/2026/01/10/1768000000.2.wav"):
                with pytest.raises(ftplib.error_perm) as err:
                    retr(ftp, bad)
                errors.append(str(err.value)[:3])
            ftp.quit()
            return listing, data, errors

        listing, data, errors = await in_thread(session)
        assert [Path(p).name for p in listing] == ["1768000000.1.wav"]
        assert data == (rig.root / "t1/2026/01/10/1768000000.1.wav").read_bytes()
        assert errors == ["550", "550"]

        def beta() -> list[str]:
            ftp = login(service.port, "beta", "pw-beta-1234")
            names = ftp.nlst("/2026/01/10")
            with pytest.raises(ftplib.error_perm):
                retr(ftp, "/2026/01/10/1768000000.1.wav")
            ftp.quit()
            return names

        assert [Path(p).name for p in await in_thread(beta)] == ["1768000000.2.wav"]
        logins = await rig.audit("ftp.login", bridge, at_least=2)
        assert {(e.tenant_id, e.object_id) for e in logins} == {("t1", "acme"), ("t2", "beta")}
        downloads = await rig.audit("recording.ftp_download", bridge, at_least=1)
        assert [(e.tenant_id, e.object_id) for e in downloads] == [
            ("t1", "/2026/01/10/1768000000.1.wav")
        ]
    finally:
        service.stop()


TRAVERSALS = [
    "RETR ../t2/2026/01/10/1768000000.2.wav",
    "RETR /../../t2/2026/01/10/1768000000.2.wav",
    "RETR ..%2ft2%2f2026%2f01%2f10%2f1768000000.2.wav",
    "RETR %2e%2e/t2/2026/01/10/1768000000.2.wav",
    "RETR %c0%ae%c0%ae/t2/2026/01/10/1768000000.2.wav",
    "RETR ..\\t2\\2026\\01\\10\\1768000000.2.wav",
    "RETR /etc/passwd",
    "RETR escape/2026/01/10/1768000000.2.wav",
    "RETR leak.wav",
    "CWD escape",
    "CWD ..",
    "LIST ../t2",
]


async def test_traversal_variants_answer_550_and_are_audited(rig: Rig) -> None:
    service, bridge = await start(rig)
    try:

        def attack() -> list[str]:
            ftp = login(service.port, "acme", "pw-acme-1234")
            answers = []
            for line in TRAVERSALS:
                cmd, _, _arg = line.partition(" ")
                if cmd in ("RETR", "LIST"):
                    ftp.voidcmd("TYPE I")
                    with pytest.raises(ftplib.error_perm) as err:
                        ftp.transfercmd(line)
                else:
                    with pytest.raises(ftplib.error_perm) as err:
                        ftp.sendcmd(line)
                answers.append(str(err.value)[:3])
            ftp.quit()
            return answers

        assert await in_thread(attack) == ["550"] * len(TRAVERSALS)
        refused = await rig.audit("ftp.path_refused", bridge, at_least=len(TRAVERSALS))
        assert len(refused) == len(TRAVERSALS)
        assert all(e.tenant_id == "t1" and e.actor == "ftp:acme" for e in refused)
        reasons = {e.detail["reason"] for e in refused}
        assert {"dot_dot", "encoded_or_escaped", "outside_root", "not_a_file"} <= reasons
        assert await rig.audit("recording.ftp_download", bridge) == []
    finally:
        service.stop()


async def test_ftps_login_with_self_signed_cert_and_tls_requirement(
    rig: Rig, tmp_path: Path
) -> None:
    pem = make_cert(tmp_path)
    service, bridge = await start(rig, certfile=str(pem))
    try:

        def over_tls(user: str, password: str) -> bytes:
            ftp = ftplib.FTP_TLS()
            ftp.connect("127.0.0.1", service.port, timeout=5)
            ftp.auth()  # AUTH TLS; the test trusts any cert (self-signed)
            ftp.login(user, password)
            ftp.prot_p()
            data = retr(ftp, "/2026/01/10/1768000000.1.wav")
            ftp.quit()
            return data

        expected = (rig.root / "t1/2026/01/10/1768000000.1.wav").read_bytes()
        assert await in_thread(lambda: over_tls("acme-tls", "pw-tls-1234")) == expected

        def plain_login_to_tls_account() -> str:
            with pytest.raises(ftplib.error_perm) as err:
                login(service.port, "acme-tls", "pw-tls-1234")
            return str(err.value)

        assert "requires auth tls" in (await in_thread(plain_login_to_tls_account)).lower()
        logins = await rig.audit("ftp.login", bridge, at_least=1)
        assert [(e.object_id, e.detail["tls"]) for e in logins] == [("acme-tls", True)]
    finally:
        service.stop()

    required, _ = await start(rig, certfile=str(pem), tls_control_required=True)
    try:

        def plain_user() -> str:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", required.port, timeout=5)
            with pytest.raises(ftplib.error_perm) as err:
                ftp.sendcmd("USER acme")
            ftp.close()
            return str(err.value)

        assert (await in_thread(plain_user)).startswith("550 SSL/TLS required")
    finally:
        required.stop()


async def test_failed_logins_lock_the_account_out(rig: Rig) -> None:
    service, bridge = await start(rig, throttle_failures=3)
    try:

        def guess() -> str:
            for _ in range(3):
                with pytest.raises(ftplib.error_perm):
                    login(service.port, "acme", "wrong")
            with pytest.raises(ftplib.error_perm) as err:
                login(service.port, "acme", "pw-acme-1234")  # right password, still locked
            return str(err.value)

        assert "too many failed logins" in (await in_thread(guess)).lower()
        failed = await rig.audit("ftp.login_failed", bridge, at_least=4)
        assert len(failed) == 4
        assert {e.object_id for e in failed} == {"acme"}
        assert await rig.audit("ftp.login", bridge) == []
    finally:
        service.stop()
