"""A tenant's dial policy: where its calls may be transferred out to (SEAT-19, SEC-01)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from ccbridge.api.schemas.seats import DialPolicyIn, DialPolicyOut
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.services.dialing import DialPolicyService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["leases"])

TenantPath = Annotated[str, Path(max_length=64)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the platform admin changes a dial policy"},
    404: {"description": "No such tenant (or another tenant's)"},
    422: {"description": "A prefix that is not `+` and/or digits; each names its field"},
}


def _svc(request: Request) -> DialPolicyService:
    service: DialPolicyService = request.app.state.dial_policy
    return service


@router.get("/dial-policy", response_model=DialPolicyOut, responses=_RESPONSES)
async def get_dial_policy(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("tenants:read"))],
) -> DialPolicyOut:
    """The prefixes the tenant may dial out to (the default until the platform admin sets one).

    IVR transfer nodes are checked against it when a flow is published and again on each call.
    """
    return DialPolicyOut.of(await _svc(request).get(tenant_id))


@router.put("/dial-policy", response_model=DialPolicyOut, responses=_RESPONSES)
async def put_dial_policy(
    request: Request,
    tenant_id: TenantPath,
    body: DialPolicyIn,
    who: Annotated[Principal, Depends(require("tenants:write"))],
) -> DialPolicyOut:
    """Replace the policy (platform admin; audited as ``dial_policy.update``).

    Calls entering an IVR see it within 5 s. Published flows are not re-checked: a transfer
    the policy no longer allows takes the flow's fallback at call time, and is logged.
    """
    return DialPolicyOut.of(await _svc(request).set(who, tenant_id, body.to_policy()))
