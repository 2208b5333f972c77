"""Build the FastAPI application from already-constructed services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from fastapi import FastAPI

from ccbridge import __version__
from ccbridge.api.openapi import install_openapi, operation_id
from ccbridge.api.owner_forwarding import OwnerForwarder, install_owner_forwarding
from ccbridge.api.problems import install_problem_handlers
from ccbridge.api.request_context import RequestContextMiddleware
from ccbridge.api.routers import (
    agents,
    calendar,
    call_control,
    call_params,
    calls,
    dial_policy,
    endpoints,
    events,
    floor,
    health,
    ivr,
    keys,
    leases,
    numbers,
    recordings,
    report_archives,
    reports,
    routing_policies,
    seats,
    sla,
    statements,
    tenants,
    webhooks,
)
from ccbridge.api.security import JwtCodec, install_auth_handlers
from ccbridge.api.tenant_scope import scope_by_path
from ccbridge.domain.time import Clock
from ccbridge.observability.health import Readiness
from ccbridge.observability.metrics import Metrics
from ccbridge.services.agents import AgentAdminService
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.call_control import CallControlService
from ccbridge.services.callbacks import CallbackService
from ccbridge.services.dialing import DialPolicyService
from ccbridge.services.endpoints import EndpointService
from ccbridge.services.events import EventService
from ccbridge.services.floor_alerts import FloorAlertService
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.ftp_accounts import FtpAccountService
from ccbridge.services.idempotency import IdempotencyService
from ccbridge.services.inbound_numbers import InboundNumberService
from ccbridge.services.ivr import IvrService
from ccbridge.services.leases import LeaseService
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.ports import CallStore
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_policy import RecordingPolicyService
from ccbridge.services.recordings import RecordingService
from ccbridge.services.report_archives import ReportArchiver
from ccbridge.services.reports import ReportService
from ccbridge.services.retention import RetentionService
from ccbridge.services.routing_policies import RoutingPolicyService
from ccbridge.services.seats import SeatService
from ccbridge.services.sla import SlaService
from ccbridge.services.statements import StatementService
from ccbridge.services.supervision import SpyService
from ccbridge.services.tenants import AccessService
from ccbridge.services.wallboard import ChangeSignal, WallboardService
from ccbridge.services.webhooks import WebhookService
from ccbridge.web.console import install_console


@dataclass(frozen=True, slots=True)
class SeatApi:
    """The services behind the agents, skill-group, lease and seat routes."""

    agent_admin: AgentAdminService
    seats: SeatService
    leases: LeaseService
    audit: AuditRecorder
    current_call: Callable[[str], str | None]
    dial_policy: DialPolicyService
    endpoints: EndpointService


@dataclass(frozen=True, slots=True)
class FloorApi:
    """The services behind the wallboard, floor-rule, alert and spy routes (the process that
    owns the seats and the live calls)."""

    rules: FloorRuleService
    alerts: FloorAlertService
    wallboard: WallboardService
    signal: ChangeSignal
    """Wakes wallboard streams when the tenant's journal moves (the event hub)."""
    spy: SpyService | None = None


@dataclass(frozen=True, slots=True)
class CallControlApi:
    """The services behind the call-control routes (the process that owns AMI)."""

    call_control: CallControlService
    idempotency: IdempotencyService


@dataclass(frozen=True, slots=True)
class RecordingApi:
    """The services behind the recording, FTP account and export routes."""

    recordings: RecordingService
    exports: ExportService
    ftp_accounts: FtpAccountService
    audit: AuditRecorder
    run_export: Callable[[str], None]
    """Start an export job in the background."""
    policies: RecordingPolicyService
    offboarding: OffboardingService
    run_offboarding: Callable[[str], None]
    """Run (or resume) a tenant's off-boarding in the background."""
    retention: RetentionService


@dataclass(frozen=True, slots=True)
class RoutingApi:
    """The services behind the inbound number, routing policy and call-back routes."""

    numbers: InboundNumberService
    policies: RoutingPolicyService
    callbacks: CallbackService


@dataclass(frozen=True, slots=True)
class EventApi:
    """The services behind the events, webhooks and call-parameter routes."""

    events: EventService
    webhooks: WebhookService
    clock: Clock
    sse_ping_seconds: float = 15.0


def create_app(
    *,
    call_store: CallStore,
    readiness: Readiness,
    access: AccessService,
    jwt: JwtCodec,
    seat_api: SeatApi | None = None,
    recording_api: RecordingApi | None = None,
    ivr_api: IvrService | None = None,
    event_api: EventApi | None = None,
    calendar_api: CalendarService | None = None,
    reports_api: ReportService | None = None,
    report_archives_api: ReportArchiver | None = None,
    sla_api: SlaService | None = None,
    statements_api: StatementService | None = None,
    metrics: Metrics | None = None,
    routing_api: RoutingApi | None = None,
    call_control_api: CallControlApi | None = None,
    floor_api: FloorApi | None = None,
    owner_forwarder: OwnerForwarder | None = None,
    all_routes: bool = False,
) -> FastAPI:
    """Return the ASGI app; the composition root owns the services' lifetimes.

    ``all_routes`` mounts every router even without its service (the OpenAPI document only).
    """
    app = FastAPI(
        title="ccbridge",
        version=__version__,
        summary="A hosted, multi-tenant call centre on Asterisk",
        docs_url="/docs",
        openapi_url="/openapi.json",
        generate_unique_id_function=operation_id,
    )
    app.state.call_store = call_store
    app.state.readiness = readiness
    app.state.access = access
    app.state.jwt = jwt
    app.state.metrics = metrics if metrics is not None else Metrics()
    if seat_api is not None:
        app.state.agent_admin = seat_api.agent_admin
        app.state.seats = seat_api.seats
        app.state.leases = seat_api.leases
        app.state.dial_policy = seat_api.dial_policy
        app.state.endpoints = seat_api.endpoints
        app.state.audit = seat_api.audit
        app.state.current_call = seat_api.current_call
    if recording_api is not None:
        app.state.recordings = recording_api.recordings
        app.state.recording_exports = recording_api.exports
        app.state.ftp_accounts = recording_api.ftp_accounts
        app.state.audit = recording_api.audit
        app.state.run_export = recording_api.run_export
        app.state.recording_policies = recording_api.policies
        app.state.offboarding = recording_api.offboarding
        app.state.run_offboarding = recording_api.run_offboarding
        app.state.retention = recording_api.retention
    if ivr_api is not None:
        app.state.ivr = ivr_api
    if event_api is not None:
        app.state.events = event_api.events
        app.state.webhooks = event_api.webhooks
        app.state.events_clock = event_api.clock
        app.state.sse_ping_seconds = event_api.sse_ping_seconds
    if calendar_api is not None:
        app.state.calendar = calendar_api
    if reports_api is not None:
        app.state.reports = reports_api
    if report_archives_api is not None:
        app.state.report_archives = report_archives_api
    if sla_api is not None:
        app.state.sla = sla_api
    if statements_api is not None:
        app.state.statements = statements_api
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics.http)
    if routing_api is not None:
        app.state.numbers = routing_api.numbers
        app.state.routing_policies = routing_api.policies
        app.state.callbacks = routing_api.callbacks
    if call_control_api is not None:
        app.state.call_control = call_control_api.call_control
        app.state.idempotency = call_control_api.idempotency
    if floor_api is not None:
        app.state.floor_rules = floor_api.rules
        app.state.floor_alerts = floor_api.alerts
        app.state.wallboard = floor_api.wallboard
        app.state.floor_signal = floor_api.signal
        app.state.spy = floor_api.spy
    install_problem_handlers(app)
    install_owner_forwarding(app, owner_forwarder)
    install_auth_handlers(app)
    install_openapi(app)
    # The CRM poll and stream routes are matched first: routes are tried in order and these
    # are the hottest (hundreds of requests per second; docs/benchmarks.md, Events).
    # A router is mounted only when its service is wired (an API-only `ccbridge api` process
    # has no seats, recordings or IVR): a request there is a clean 404, never a 500.
    wired = {
        "events": event_api is not None or all_routes,
        "seats": seat_api is not None or all_routes,
        "recordings": recording_api is not None or all_routes,
        "ivr": ivr_api is not None or all_routes,
        "calendar": calendar_api is not None or all_routes,
        "routing": routing_api is not None or all_routes,
        "call_control": call_control_api is not None or all_routes,
        "reports": reports_api is not None or all_routes,
        "report_archives": report_archives_api is not None or all_routes,
        "sla": sla_api is not None or all_routes,
        "statements": statements_api is not None or all_routes,
        "floor": floor_api is not None or all_routes,
    }
    if wired["events"]:
        app.include_router(scope_by_path(events.router))
    app.include_router(health.router)
    app.include_router(scope_by_path(calls.router, across_tenants=frozenset({"list_calls"})))
    app.include_router(tenants.router)
    app.include_router(keys.router)
    app.include_router(keys.auth_router)
    app.include_router(
        scope_by_path(tenants.audit_router, across_tenants=frozenset({"list_audit"}))
    )
    if wired["seats"]:
        app.include_router(agents.router)
        app.include_router(endpoints.router)
        app.include_router(leases.router)
        app.include_router(dial_policy.router)
    if wired["calendar"]:
        app.include_router(calendar.router)
    if wired["seats"]:
        app.include_router(scope_by_path(seats.router))
    if wired["floor"]:
        app.include_router(scope_by_path(floor.router))
    if wired["call_control"]:
        app.include_router(call_control.router)
    if wired["recordings"]:
        app.include_router(
            scope_by_path(recordings.router, across_tenants=frozenset({"search_recordings"}))
        )
    if wired["ivr"]:
        app.include_router(ivr.router)
    if wired["routing"]:
        app.include_router(numbers.router)
        app.include_router(routing_policies.router)
    if wired["events"]:
        app.include_router(scope_by_path(call_params.router))
        app.include_router(scope_by_path(webhooks.router))
    if wired["reports"]:
        app.include_router(reports.router)
    if wired["report_archives"]:
        app.include_router(report_archives.router)
    if wired["sla"]:
        app.include_router(sla.router)
    if wired["statements"]:
        app.include_router(statements.router)
    install_console(app)
    return app


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document without starting anything (docs and the contract test).

    Building the schema never touches the store, so none is wired.
    """
    return create_app(
        call_store=cast(CallStore, None),
        readiness=Readiness(),
        access=cast(AccessService, None),
        jwt=cast(JwtCodec, None),
        all_routes=True,
    ).openapi()
