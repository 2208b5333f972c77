"""Authentication: API keys (``ccb_<key_id>_<secret>``) and short-lived person JWTs (HS256).

``Authorization: Bearer <key-or-token>`` (or ``X-API-Key: <key>``). A missing or bad credential
answers 401 with ``WWW-Authenticate: Bearer``; a missing scope on one's own tenant answers 403;
another tenant's object answers 404 (decided before the scope check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import jwt
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ccbridge.api.problems import problem
from ccbridge.domain.access import (
    ALL_SCOPES,
    PERSON_ROLES,
    AccessDeniedError,
    Principal,
    Role,
    require_tenant_access,
)
from ccbridge.services.tenants import AccessService

ISSUER = "ccbridge"
ALGORITHM = "HS256"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ccbridge"'}


class AuthenticationError(Exception):
    """No credential, or one that is unknown, malformed, expired, tampered with or revoked."""

    def __init__(self, detail: str = "a valid API key or token is required") -> None:
        super().__init__(detail)
        self.detail = detail


class JwtCodec:
    """Signs and verifies person tokens; implements ``services.ports.TokenSigner``."""

    def __init__(self, secret: str, *, leeway_seconds: int = 0) -> None:
        """Keep the HMAC secret (never logged)."""
        if not secret:
            raise ValueError("the JWT secret must not be empty")
        self._secret = secret
        self._leeway = leeway_seconds

    def sign(self, principal: Principal, *, issued_at: datetime, expires_at: datetime) -> str:
        """Return a compact HS256 JWT carrying *principal*."""
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": principal.actor.removeprefix("user:"),
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "tenant": principal.tenant_id,
            "role": principal.role.value,
            "agent_no": principal.agent_no,
            "scopes": sorted(principal.scopes),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """Return the token's principal; raise :class:`AuthenticationError` if it is not good."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
            role = Role(claims["role"])
            tenant = claims["tenant"]
            scopes = frozenset(claims.get("scopes") or ())
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired") from None
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise AuthenticationError("the token is not valid") from None
        if role not in PERSON_ROLES or not isinstance(tenant, str) or not scopes <= ALL_SCOPES:
            raise AuthenticationError("the token is not valid")
        agent_no = claims.get("agent_no")
        return Principal(
            actor=f"user:{claims['sub']}",
            role=role,
            tenant_id=tenant,
            scopes=scopes,
            agent_no=agent_no if isinstance(agent_no, str) else None,
        )


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key `ccb_<key_id>_<secret>` or a person token (JWT)",
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="An API key"
)


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401."""
    who = await _authenticate(request, bearer, api_key)
    request.state.tenant_id = who.tenant_id
    structlog.contextvars.bind_contextvars(tenant=who.tenant_id, actor=who.actor)
    return who


async def _authenticate(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    """The principal behind the request's credential, or :class:`AuthenticationError`."""
    credential = (bearer.credentials if bearer else api_key or "").strip()
    if not credential or len(credential) > 4096:
        raise AuthenticationError()
    access: AccessService = request.app.state.access
    if credential.startswith("ccb_"):
        found = await access.authenticate_key(credential)
        if found is None:
            raise AuthenticationError("the API key is not valid")
        return found
    codec: JwtCodec = request.app.state.jwt
    person = codec.verify(credential)
    if not await access.admits(person):
        raise AuthenticationError("the token's tenant is suspended or terminated")
    return person


CurrentPrincipal = Annotated[Principal, Depends(principal)]


def require(scope: str) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """Dependency factory: the caller must hold *scope* (403 on its own tenant).

    When the path names a tenant (``{tenant_id}``), another tenant's answers 404 first.
    """

    async def dependency(request: Request, who: CurrentPrincipal) -> Principal:
        tenant_id = request.path_params.get("tenant_id")
        if isinstance(tenant_id, str):
            require_tenant_access(who, tenant_id)
        who.require(scope)
        return who

    return dependency


async def _on_authentication_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthenticationError)
    return problem(
        401,
        "Unauthorized",
        exc.detail,
        code="UNAUTHORIZED",
        instance=request.url.path,
        headers=dict(_CHALLENGE),
    )


async def _on_access_denied(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AccessDeniedError)
    return problem(403, "Forbidden", exc.detail, code="FORBIDDEN", instance=request.url.path)


def install_auth_handlers(app: FastAPI) -> None:
    """Map 401/403 to problem+json."""
    app.add_exception_handler(AuthenticationError, _on_authentication_error)
    app.add_exception_handler(AccessDeniedError, _on_access_denied)
