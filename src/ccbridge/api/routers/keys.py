"""API keys of a tenant (shown once, stored hashed) and short-lived person tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from ccbridge.api.schemas.access import (
    KEY_ID_PATTERN,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    TokenOut,
    TokenRequest,
)
from ccbridge.api.security import CurrentPrincipal
from ccbridge.domain.access import Role
from ccbridge.services.tenants import AccessService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/api-keys", tags=["api keys"])
auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tenant or key (or another tenant's)"}
}
TenantPath = Annotated[str, Path(max_length=64)]


def _access(request: Request) -> AccessService:
    service: AccessService = request.app.state.access
    return service


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    responses=_NOT_FOUND,
)
async def create_key(
    request: Request, tenant_id: TenantPath, body: ApiKeyCreate, who: CurrentPrincipal
) -> ApiKeyCreated:
    """The answer holds ``key`` once; only its SHA-256 is stored."""
    scopes = frozenset(body.scopes) if body.scopes is not None else None
    key, plaintext = await _access(request).create_api_key(
        who, tenant_id, role=Role(body.role), name=body.name, scopes=scopes
    )
    return ApiKeyCreated(**ApiKeyOut.from_domain(key).model_dump(), key=plaintext)


@router.get("", response_model=ApiKeyList, summary="List API keys", responses=_NOT_FOUND)
async def list_keys(request: Request, tenant_id: TenantPath, who: CurrentPrincipal) -> ApiKeyList:
    """Without secrets or hashes."""
    keys = await _access(request).list_api_keys(who, tenant_id)
    return ApiKeyList(items=[ApiKeyOut.from_domain(k) for k in keys])


@router.delete(
    "/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key", responses=_NOT_FOUND
)
async def revoke_key(
    request: Request,
    tenant_id: TenantPath,
    key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN)],
    who: CurrentPrincipal,
) -> ApiKeyOut:
    """The key answers 401 from now on; revoking twice is harmless."""
    return ApiKeyOut.from_domain(await _access(request).revoke_api_key(who, tenant_id, key_id))


@auth_router.post(
    "/token", response_model=TokenOut, summary="Issue a person token", responses=_NOT_FOUND
)
async def issue_token(request: Request, body: TokenRequest, who: CurrentPrincipal) -> TokenOut:
    """A tenant admin's key issues a short-lived JWT for a supervisor or agent (工号)."""
    issued = await _access(request).issue_token(
        who,
        subject=body.subject,
        role=Role(body.role),
        agent_no=body.agent_no,
        tenant_id=body.tenant,
        ttl_seconds=body.ttl_seconds,
    )
    ttl = int((issued.expires_at - issued.issued_at).total_seconds())
    return TokenOut(access_token=issued.token, expires_at=issued.expires_at, expires_in=ttl)
