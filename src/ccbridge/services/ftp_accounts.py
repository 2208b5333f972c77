"""FTP account administration: create (password shown once), list, disable; audited."""

from __future__ import annotations

from ccbridge.domain.access import Principal
from ccbridge.domain.recordings.model import FtpAccount
from ccbridge.domain.recordings.passwords import hash_password, new_password
from ccbridge.domain.time import Clock
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.recording_ports import FtpAccountStore


class FtpAccountService:
    """Per-tenant read-only FTP logins; only scrypt hashes are stored."""

    def __init__(self, store: FtpAccountStore, audit: AuditRecorder, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock

    async def create(
        self, who: Principal, tenant: str, username: str, tls_required: bool
    ) -> tuple[FtpAccount, str]:
        """Create a login with a random password; return it with the plaintext (shown once)."""
        password = new_password()
        account = FtpAccount(
            username=username,
            tenant=tenant,
            password_hash=hash_password(password),
            tls_required=tls_required,
            created_at=self._clock.now(),
            created_by=who.actor,
        )
        if not await self._store.add(account):
            raise ConflictError(f"FTP user name {username} is taken", field="body.username")
        await self._audit.record(
            who, tenant, "ftp_account.create", "ftp_account", username, {"tls": tls_required}
        )
        return account, password

    async def list(self, tenant: str) -> list[FtpAccount]:
        """The tenant's logins."""
        return await self._store.of_tenant(tenant)

    async def disable(self, who: Principal, tenant: str, username: str) -> None:
        """Disable a login (it can no longer log in); another tenant's answers 404."""
        if not await self._store.disable(username, tenant, self._clock.now()):
            raise NotFoundError(f"FTP account {username} not found")
        await self._audit.record(who, tenant, "ftp_account.disable", "ftp_account", username)
