"""IVR flows of a tenant: validate, drafts, publish (scheduled), revisions, diff, rollback,
simulate. Flow documents are sent raw (JSON, or YAML with a yaml content type) and read under
a 1 MiB cap before anything is parsed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.datastructures import UploadFile

from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.schemas.ivr import (
    DiffOut,
    FlowErrorOut,
    FlowId,
    FlowOut,
    IvrCallOut,
    PromptOut,
    PublishIn,
    RevisionOut,
    SimulateIn,
    SimulateOut,
    ValidationOut,
)
from ccbridge.api.security import require
from ccbridge.api.uploads import (
    MULTIPART_SLACK,
    UploadMalformedError,
    read_capped,
    read_multipart,
    too_large,
)
from ccbridge.domain.access import Principal
from ccbridge.domain.ivr.engine import CallContext
from ccbridge.ivr_format.parse import MAX_BODY_BYTES, FlowLimitError
from ccbridge.services.ivr import IvrService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/ivr", tags=["ivr"])

TenantPath = Annotated[str, Path(max_length=64)]
FlowPath = Annotated[FlowId, Path()]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such flow (or another tenant's)"},
    413: {"description": "The document is larger than 1 MiB (the limit is named)"},
    422: {"description": "Faults, each with its JSON path (e.g. $.nodes.menu.options.9.next)"},
}
_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "https://ccbridge.dev/schemas/ivr-flow.json"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def _svc(request: Request) -> IvrService:
    service: IvrService = request.app.state.ivr
    return service


async def _document(request: Request) -> tuple[bytes, str]:
    """Read the raw body, refusing (413) as soon as it passes the cap; nothing is parsed yet."""
    data = await read_capped(request, MAX_BODY_BYTES, _too_large)
    return data, request.headers.get("content-type", "application/json")


def _too_large(size: int) -> FlowLimitError:
    return FlowLimitError(
        413,
        "max_body_bytes",
        "$",
        f"the flow document is at least {size} bytes; the limit is {MAX_BODY_BYTES} bytes",
    )


@router.post(
    "/validate", response_model=ValidationOut, responses=_RESPONSES, openapi_extra=_DOCUMENT_BODY
)
async def validate_flow(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> ValidationOut:
    """Check a flow against every rule (and the tenant's prompts); nothing is stored."""
    data, media = await _document(request)
    report = await _svc(request).validate(tenant_id, data, media)
    return ValidationOut(
        valid=not report.errors,
        node_count=report.node_count,
        errors=[FlowErrorOut.of(e) for e in report.errors],
    )


@router.get("/flows", response_model=list[FlowOut], responses=_RESPONSES)
async def list_flows(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> list[FlowOut]:
    """The tenant's flows with their drafts."""
    return [FlowOut.of(f) for f in await _svc(request).list_flows(tenant_id)]


@router.put(
    "/flows/{flow_id}",
    response_model=FlowOut,
    responses=_RESPONSES,
    openapi_extra=_DOCUMENT_BODY,
)
async def put_draft(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    who: Annotated[Principal, Depends(require("ivr:write"))],
    draft_version: Annotated[Int64 | None, Query(ge=1)] = None,
) -> FlowOut:
    """Create the flow (no ``draft_version``) or replace its draft (the version you read).

    A document with any fault is refused with every fault's JSON path; nothing is stored.
    """
    data, media = await _document(request)
    svc = _svc(request)
    if draft_version is None:
        return FlowOut.of(await svc.create_flow(who, tenant_id, flow_id, data, media))
    return FlowOut.of(await svc.update_draft(who, tenant_id, flow_id, data, media, draft_version))


@router.get("/flows/{flow_id}", response_model=FlowOut, responses=_RESPONSES)
async def get_flow(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> FlowOut:
    """One flow and its draft."""
    return FlowOut.of(await _svc(request).get_flow(tenant_id, flow_id))


@router.post(
    "/flows/{flow_id}/publish", status_code=201, response_model=RevisionOut, responses=_RESPONSES
)
async def publish(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    body: PublishIn,
    who: Annotated[Principal, Depends(require("ivr:write"))],
) -> RevisionOut:
    """Publish the draft as a new revision (refused if it references a missing prompt)."""
    rev = await _svc(request).publish(who, tenant_id, flow_id, body.message, body.effective_at)
    return RevisionOut.of(rev)


@router.get("/flows/{flow_id}/revisions", response_model=list[RevisionOut], responses=_RESPONSES)
async def list_revisions(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> list[RevisionOut]:
    """Revisions, newest first (author, message, when effective, when activated)."""
    return [RevisionOut.of(r) for r in await _svc(request).list_revisions(tenant_id, flow_id)]


@router.get(
    "/flows/{flow_id}/revisions/{revision}", response_model=RevisionOut, responses=_RESPONSES
)
async def get_revision(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    revision: Annotated[Int64, Path(ge=1)],
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> RevisionOut:
    """One revision with its document."""
    rev = await _svc(request).get_revision(tenant_id, flow_id, revision)
    return RevisionOut.of(rev, with_document=True)


@router.post(
    "/flows/{flow_id}/revisions/{revision}/rollback",
    status_code=201,
    response_model=RevisionOut,
    responses=_RESPONSES,
)
async def rollback(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    revision: Annotated[Int64, Path(ge=1)],
    body: PublishIn,
    who: Annotated[Principal, Depends(require("ivr:write"))],
) -> RevisionOut:
    """Publish an old revision again as a new one (same schedule rules as publish)."""
    rev = await _svc(request).rollback(
        who, tenant_id, flow_id, revision, body.message, body.effective_at
    )
    return RevisionOut.of(rev)


@router.get("/flows/{flow_id}/diff", response_model=DiffOut, responses=_RESPONSES)
async def diff(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
    old: Annotated[Int64, Query(alias="from", ge=1)],
    new: Annotated[Int64 | None, Query(alias="to", ge=1)] = None,
) -> DiffOut:
    """Per-node diff between two revisions (``to`` omitted: against the draft)."""
    return DiffOut.of(await _svc(request).diff(tenant_id, flow_id, old, new))


@router.post("/flows/{flow_id}/simulate", response_model=SimulateOut, responses=_RESPONSES)
async def simulate(
    request: Request,
    tenant_id: TenantPath,
    flow_id: FlowPath,
    body: SimulateIn,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> SimulateOut:
    """Run the draft (or a revision) offline with the given keys, time and caller."""
    context = CallContext(
        now=body.at or datetime.now(UTC), caller=body.caller, did=body.did, tier=body.tier
    )
    sim = await _svc(request).simulate(
        tenant_id, flow_id, body.revision, body.digits, context, body.lookups
    )
    return SimulateOut.of(sim)


_PROMPT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["prompt_id", "file"],
                    "properties": {
                        "prompt_id": {"type": "string", "maxLength": 64},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
_PROMPT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "description": "The upload, its converted audio or the tenant's prompt storage quota "
        "is over its limit (the limit is named)"
    },
    422: {"description": "Not audio, too long (the limit is named), or a bad prompt_id"},
}


@router.post(
    "/prompts",
    status_code=201,
    response_model=PromptOut,
    responses=_PROMPT_RESPONSES,
    openapi_extra=_PROMPT_BODY,
)
async def upload_prompt(
    request: Request,
    tenant_id: TenantPath,
    who: Annotated[Principal, Depends(require("ivr:write"))],
) -> PromptOut:
    """Upload audio (wav, mp3, ogg, …); stored as 8 kHz 16-bit mono WAV under ``prompt_id``.

    Refused above the maximum upload size (413, before the body is read in full), the
    maximum decoded duration (422), the maximum converted size (413) or the tenant's prompt
    storage quota (413); every limit is named in the answer.
    """
    service = _svc(request)
    limit = service.prompt_limits.max_input_bytes
    form = await read_multipart(
        request, limit + MULTIPART_SLACK, too_large(limit, "the upload", field="file")
    )
    try:
        upload, prompt_id = form.get("file"), form.get("prompt_id")
        if not isinstance(upload, UploadFile):
            raise UploadMalformedError("attach the audio as the file field", field="file")
        if not isinstance(prompt_id, str) or not prompt_id or len(prompt_id) > 64:
            raise UploadMalformedError("prompt_id is required (max 64)", field="prompt_id")
        data = await upload.read(limit + 1)
        prompt = await service.upload_prompt(who, tenant_id, prompt_id, data, upload.filename or "")
    finally:
        await form.close()
    return PromptOut.of(prompt)


@router.get("/prompts", response_model=list[PromptOut], responses=_RESPONSES)
async def list_prompts(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> list[PromptOut]:
    """The tenant's prompts (flows reference them by ``prompt_id``)."""
    return [PromptOut.of(p) for p in await _svc(request).list_prompts(tenant_id)]


@router.get(
    "/prompts/{prompt_id}/file",
    response_class=Response,
    responses={
        **_RESPONSES,
        200: {"content": {"audio/wav": {}}, "description": "The stored 8 kHz mono WAV"},
        404: {"description": "No such prompt for this tenant"},
    },
)
async def prompt_file(
    request: Request,
    tenant_id: TenantPath,
    prompt_id: Annotated[str, Path(max_length=64)],
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> Response:
    """The stored audio of one of the tenant's prompts (what callers hear), to play it back."""
    audio = await _svc(request).prompt_audio(tenant_id, prompt_id)
    return Response(audio, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.get("/calls", response_model=list[IvrCallOut], responses=_RESPONSES)
async def list_ivr_calls(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
    limit: Annotated[Int64, Query(ge=1, le=500)] = 100,
) -> list[IvrCallOut]:
    """Newest IVR calls: path, steps (menu choices, survey answers), outcome, drop-off node."""
    return [IvrCallOut.of(r) for r in await _svc(request).call_logs(tenant_id, limit)]
