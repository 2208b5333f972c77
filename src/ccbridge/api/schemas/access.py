"""Tenants, API keys, tokens and audit entries as the API shows and accepts them.

Every accepted string refuses CR, LF and NUL (they end up in logs, AMI headers and CSV).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ccbridge.domain.access import ALL_SCOPES, ApiKey, AuditEntry, Contact, Tenant, TenantStatus
from ccbridge.domain.ha.placement import PBX_ID_MAX_LENGTH, PBX_ID_PATTERN

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
PHONE_PATTERN = r"^\+?[0-9-]{3,32}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,188}\.[A-Za-z]{2,63}$"
AGENT_NO_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
KEY_ID_PATTERN = r"^[a-z0-9]{1,32}$"
_FORBIDDEN_CHARS = ("\r", "\n", "\x00")

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN, examples=["acme"])]
Name = Annotated[str, Field(min_length=1, max_length=200)]
PbxId = Annotated[
    str, Field(max_length=PBX_ID_MAX_LENGTH, pattern=PBX_ID_PATTERN, examples=["default"])
]


def _check_text(value: Any) -> Any:
    if isinstance(value, str) and any(c in value for c in _FORBIDDEN_CHARS):
        raise ValueError("must not contain CR, LF or NUL")
    if isinstance(value, list):
        for item in value:
            _check_text(item)
    return value


class _In(BaseModel):
    """Input base: unknown fields and control characters are refused."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_chars(cls, value: Any) -> Any:
        return _check_text(value)


def _valid_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown IANA time zone") from None
    return value


class ContactIn(_In):
    """A business or technical contact."""

    name: Name
    phone: Annotated[str, Field(pattern=PHONE_PATTERN)] | None = None
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)] | None = None

    def to_domain(self) -> Contact:
        """Map to the domain record."""
        return Contact(name=self.name, phone=self.phone, email=self.email)


class ContactOut(BaseModel):
    """A contact as shown."""

    name: str
    phone: str | None
    email: str | None


class TenantCreate(_In):
    """A new client company; ``id`` is its slug (also ``CCB_TENANT`` and the queue prefix)."""

    id: TenantId
    name: Name
    business_contact: ContactIn | None = None
    technical_contact: ContactIn | None = None
    timezone: Annotated[str, Field(max_length=64)] = "Asia/Shanghai"
    pbx_id: PbxId | None = None
    """The PBX to place it on (a known one; default: the PBX of the node serving the request)."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return _valid_timezone(value)


class TenantPatch(_In):
    """A partial update; ``status`` is for the platform admin only."""

    name: Name | None = None
    business_contact: ContactIn | None = None
    technical_contact: ContactIn | None = None
    status: TenantStatus | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    pbx_id: PbxId | None = None
    """Place the tenant on another known PBX (platform admin only; ADR 0033)."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return _valid_timezone(value)


class TenantOut(BaseModel):
    """A client company."""

    id: str
    name: str
    business_contact: ContactOut | None
    technical_contact: ContactOut | None
    status: TenantStatus
    timezone: str
    created_at: datetime
    pbx_id: str | None = None
    """The PBX it is placed on; shown to the platform admin only (``null`` to the tenant)."""

    @classmethod
    def from_domain(cls, t: Tenant, *, show_pbx: bool = False) -> TenantOut:
        """Map from the domain record; the placement only for the platform admin."""

        def contact(c: Contact | None) -> ContactOut | None:
            return None if c is None else ContactOut(name=c.name, phone=c.phone, email=c.email)

        return cls(
            id=t.id,
            name=t.name,
            business_contact=contact(t.business_contact),
            technical_contact=contact(t.technical_contact),
            status=t.status,
            timezone=t.timezone,
            created_at=t.created_at,
            pbx_id=t.pbx_id if show_pbx else None,
        )


class TenantPage(BaseModel):
    """Tenants ordered by id; pass ``next_after`` back as ``after``."""

    items: list[TenantOut]
    next_after: str | None


KeyRole = Literal["tenant_admin", "supervisor", "agent", "crm"]


class ApiKeyCreate(_In):
    """A new API key for a system (CRM, reporting); people get tokens instead."""

    name: Name
    role: KeyRole = "crm"
    scopes: list[str] | None = Field(
        None, max_length=len(ALL_SCOPES), description="default: every scope of the role"
    )

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = sorted(set(value) - ALL_SCOPES)
            if unknown:
                raise ValueError(f"unknown scopes {unknown}")
        return value


class ApiKeyOut(BaseModel):
    """An API key without its secret."""

    key_id: str
    tenant_id: str | None
    role: str
    scopes: list[str]
    name: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_domain(cls, k: ApiKey) -> ApiKeyOut:
        """Map from the domain record (the hash is never shown)."""
        return cls(
            key_id=k.key_id,
            tenant_id=k.tenant_id,
            role=k.role.value,
            scopes=sorted(k.scopes),
            name=k.name,
            created_at=k.created_at,
            created_by=k.created_by,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )


class ApiKeyCreated(ApiKeyOut):
    """The new key; ``key`` is shown this once and cannot be retrieved again."""

    key: str = Field(description="ccb_<key_id>_<secret>: store it now, it is not shown again")


class ApiKeyList(BaseModel):
    """A tenant's keys, newest first."""

    items: list[ApiKeyOut]


class TokenRequest(_In):
    """A short-lived token for a person of the caller's tenant."""

    subject: Annotated[str, Field(min_length=1, max_length=128, description="who: login/email")]
    role: Literal["supervisor", "agent"]
    agent_no: Annotated[str, Field(pattern=AGENT_NO_PATTERN)] | None = Field(
        None, description="工号; required for role agent"
    )
    tenant: TenantId | None = Field(None, description="platform admin only; others: own tenant")
    ttl_seconds: Annotated[int, Field(ge=60, le=86400)] | None = None


class TokenOut(BaseModel):
    """An OAuth2-style bearer token answer."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name)
    expires_at: datetime
    expires_in: int


class AuditOut(BaseModel):
    """One audit entry: who did what, when."""

    id: int
    at: datetime
    tenant_id: str | None
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]

    @classmethod
    def from_domain(cls, e: AuditEntry) -> AuditOut:
        """Map from the domain record."""
        return cls(
            id=e.id or 0,
            at=e.at,
            tenant_id=e.tenant_id,
            actor=e.actor,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            detail=e.detail,
        )


class AuditPage(BaseModel):
    """Audit entries newest first; pass ``next_before_id`` back as ``before_id``."""

    items: list[AuditOut]
    next_before_id: int | None
