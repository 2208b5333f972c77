"""Use cases for tenants, API keys, person tokens and the audit log.

Every write and its audit entry share one unit of work (one transaction): either both land or
neither does. Tenant checks come before scope checks, so another tenant's object is always
"not found" (404) and a missing scope on one's own tenant is "forbidden" (403).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from ccbridge.domain.access import (
    PERSON_ROLES,
    ROLE_SCOPES,
    AccessDeniedError,
    ApiKey,
    AuditEntry,
    Contact,
    Principal,
    Role,
    Tenant,
    TenantStatus,
    allowed_scopes,
    hash_secret,
    new_api_key,
    parse_api_key,
    require_tenant_access,
    scoped_tenant,
    secret_matches,
    tenant_not_found,
)
from ccbridge.domain.ha.placement import (
    DEFAULT_PBX_ID,
    default_placement,
    move_refusal,
    orphaned_placements,
    require_known_pbx,
)
from ccbridge.errors import ConflictError, InvalidRequestError, NotFoundError
from ccbridge.services.key_cache import KeyCache, credential_digest
from ccbridge.services.ports import AccessUnitOfWork, TokenSigner
from ccbridge.services.tenant_status import TenantStatusCache

TOUCH_INTERVAL = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key, not on every request."""
SETTLE_SECONDS = 5.0
"""How long shutdown waits for key-use records in flight."""


log = structlog.get_logger(__name__)

StatusChanged = Callable[[str, TenantStatus], Awaitable[None]]
"""Called after a tenant's status change has committed (e.g. a termination retires its PBX
queues and members)."""


@dataclass(frozen=True, slots=True)
class TenantChanges:
    """A partial update; fields left ``None`` stay as they are."""

    name: str | None = None
    business_contact: Contact | None = None
    technical_contact: Contact | None = None
    status: TenantStatus | None = None
    timezone: str | None = None
    pbx_id: str | None = None
    """Place the tenant on another known PBX (platform admin only; ADR 0033)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed person token and when it expires."""

    token: str
    issued_at: datetime
    expires_at: datetime
    principal: Principal


def key_principal(key: ApiKey) -> Principal:
    """The principal an API key authenticates as."""
    return Principal(
        actor=f"key:{key.key_id}", role=key.role, tenant_id=key.tenant_id, scopes=key.scopes
    )


def _retrieve(answer: asyncio.Future[Principal | None]) -> None:
    """Mark a look-up's failure as seen: a refresh ahead has no caller to raise it to."""
    if not answer.cancelled():
        answer.exception()


class AccessService:
    """Tenants, keys, tokens and audit reads; every method takes the calling principal."""

    def __init__(
        self,
        uow: Callable[[], AccessUnitOfWork],
        signer: TokenSigner,
        *,
        now: Callable[[], datetime],
        token_ttl_seconds: int,
        key_cache: KeyCache | None = None,
        tenant_status: TenantStatusCache | None = None,
        on_status_changed: StatusChanged | None = None,
        home_pbx: str | None = DEFAULT_PBX_ID,
    ) -> None:
        """Keep the unit-of-work factory, the token signer, the clock and the caches;
        *home_pbx* is this node's PBX, where new tenants are placed by default (``None`` on
        an API-only process, which serves no PBX)."""
        self._uow = uow
        self._signer = signer
        self._now = now
        self._ttl = token_ttl_seconds
        self._touched: dict[str, datetime] = {}
        self._keys = key_cache if key_cache is not None else KeyCache()
        self._key_lookups: dict[bytes, asyncio.Future[Principal | None]] = {}
        self._key_tasks: set[asyncio.Task[None]] = set()
        """Key look-ups in flight, including refreshes ahead and touches after the answer
        (kept from the GC; shutdown settles them)."""
        self._key_drops = 0
        """Bumped whenever keys leave the cache: a look-up that began before must not put
        back what was dropped (a revoked key, a suspended tenant's keys)."""
        self._status = tenant_status or TenantStatusCache(self._read_status)
        self._on_status_changed = on_status_changed
        self._home_pbx = home_pbx

    @property
    def tenant_status(self) -> TenantStatusCache:
        """The cache every credential check reads (shared with inbound call routing)."""
        return self._status

    async def settle(self) -> None:
        """Let the key-use records still in flight finish before the database closes
        (shutdown); one that takes over ``SETTLE_SECONDS`` is cancelled, losing only a touch."""
        if not self._key_tasks:
            return
        _done, late = await asyncio.wait(set(self._key_tasks), timeout=SETTLE_SECONDS)
        for task in late:
            task.cancel()
        if late:  # their sessions roll back before the database closes
            await asyncio.wait(late, timeout=SETTLE_SECONDS)

    # --- authentication --------------------------------------------------------------------

    async def admits(self, principal: Principal) -> bool:
        """The one tenant check of every credential (key or person token): its tenant is active.

        The platform admin belongs to no tenant. The status is cached briefly and replaced at
        once when this process changes it, so a suspension locks out the next request.
        """
        if principal.tenant_id is None:
            return principal.is_platform
        return await self._status.is_active(principal.tenant_id)

    async def authenticate_key(self, plaintext: str) -> Principal | None:
        """Return the key's principal, or ``None`` (unknown, wrong secret, revoked, tenant off)."""
        found = await self._key_principal(plaintext)
        if found is None or not await self.admits(found):
            return None
        return found

    async def _key_principal(self, plaintext: str) -> Principal | None:
        """The principal of a good, unrevoked key (cached), whatever its tenant's status."""
        parsed = parse_api_key(plaintext)
        if parsed is None:
            return None
        digest = credential_digest(plaintext)
        now = self._now()
        cached = self._keys.get(digest, now)
        if cached is not None:
            if self._keys.due_for_refresh(digest, now) and digest not in self._key_lookups:
                self._start_look_up(parsed, digest)  # refresh ahead: nobody waits for it
            return cached
        # One look-up per key at a time: when a busy key's cache entry expires, the requests
        # that arrive meanwhile wait for that read instead of each running its own (a storm
        # of sessions and touches that stalled polls for a second; docs/benchmarks.md, B6).
        looking = self._key_lookups.get(digest) or self._start_look_up(parsed, digest)
        return await asyncio.shield(looking)  # one caller going away must not cancel the rest

    def _start_look_up(
        self, parsed: tuple[str, str], digest: bytes
    ) -> asyncio.Future[Principal | None]:
        """Start the one look-up of *digest*; its answer goes to whoever awaits it."""
        looking: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        looking.add_done_callback(_retrieve)
        self._key_lookups[digest] = looking
        task = asyncio.create_task(self._look_up_key(parsed, digest, self._key_drops, looking))
        self._key_tasks.add(task)
        task.add_done_callback(self._key_tasks.discard)
        return looking

    async def _look_up_key(
        self,
        parsed: tuple[str, str],
        digest: bytes,
        drops: int,
        answer: asyncio.Future[Principal | None],
    ) -> None:
        """Read and check a key, cache it (unless a key or tenant was dropped from the cache
        meanwhile) and answer the waiting requests; then touch its last use, at most every
        minute, so no request waits for that write behind the database's writer."""
        key_id, secret = parsed
        try:
            async with self._uow() as uow:
                key = await self._read_key(uow, key_id, secret)
                now = self._now()
                found = None if key is None else key_principal(key)
                if found is None:
                    self._keys.drop(digest)  # a refresh that found the key revoked or gone
                elif drops == self._key_drops:
                    self._keys.put(digest, key_id, found, now)
                self._forget_look_up(digest, answer)
                answer.set_result(found)
                last = None if key is None else self._touched.get(key_id) or key.last_used_at
                if key is not None and (last is None or now - last >= TOUCH_INTERVAL):
                    self._touched[key_id] = now
                    await uow.api_keys.touch(key_id, now, unless_after=now - TOUCH_INTERVAL)
                    await uow.commit()
        except BaseException as exc:
            if not answer.done():
                self._forget_look_up(digest, answer)
                if isinstance(exc, asyncio.CancelledError):
                    answer.cancel()
                else:
                    answer.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("api_key_touch_failed", key_id=key_id, error=repr(exc))
            if not isinstance(exc, Exception):
                raise

    def _forget_look_up(self, digest: bytes, answer: asyncio.Future[Principal | None]) -> None:
        """Let the next cache miss start its own look-up (this one has answered)."""
        if self._key_lookups.get(digest) is answer:
            del self._key_lookups[digest]

    async def _read_key(self, uow: AccessUnitOfWork, key_id: str, secret: str) -> ApiKey | None:
        """The key if it exists, its secret matches and it is not revoked; its tenant's
        status is remembered from the same transaction, sparing the status cache a read."""
        key = await uow.api_keys.get(key_id)
        if key is None or not secret_matches(secret, key.secret_sha256):
            return None
        if key.revoked_at is not None:
            return None
        if key.tenant_id is not None:
            tenant = await uow.tenants.get(key.tenant_id)
            self._status.remember(key.tenant_id, tenant.status if tenant else None)
        return key

    # --- tenants ---------------------------------------------------------------------------

    async def create_tenant(
        self,
        principal: Principal,
        *,
        tenant_id: str,
        name: str,
        business_contact: Contact | None = None,
        technical_contact: Contact | None = None,
        timezone: str = "Asia/Shanghai",
        pbx_id: str | None = None,
    ) -> Tenant:
        """Create a client company (platform admin only), on *pbx_id* or this node's PBX."""
        _platform_only(principal, "create tenants")
        principal.require("tenants:write")
        async with self._uow() as uow:
            tenant = Tenant(
                id=tenant_id,
                name=name,
                business_contact=business_contact,
                technical_contact=technical_contact,
                status=TenantStatus.ACTIVE,
                timezone=timezone,
                created_at=self._now(),
                pbx_id=await self._placeable(uow, pbx_id),
            )
            await uow.tenants.add(tenant)
            await uow.audit.append(
                self._entry(
                    principal,
                    tenant_id,
                    "tenant.created",
                    "tenant",
                    tenant_id,
                    {"name": name, "pbx_id": tenant.pbx_id},
                )
            )
            await uow.commit()
        return tenant

    async def get_tenant(self, principal: Principal, tenant_id: str) -> Tenant:
        """Return one tenant; another tenant's answers ``NotFoundError``."""
        require_tenant_access(principal, tenant_id)
        principal.require("tenants:read")
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
        if tenant is None:
            raise tenant_not_found(tenant_id)
        return tenant

    async def list_tenants(
        self, principal: Principal, *, after: str | None = None, limit: int = 100
    ) -> Sequence[Tenant]:
        """Every tenant for the platform admin; one's own tenant for everyone else."""
        principal.require("tenants:read")
        only = scoped_tenant(principal, None)
        async with self._uow() as uow:
            return await uow.tenants.list(only=only, after=after, limit=limit)

    async def update_tenant(
        self, principal: Principal, tenant_id: str, changes: TenantChanges
    ) -> Tenant:
        """Change a tenant; only the platform admin may change its status."""
        require_tenant_access(principal, tenant_id)
        principal.require("tenants:write")
        if changes.status is not None:
            _platform_only(principal, "change a tenant's status")
        if changes.pbx_id is not None:
            _platform_only(principal, "place a tenant on a PBX")
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
            if tenant is None:
                raise tenant_not_found(tenant_id)
            if changes.pbx_id is not None and changes.pbx_id != tenant.pbx_id:
                await self._placeable(uow, changes.pbx_id)
                refusal = move_refusal(
                    tenant_id, changes.pbx_id, await uow.tenants.activity(tenant_id)
                )
                if refusal is not None:
                    raise ConflictError(refusal, field="body.pbx_id")
            fields = {k: v for k, v in _changes_dict(changes).items() if v is not None}
            updated = replace(tenant, **fields)
            await uow.tenants.update(updated)
            await uow.audit.append(
                self._entry(
                    principal,
                    tenant_id,
                    "tenant.updated",
                    "tenant",
                    tenant_id,
                    {"changed": sorted(fields)},
                )
            )
            await uow.commit()
        self._key_drops += 1
        self._keys.drop_tenant(tenant_id)
        self._status.changed(tenant_id, updated.status)
        hook = self._on_status_changed
        if hook is not None and changes.status not in (None, tenant.status):
            await hook(tenant_id, updated.status)
        return updated

    async def _known_pbxs(self, uow: AccessUnitOfWork) -> set[str]:
        """The PBXs with a lease row, and this node's own."""
        known = set(await uow.tenants.known_pbxs())
        if self._home_pbx is not None:
            known.add(self._home_pbx)
        return known

    async def _placeable(self, uow: AccessUnitOfWork, pbx_id: str | None) -> str:
        """*pbx_id* (or the default placement) when the database knows that PBX, else 422 on
        ``body.pbx_id``."""
        known = await self._known_pbxs(uow)
        chosen = pbx_id or default_placement(self._home_pbx, known)
        if chosen is None:
            raise InvalidRequestError(
                f"name the PBX to place the tenant on: this database serves {len(known)} "
                f"({', '.join(sorted(known)) or 'none yet'})",
                field="body.pbx_id",
            )
        return require_known_pbx(chosen, known, field="body.pbx_id")

    async def adopt_orphaned_tenants(self) -> int:
        """Place on this node's PBX every tenant whose PBX the database does not know (a
        renamed ``CCBRIDGE_HA__PBX_ID``, or tenants from before placements); their count."""
        home = self._home_pbx
        if home is None:
            return 0  # an API-only process serves no PBX: nothing is adopted here
        async with self._uow() as uow:
            known = await self._known_pbxs(uow)
            orphans = orphaned_placements(await uow.tenants.placements(), known)
            moved = await uow.tenants.place_all(orphans, home) if orphans else 0
            await uow.commit()
        if moved:
            log.info("tenants_adopted", count=moved, pbx=home, from_pbx=sorted(orphans))
        return moved

    # --- API keys --------------------------------------------------------------------------

    async def create_api_key(
        self,
        principal: Principal,
        tenant_id: str,
        *,
        role: Role,
        name: str,
        scopes: frozenset[str] | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a tenant's key; return it and its plaintext (shown once, never stored)."""
        require_tenant_access(principal, tenant_id)
        principal.require("keys:write")
        if role is Role.PLATFORM_ADMIN:
            raise AccessDeniedError("platform keys are created with `ccbridge keys create`")
        granted = allowed_scopes(role, scopes, principal)
        async with self._uow() as uow:
            if await uow.tenants.get(tenant_id) is None:
                raise tenant_not_found(tenant_id)
            key, plaintext = self._new_key(tenant_id, role, granted, name, principal.actor)
            await uow.api_keys.add(key)
            await uow.audit.append(
                self._entry(
                    principal,
                    tenant_id,
                    "api_key.created",
                    "api_key",
                    key.key_id,
                    {"role": role.value, "name": name, "scopes": sorted(granted)},
                )
            )
            await uow.commit()
        return key, plaintext

    async def list_api_keys(self, principal: Principal, tenant_id: str) -> Sequence[ApiKey]:
        """List a tenant's keys (hashes are never shown by the API)."""
        require_tenant_access(principal, tenant_id)
        principal.require("keys:read")
        async with self._uow() as uow:
            if await uow.tenants.get(tenant_id) is None:
                raise tenant_not_found(tenant_id)
            return await uow.api_keys.list(tenant_id)

    async def revoke_api_key(self, principal: Principal, tenant_id: str, key_id: str) -> ApiKey:
        """Revoke a tenant's key; it answers 401 from then on. Idempotent."""
        require_tenant_access(principal, tenant_id)
        principal.require("keys:write")
        async with self._uow() as uow:
            if await uow.tenants.get(tenant_id) is None:
                raise tenant_not_found(tenant_id)
            key = await uow.api_keys.get(key_id)
            if key is None or key.tenant_id != tenant_id:
                raise NotFoundError(f"api key {key_id} not found")
            if key.revoked_at is not None:
                return key
            now = self._now()
            await uow.api_keys.revoke(key_id, now)
            await uow.audit.append(
                self._entry(principal, tenant_id, "api_key.revoked", "api_key", key_id, {})
            )
            await uow.commit()
        self._touched.pop(key_id, None)
        self._key_drops += 1
        self._keys.drop_key(key_id)
        return replace(key, revoked_at=now)

    async def create_system_key(
        self, *, role: Role, tenant_id: str | None, name: str, actor: str
    ) -> tuple[ApiKey, str]:
        """Create a key outside the API (CLI, dev bootstrap); audited as *actor*."""
        if (role is Role.PLATFORM_ADMIN) != (tenant_id is None):
            raise ValueError("platform_admin keys have no tenant; every other role needs one")
        system = Principal(actor=actor, role=Role.PLATFORM_ADMIN, tenant_id=None)
        async with self._uow() as uow:
            if tenant_id is not None and await uow.tenants.get(tenant_id) is None:
                raise tenant_not_found(tenant_id)
            key, plaintext = self._new_key(tenant_id, role, ROLE_SCOPES[role], name, actor)
            await uow.api_keys.add(key)
            await uow.audit.append(
                self._entry(
                    system,
                    tenant_id,
                    "api_key.created",
                    "api_key",
                    key.key_id,
                    {"role": role.value, "name": name},
                )
            )
            await uow.commit()
        return key, plaintext

    async def has_platform_key(self) -> bool:
        """Say whether an unrevoked platform-admin key exists (dev bootstrap)."""
        async with self._uow() as uow:
            return await uow.api_keys.has_active_platform_key()

    # --- tokens ----------------------------------------------------------------------------

    async def issue_token(
        self,
        principal: Principal,
        *,
        subject: str,
        role: Role,
        agent_no: str | None = None,
        tenant_id: str | None = None,
        ttl_seconds: int | None = None,
    ) -> IssuedToken:
        """Issue a short-lived token for a person (supervisor or agent) of the caller's tenant."""
        tenant = scoped_tenant(principal, tenant_id)
        if tenant is None:
            raise AccessDeniedError("name the tenant the token is for")
        principal.require("tokens:write")
        if role not in PERSON_ROLES:
            raise AccessDeniedError("tokens are for people: role supervisor or agent")
        if role is Role.AGENT and not agent_no:
            raise AccessDeniedError("an agent token needs the agent_no (工号)")
        ttl = min(ttl_seconds or self._ttl, self._ttl)
        person = Principal(
            actor=f"user:{subject}",
            role=role,
            tenant_id=tenant,
            scopes=allowed_scopes(role, None, principal),
            agent_no=agent_no,
        )
        now = self._now()
        expires = now + timedelta(seconds=ttl)
        async with self._uow() as uow:
            if await uow.tenants.get(tenant) is None:
                raise tenant_not_found(tenant)
            token = self._signer.sign(person, issued_at=now, expires_at=expires)
            await uow.audit.append(
                self._entry(
                    principal,
                    tenant,
                    "token.issued",
                    "person",
                    subject,
                    {"role": role.value, "agent_no": agent_no, "expires_at": expires.isoformat()},
                )
            )
            await uow.commit()
        return IssuedToken(token=token, issued_at=now, expires_at=expires, principal=person)

    # --- audit -----------------------------------------------------------------------------

    async def list_audit(
        self,
        principal: Principal,
        *,
        tenant_id: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEntry]:
        """Audit entries newest first: one's own tenant, or any/all for the platform admin."""
        tenant = scoped_tenant(principal, tenant_id)
        principal.require("audit:read")
        async with self._uow() as uow:
            return list(await uow.audit.list(tenant_id=tenant, before_id=before_id, limit=limit))

    # --- helpers ---------------------------------------------------------------------------

    async def _read_status(self, tenant_id: str) -> TenantStatus | None:
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
        return tenant.status if tenant is not None else None

    def _new_key(
        self, tenant_id: str | None, role: Role, scopes: frozenset[str], name: str, actor: str
    ) -> tuple[ApiKey, str]:
        key_id, secret, plaintext = new_api_key()
        key = ApiKey(
            key_id=key_id,
            tenant_id=tenant_id,
            role=role,
            scopes=scopes,
            name=name,
            secret_sha256=hash_secret(secret),
            created_at=self._now(),
            created_by=actor,
        )
        return key, plaintext

    def _entry(
        self,
        principal: Principal,
        tenant_id: str | None,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any],
    ) -> AuditEntry:
        return AuditEntry(
            at=self._now(),
            tenant_id=tenant_id,
            actor=principal.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail,
        )


def _platform_only(principal: Principal, what: str) -> None:
    if not principal.is_platform:
        raise AccessDeniedError(f"only the platform admin may {what}")


def _changes_dict(changes: TenantChanges) -> dict[str, Any]:
    return {
        "name": changes.name,
        "business_contact": changes.business_contact,
        "technical_contact": changes.technical_contact,
        "status": changes.status,
        "timezone": changes.timezone,
        "pbx_id": changes.pbx_id,
    }
