"""Tenants, roles, scopes and principals: who may do what, on which tenant (pure, stdlib only).

Tenant isolation rule (architecture §6.3): the tenant comes from the credential, never from the
request. A non-platform principal asking for another tenant's object gets the same answer as for
a missing object (404), so the API is not an existence oracle. A missing *scope* on the
caller's own tenant is a plain refusal (403).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ccbridge.domain.ha.placement import DEFAULT_PBX_ID
from ccbridge.errors import NotFoundError

TENANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
"""Tenant slug: also the ``CCB_TENANT`` channel variable and the queue-name prefix."""

API_KEY_PREFIX = "ccb"
_KEY_ID_RE = re.compile(r"^[a-z0-9]{12}$")


class Role(StrEnum):
    """Roles of seeds §2.13 plus the CRM integration (read-only events)."""

    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    CRM = "crm"


class TenantStatus(StrEnum):
    """Lifecycle of a client company; only ``active`` tenants' credentials work."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


ALL_SCOPES: frozenset[str] = frozenset(
    {
        "tenants:read",
        "tenants:write",
        "keys:read",
        "keys:write",
        "tokens:write",
        "audit:read",
        "calls:read",
        "events:read",
        "events:write",
        "agents:read",
        "agents:write",
        "seats:read",
        "seats:write",
        "leases:read",
        "leases:write",
        "recordings:read",
        "recordings:control",
        "recordings:admin",
        "ivr:read",
        "ivr:write",
        "reports:read",
        "reports:write",
    }
)

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.PLATFORM_ADMIN: ALL_SCOPES,
    Role.TENANT_ADMIN: ALL_SCOPES - {"leases:write"},
    Role.SUPERVISOR: frozenset(
        {
            "tenants:read",
            "calls:read",
            "events:read",
            "agents:read",
            "seats:read",
            "seats:write",
            "leases:read",
            "recordings:read",
            "recordings:control",
            "ivr:read",
            "reports:read",
        }
    ),
    Role.AGENT: frozenset({"calls:read", "events:read", "seats:read", "recordings:control"}),
    Role.CRM: frozenset({"calls:read", "events:read"}),
}
"""Default (and maximum) scopes per role; a key may carry a subset, never more."""

PERSON_ROLES: frozenset[Role] = frozenset({Role.SUPERVISOR, Role.AGENT})
"""Roles a short-lived token may carry (tokens are for people, keys for systems)."""


class AccessDeniedError(Exception):
    """The principal lacks a scope or role on its own tenant (HTTP 403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: an API key (system) or a token (person)."""

    actor: str
    """Who, for the audit log: ``key:<key_id>`` or ``user:<subject>``."""
    role: Role
    tenant_id: str | None
    """``None`` only for the platform admin."""
    scopes: frozenset[str] = field(default_factory=frozenset)
    agent_no: str | None = None

    @property
    def is_platform(self) -> bool:
        """Say whether this principal spans every tenant."""
        return self.role is Role.PLATFORM_ADMIN and self.tenant_id is None

    def has(self, scope: str) -> bool:
        """Say whether the principal holds *scope*."""
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`AccessDeniedError` unless the principal holds *scope*."""
        if scope not in self.scopes:
            raise AccessDeniedError(f"this credential lacks the scope {scope!r}")


def tenant_not_found(tenant_id: str) -> NotFoundError:
    """The one answer for a missing tenant and for another tenant's (same body shape)."""
    return NotFoundError(f"tenant {tenant_id} not found")


def scoped_tenant(principal: Principal, requested: str | None) -> str | None:
    """Resolve which tenant a request may touch.

    A platform admin may name any tenant or none (all tenants). Everyone else is confined to
    their own tenant: naming another tenant raises ``NotFoundError`` (never 403).
    """
    if principal.is_platform:
        return requested
    own = principal.tenant_id
    if own is None:  # a non-platform principal always has a tenant; be defensive
        raise tenant_not_found(requested or "")
    if requested is not None and requested != own:
        raise tenant_not_found(requested)
    return own


def require_tenant_access(principal: Principal, tenant_id: str) -> None:
    """Raise ``NotFoundError`` when *tenant_id* is not the principal's (platform: any)."""
    scoped_tenant(principal, tenant_id)


def allowed_scopes(
    role: Role, requested: frozenset[str] | None, grantor: Principal
) -> frozenset[str]:
    """Scopes for a new credential: the role's defaults, narrowed by *requested*.

    Never more than the role allows and never more than the grantor holds (no escalation).
    """
    ceiling = ROLE_SCOPES[role] & grantor.scopes
    if requested is None:
        return ceiling
    extra = requested - ceiling
    if extra:
        raise AccessDeniedError(f"cannot grant scopes {sorted(extra)} to role {role.value}")
    return requested


# --- API keys --------------------------------------------------------------------------------


def new_api_key() -> tuple[str, str, str]:
    """Return ``(key_id, secret, plaintext)``; plaintext is ``ccb_<key_id>_<secret>``."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{API_KEY_PREFIX}_{key_id}_{secret}"


def parse_api_key(plaintext: str) -> tuple[str, str] | None:
    """Split ``ccb_<key_id>_<secret>``; ``None`` when it is not shaped like one of ours."""
    prefix, sep, rest = plaintext.partition("_")
    if prefix != API_KEY_PREFIX or not sep:
        return None
    key_id, sep, secret = rest.partition("_")
    if not sep or not _KEY_ID_RE.match(key_id) or not 20 <= len(secret) <= 128:
        return None
    return key_id, secret


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a key secret (the secret is 256 random bits; no stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_sha256: str) -> bool:
    """Compare in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_sha256)


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    """A business or technical contact of a tenant."""

    name: str
    phone: str | None = None
    email: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """JSON shape for storage."""
        return {"name": self.name, "phone": self.phone, "email": self.email}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Contact | None:
        """Rebuild from storage."""
        if not data:
            return None
        return cls(name=str(data.get("name", "")), phone=data.get("phone"), email=data.get("email"))


@dataclass(frozen=True, slots=True)
class Tenant:
    """A client company."""

    id: str
    name: str
    business_contact: Contact | None
    technical_contact: Contact | None
    status: TenantStatus
    timezone: str
    created_at: datetime
    pbx_id: str = DEFAULT_PBX_ID
    """The PBX its queues, members, numbers and calls live on (ADR 0033)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key (never the plaintext)."""

    key_id: str
    tenant_id: str | None
    role: Role
    scopes: frozenset[str]
    name: str
    secret_sha256: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log: who did what, when."""

    at: datetime
    tenant_id: str | None
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
