"""Recordings: search, signed downloads (HTTP Range), holds, call control, FTP accounts, exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse

from ccbridge.api.downloads import RangeFileResponse
from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.schemas.calls import decode_cursor
from ccbridge.api.schemas.recordings import (
    ControlIn,
    ExportIn,
    ExportOut,
    FtpAccountIn,
    FtpAccountOut,
    HoldIn,
    LinkOut,
    OffboardingIn,
    OffboardingOut,
    PublicKeyOut,
    PurgeProgressOut,
    PurgeReportOut,
    RecordingOut,
    RecordingPage,
    RecordingPolicyIn,
    RecordingPolicyOut,
    RetentionStatusOut,
    encode_cursor,
)
from ccbridge.api.security import require
from ccbridge.domain.access import AccessDeniedError, Principal, scoped_tenant
from ccbridge.domain.recordings.model import RecordingQuery
from ccbridge.domain.recordings.signing import BadSignatureError
from ccbridge.errors import NotFoundError
from ccbridge.services.ftp_accounts import FtpAccountService
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_policy import InvalidPolicyError, RecordingPolicyService
from ccbridge.services.recordings import RecordingService
from ccbridge.services.retention import RetentionService

router = APIRouter(tags=["recordings"])

MAX_PAGE = 500
LINK_TTL_MAX = 3600
Reader = Annotated[Principal, Depends(require("recordings:read"))]
Controller = Annotated[Principal, Depends(require("recordings:control"))]
Admin = Annotated[Principal, Depends(require("recordings:admin"))]
TenantWriter = Annotated[Principal, Depends(require("tenants:write"))]
TenantPath = Annotated[str, Path(max_length=64)]
RecordingIdPath = Annotated[str, Path(max_length=32)]
TenantQuery = Annotated[str | None, Query(max_length=64)]
"""Platform admin: which tenant; everyone else: their own (another answers 404)."""
_TENANT_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tenant (or another tenant's)"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such recording (or another tenant's)"},
    410: {"description": "Deleted by retention or off-boarding"},
}


def _recordings(request: Request) -> RecordingService:
    service: RecordingService = request.app.state.recordings
    return service


def _exports(request: Request) -> ExportService:
    service: ExportService = request.app.state.recording_exports
    return service


def _ftp(request: Request) -> FtpAccountService:
    service: FtpAccountService = request.app.state.ftp_accounts
    return service


@router.get("/api/v1/recordings", response_model=RecordingPage, summary="Search recordings")
async def search_recordings(
    request: Request,
    who: Reader,
    tenant: TenantQuery = None,
    agent_no: Annotated[str | None, Query(max_length=64)] = None,
    caller: Annotated[str | None, Query(max_length=255)] = None,
    callee: Annotated[str | None, Query(max_length=255)] = None,
    skill_group: Annotated[str | None, Query(max_length=64)] = None,
    call_id: Annotated[str | None, Query(max_length=64)] = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    include_unavailable: bool = False,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RecordingPage:
    """By 工号, 主叫, 被叫, 技能组 and start time, newest first, keyset-paginated.

    Only downloadable (`ok`) recordings unless ``include_unavailable`` (empty, missing and
    purged ones are flagged by ``status``).
    """
    query = RecordingQuery(
        tenant=scoped_tenant(who, tenant),
        agent_no=agent_no,
        caller=caller,
        callee=callee,
        skill_group=skill_group,
        call_id=call_id,
        started_from=started_from,
        started_to=started_to,
        include_unavailable=include_unavailable,
    )
    before = decode_cursor(cursor) if cursor else None
    rows = await _recordings(request).search(query, before, limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    return RecordingPage(items=[RecordingOut.of(r) for r in page], next_cursor=next_cursor)


@router.get(
    "/api/v1/recordings/{recording_id}",
    response_model=RecordingOut,
    responses=_NOT_FOUND,
    summary="One recording",
)
async def get_recording(
    request: Request,
    recording_id: RecordingIdPath,
    who: Reader,
    tenant: TenantQuery = None,
) -> RecordingOut:
    """The index row; 410 once purged."""
    return RecordingOut.of(await _recordings(request).get(recording_id, scoped_tenant(who, tenant)))


@router.post(
    "/api/v1/recordings/{recording_id}/link",
    response_model=LinkOut,
    responses=_NOT_FOUND,
    summary="A short-lived signed download URL",
)
async def sign_link(
    request: Request,
    recording_id: RecordingIdPath,
    who: Reader,
    tenant: TenantQuery = None,
    ttl_seconds: Annotated[Int64, Query(ge=10, le=LINK_TTL_MAX)] = 300,
) -> LinkOut:
    """The URL needs no Authorization header; it names one recording of one tenant and expires."""
    link = await _recordings(request).sign_download(
        who, recording_id, scoped_tenant(who, tenant), ttl_seconds
    )
    return LinkOut(url=link.path, expires_at=datetime.fromtimestamp(link.expires, UTC))


@router.get(
    "/api/v1/recordings/{recording_id}/file",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/wav": {}}},
        206: {"description": "Partial content (Range)"},
        403: {"description": "Bad or expired signature"},
        416: {"description": "Range not satisfiable"},
        **_NOT_FOUND,
    },
    summary="Download a recording through a signed URL",
)
async def download(
    request: Request,
    recording_id: RecordingIdPath,
    tenant: Annotated[str, Query(max_length=64)],
    expires: Annotated[Int64, Query(ge=0)],
    sig: Annotated[str, Query(max_length=128)],
) -> FileResponse:
    """WAV bytes; ``Range`` answers 206 (416 when unsatisfiable). Every request is audited."""
    peer = request.client.host if request.client else "-"
    try:
        rec, path = await _recordings(request).open_signed(
            recording_id, tenant, expires, sig, peer, request.headers.get("range")
        )
    except BadSignatureError as exc:
        raise AccessDeniedError(str(exc)) from None
    return RangeFileResponse(
        path,
        media_type="audio/wav",
        filename=f"{rec.call_id}.wav",
        headers={"Cache-Control": "private, no-store"},
    )


@router.put(
    "/api/v1/recordings/{recording_id}/hold",
    responses=_NOT_FOUND,
    summary="Put or lift a legal hold on one recording",
)
async def hold_recording(
    request: Request,
    recording_id: RecordingIdPath,
    body: HoldIn,
    who: Admin,
    tenant: TenantQuery = None,
) -> dict[str, int]:
    """A held recording is never purged."""
    service = _recordings(request)
    rec = await service.get(recording_id, scoped_tenant(who, tenant))
    changed = await service.hold(who, rec.tenant, recording_id, None, body.held, body.reason)
    return {"changed": changed}


@router.put(
    "/api/v1/tenants/{tenant_id}/calls/{call_id}/legal-hold",
    summary="Put or lift a legal hold on every recording of a call",
)
async def legal_hold_call(
    request: Request,
    tenant_id: TenantPath,
    call_id: Annotated[str, Path(max_length=64)],
    body: HoldIn,
    who: Admin,
) -> dict[str, int]:
    """Also holds recordings of the call made later. (Putting the *call* on hold is
    ``POST /api/v1/tenants/{tenant_id}/seats/{agent_no}/call/hold``.)"""
    changed = await _recordings(request).hold(who, tenant_id, None, call_id, body.held, body.reason)
    return {"changed": changed}


@router.put(
    "/api/v1/tenants/{tenant_id}/calls/{call_id}/hold",
    summary="Deprecated alias of .../legal-hold (a legal hold on the call's recordings)",
    deprecated=True,
)
async def hold_call(
    request: Request,
    tenant_id: TenantPath,
    call_id: Annotated[str, Path(max_length=64)],
    body: HoldIn,
    who: Admin,
    response: Response,
) -> dict[str, int]:
    """Use ``PUT .../calls/{call_id}/legal-hold``; this path answers the same, with a
    ``Deprecation`` header and a ``Link`` to the new one."""
    response.headers["Deprecation"] = "true"
    successor = f"/api/v1/tenants/{quote(tenant_id, safe='')}/calls/{quote(call_id, safe='')}"
    # Percent-encoded: a header is Latin-1, and the ids are whatever the path carried.
    response.headers["Link"] = f'<{successor}/legal-hold>; rel="successor-version"'
    return await legal_hold_call(request, tenant_id, call_id, body, who)


@router.post(
    "/api/v1/tenants/{tenant_id}/calls/{call_id}/recording",
    response_model=RecordingOut,
    responses={404: {"description": "No such call in progress (or another tenant's)"}},
    summary="Start, stop, pause or resume the recording of a call in progress",
)
async def control_recording(
    request: Request,
    tenant_id: TenantPath,
    call_id: Annotated[str, Path(max_length=64)],
    body: ControlIn,
    who: Controller,
) -> RecordingOut:
    """Pause writes silence (e.g. while the caller gives card data); resume writes audio again."""
    rec = await _recordings(request).control(who, tenant_id, call_id, body.action)
    return RecordingOut.of(rec)


@router.post(
    "/api/v1/tenants/{tenant_id}/ftp-accounts",
    status_code=201,
    response_model=FtpAccountOut,
    summary="Create a read-only FTP login (password shown once)",
)
async def create_ftp_account(
    request: Request, tenant_id: TenantPath, body: FtpAccountIn, who: Admin
) -> FtpAccountOut:
    """Home is the tenant's recordings root; permission `elr` (list and download)."""
    account, password = await _ftp(request).create(who, tenant_id, body.username, body.tls_required)
    return FtpAccountOut.of(account, password)


@router.get(
    "/api/v1/tenants/{tenant_id}/ftp-accounts",
    response_model=list[FtpAccountOut],
    summary="The tenant's FTP logins",
)
async def list_ftp_accounts(
    request: Request, tenant_id: TenantPath, _who: Admin
) -> list[FtpAccountOut]:
    """Never shows passwords."""
    return [FtpAccountOut.of(a) for a in await _ftp(request).list(tenant_id)]


@router.delete(
    "/api/v1/tenants/{tenant_id}/ftp-accounts/{username}",
    status_code=204,
    summary="Disable an FTP login",
)
async def disable_ftp_account(
    request: Request,
    tenant_id: TenantPath,
    username: Annotated[str, Path(max_length=64)],
    who: Admin,
) -> None:
    """The login stops working at once."""
    await _ftp(request).disable(who, tenant_id, username)


@router.post(
    "/api/v1/tenants/{tenant_id}/recording-exports",
    status_code=202,
    response_model=ExportOut,
    summary="Export a date range to the tenant's own FTP(S) server",
)
async def create_export(
    request: Request, tenant_id: TenantPath, body: ExportIn, who: Admin
) -> ExportOut:
    """Runs in the background; poll the status endpoint for progress."""
    service = _exports(request)
    job = await service.create(tenant_id, body.range_from, body.range_to)
    runner = request.app.state.run_export
    runner(job.id)
    audit = request.app.state.audit
    await audit.record(who, tenant_id, "recording_export.create", "export", job.id)
    return ExportOut.of(job)


@router.get(
    "/api/v1/tenants/{tenant_id}/recording-exports/{export_id}",
    response_model=ExportOut,
    summary="Export status and progress",
)
async def export_status(
    request: Request,
    tenant_id: TenantPath,
    export_id: Annotated[str, Path(max_length=32)],
    _who: Admin,
) -> ExportOut:
    """Files and bytes sent so far, the error of a failed attempt, the final report."""
    try:
        return ExportOut.of(await _exports(request).status(export_id, tenant_id))
    except NotFoundError:
        raise NotFoundError(f"export {export_id} not found") from None


def _policies(request: Request) -> RecordingPolicyService:
    service: RecordingPolicyService = request.app.state.recording_policies
    return service


@router.get(
    "/api/v1/tenants/{tenant_id}/recording-policy",
    response_model=RecordingPolicyOut,
    responses=_TENANT_404,
    summary="The tenant's recording policy",
)
async def get_recording_policy(
    request: Request, tenant_id: TenantPath, _who: Admin
) -> RecordingPolicyOut:
    """Retention, automatic recording, the export target and its nightly time (no password)."""
    return RecordingPolicyOut.of(await _policies(request).get(tenant_id))


@router.put(
    "/api/v1/tenants/{tenant_id}/recording-policy",
    response_model=RecordingPolicyOut,
    responses={**_TENANT_404, 422: {"description": "A field is invalid (problem+json names it)"}},
    summary="Replace the tenant's recording policy",
)
async def put_recording_policy(
    request: Request, tenant_id: TenantPath, body: RecordingPolicyIn, who: Admin
) -> RecordingPolicyOut:
    """Applies at once (next answered call, next purge, next schedule check); audited.

    The export password is write-only: omit it to keep the stored one, ``""`` to clear it.
    """
    try:
        policy = await _policies(request).replace(who, tenant_id, body.change())
    except InvalidPolicyError as exc:  # the same field paths as a schema error: body.export.host
        raise InvalidPolicyError({f"body.{k}": v for k, v in exc.problems.items()}) from None
    return RecordingPolicyOut.of(policy)


def _offboarding(request: Request) -> OffboardingService:
    service: OffboardingService = request.app.state.offboarding
    return service


def _platform_only(who: Principal) -> None:
    """Off-boarding and purge status span tenants: the platform admin's alone."""
    if not who.is_platform:
        raise AccessDeniedError("only the platform admin may do this")


@router.post(
    "/api/v1/tenants/{tenant_id}/offboarding",
    status_code=202,
    response_model=OffboardingOut,
    responses={
        403: {"description": "Not the platform admin"},
        409: {"description": "The tenant is not terminated, or off-boarding already runs"},
    },
    summary="Off-board a terminated tenant: final export, then a signed purge",
)
async def start_offboarding(
    request: Request, tenant_id: TenantPath, body: OffboardingIn, who: TenantWriter
) -> OffboardingOut:
    """Runs in the background (resumed after a restart); poll the status endpoint.

    A failed off-boarding (e.g. the client's server was down) can be started again: the
    final export resumes where it stopped.
    """
    _platform_only(who)
    service = _offboarding(request)
    state = await service.start(who, tenant_id, skip_export=body.skip_export)
    request.app.state.run_offboarding(tenant_id)
    return OffboardingOut.of(state, None)


@router.get(
    "/api/v1/tenants/{tenant_id}/offboarding",
    response_model=OffboardingOut,
    responses={403: {"description": "Not the platform admin"}, 404: {"description": "None"}},
    summary="Off-boarding status and progress",
)
async def offboarding_status(
    request: Request, tenant_id: TenantPath, who: TenantWriter
) -> OffboardingOut:
    """Phase, the final export's bytes and files, recordings purged, the report id, errors."""
    _platform_only(who)
    view = await _offboarding(request).status(tenant_id)
    return OffboardingOut.of(view.state, view.export)


@router.get(
    "/api/v1/purge-reports/public-key",
    response_model=PublicKeyOut,
    summary="The public key purge reports are verified with (no authentication)",
)
async def purge_report_public_key(request: Request) -> PublicKeyOut:
    """Public by design: a client checks its purge report with this key and nothing else."""
    signer = _offboarding(request).signer
    return PublicKeyOut(
        algorithm=signer.algorithm, key_id=signer.key_id, public_key_pem=signer.public_key_pem()
    )


@router.get(
    "/api/v1/purge-reports/{report_id}",
    response_model=PurgeReportOut,
    responses={403: {"description": "Not the platform admin"}, 404: {"description": "None"}},
    summary="A signed purge report (to hand to the client)",
)
async def get_purge_report(
    request: Request, report_id: Annotated[str, Path(max_length=32)], who: TenantWriter
) -> PurgeReportOut:
    """The manifest and its signature, exactly as signed."""
    _platform_only(who)
    manifest, signature = await _offboarding(request).report(report_id)
    return PurgeReportOut(manifest=manifest, signature=signature)


@router.get(
    "/api/v1/recording-purge",
    response_model=RetentionStatusOut,
    responses={403: {"description": "Not the platform admin"}},
    summary="Retention purge status and progress",
)
async def retention_status(request: Request, who: Admin) -> RetentionStatusOut:
    """Whether the hourly purge runs now, how far it is, and what the last run deleted."""
    _platform_only(who)
    retention: RetentionService = request.app.state.retention
    done, total = retention.progress
    last = retention.last
    return RetentionStatusOut(
        running=retention.running,
        progress=PurgeProgressOut(done=done, total=total),
        last_deleted=None if last is None else last.deleted,
        last_eligible=None if last is None else dict(last.eligible),
    )
