"""Composition root: build adapters and services, then run them under one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import uvicorn
from fastapi import FastAPI

from ccbridge import gc_policy
from ccbridge.api.app import (
    CallControlApi,
    EventApi,
    FloorApi,
    RecordingApi,
    RoutingApi,
    SeatApi,
    create_app,
)
from ccbridge.api.owner_forwarding import OwnerForwarder
from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.agi.server import (
    DONE_VARIABLE,
    AgiRouter,
    AgiServerConfig,
    FastAgiServer,
)
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.call_control import AmiCallControl
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.callback_agi import SCRIPT as CALLBACK_SCRIPT
from ccbridge.asterisk.callback_agi import CallbackHandler
from ccbridge.asterisk.config.publisher import QueueConfigPublisher
from ccbridge.asterisk.config.queues import GENERATED_FILE
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.ivr_return import SCRIPT as IVR_RETURN_SCRIPT
from ccbridge.asterisk.ivr_return import IvrReturnHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.asterisk.pbx_identity import PbxIdentity
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.asterisk.queue_log_file import QueueLogFile, queue_log_source
from ccbridge.asterisk.recording_control import AmiRecorderControl, AmiRecordingFeed
from ccbridge.asterisk.seat_feed import AmiSeatFeed
from ccbridge.crm.http_lookup import HttpCrmLookup
from ccbridge.crypto.report_signing import Ed25519ReportSigner
from ccbridge.crypto.secret_box import SecretBox
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import (
    PgReadPool,
    create_engine,
    create_session_factory,
    on_connection_lost,
    ping,
)
from ccbridge.db.event_listener import PgEventListener
from ccbridge.db.journal import SqlEventSettings, SqlJournal
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.pbx_changes import PBX_CHANGES_CHANNEL, PgPbxChangeNotices
from ccbridge.db.pbx_ownership import PgPbxLeases, SqlPbxOwnerLookup, SqlPbxSystemNames
from ccbridge.db.pbx_scope import PbxTenants, SqlTenantPlacement
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.db.repositories.calls import CallRepository
from ccbridge.db.repositories.dial_policies import DialPolicyRepository
from ccbridge.db.repositories.endpoints import EndpointRepository
from ccbridge.db.repositories.floor import SqlFloorAlertStore, SqlFloorRulesStore
from ccbridge.db.repositories.ftp_accounts import FtpAccountRepository
from ccbridge.db.repositories.idempotency import IdempotencyRepository
from ccbridge.db.repositories.ivr import (
    IvrCallLogRepository,
    IvrFlowRepository,
    IvrPromptRepository,
)
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.outbound_dials import SqlOutboundLedger
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.db.repositories.recording_exports import ExportRepository, OffboardingRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.db.repositories.report_archives import SqlReportArchives
from ccbridge.db.repositories.report_tallies import SqlReportTallies
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.db.repositories.routing import (
    CallbackRepository,
    CallHistoryRepository,
    InboundNumberRepository,
    RoutingPolicyRepository,
)
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository, StateIntervalRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.db.repositories.sla import SqlFaultReportStore, SqlIncidentStore
from ccbridge.db.repositories.statements import SqlStatementStore
from ccbridge.db.sqlite_reads import ReadPool, read_pool_for
from ccbridge.db.tenant_status_read import tenant_status_read
from ccbridge.db.webhooks import SqlWebhookStore
from ccbridge.db.writer_thread import ThreadedCallWrites
from ccbridge.domain.access import AuditEntry, Role
from ccbridge.domain.calendar import local_date
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.egress import parse_networks
from ccbridge.domain.floor.rules import FloorRules, platform_defaults
from ccbridge.domain.ha.ownership import LeaseTiming
from ccbridge.domain.ha.placement import CLUSTER_LEASE
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.domain.sla.detector import OutageDetector
from ccbridge.domain.sla.health import ErrorRateHealth, FastAgiHealth, JournalLagHealth
from ccbridge.domain.time import SystemClock
from ccbridge.egress.resolve import ResolvingHostChecker
from ccbridge.ftp.bridge import LoopBridge
from ccbridge.ftp.push import FtplibTransport
from ccbridge.ftp.server import FtpServerConfig, FtpService
from ccbridge.ivr_format.parse import YamlJsonFlowCodec
from ccbridge.jobs.runner import JobRunner
from ccbridge.logging_setup import configure_logging
from ccbridge.media.sox import SoxPromptConverter
from ccbridge.observability.health import CheckResult, Readiness
from ccbridge.observability.metrics import Metrics, answered_and_server_errors, lag_count_and_sum
from ccbridge.resilience.availability import DatabaseAvailability
from ccbridge.resilience.db_errors import is_database_busy, is_database_unavailable
from ccbridge.resilience.held import ErrorReport
from ccbridge.resilience.slow_shutdown import report_slow_shutdown
from ccbridge.resilience.supervise import supervise
from ccbridge.services.acd import RECONCILE_INTERVAL, DriftLog, Reconciler
from ccbridge.services.agents import AgentAdminService
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService, TenantZoneReader, load_hint
from ccbridge.services.call_backfill import CallBackfill
from ccbridge.services.call_control import CallControlService, SeatCallGate
from ccbridge.services.callbacks import CallbackService
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.day_figures import DayFigures
from ccbridge.services.dialing import DialPolicyService, TenantFactsReader
from ccbridge.services.egress import AllowListSource, ConfigurationChecker, EgressPolicy
from ccbridge.services.endpoints import EndpointGuard, EndpointService
from ccbridge.services.event_hub import EventHub
from ccbridge.services.events import EventService
from ccbridge.services.floor_alerts import FloorAlertService
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.ftp_accounts import FtpAccountService
from ccbridge.services.idempotency import IdempotencyService
from ccbridge.services.inbound_numbers import InboundNumberService, NumberDirectory
from ccbridge.services.ivr import IvrService
from ccbridge.services.ivr_ports import PromptLimits
from ccbridge.services.ivr_runtime import ActiveFlowCache, BufferedCallLog, CachedTenantFacts
from ccbridge.services.key_cache import KeyCache
from ccbridge.services.leases import LeaseService
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.pbx_change_relay import PbxChangeRelay
from ccbridge.services.pbx_config import VERIFY_INTERVAL, PbxConfigMonitor
from ccbridge.services.pbx_ownership import PbxOwnership
from ccbridge.services.pbx_recording_names import PbxRecordingNames, recorded_queues
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_policy import RecordingPolicyService
from ccbridge.services.recordings import RecordingService
from ccbridge.services.report_archives import ReportArchiver
from ccbridge.services.reports import ReportService
from ccbridge.services.retention import RetentionService
from ccbridge.services.routing_policies import CallRouter, RoutingPolicyService
from ccbridge.services.seat_ports import SkillGroupRecord
from ccbridge.services.seats import DesiredSeats, SeatService
from ccbridge.services.single_node_guard import PRESENCE_TTL, SINGLE_PREFIX, SingleNodeGuard
from ccbridge.services.sla import AutomaticIncidents, SlaService
from ccbridge.services.statements import StatementService
from ccbridge.services.supervision import SpyService
from ccbridge.services.tenant_retirement import PbxRetirement
from ccbridge.services.tenant_status import TenantStatusCache
from ccbridge.services.tenants import AccessService, StatusChanged
from ccbridge.services.wallboard import WallboardService
from ccbridge.services.webhooks import WebhookDispatcher, WebhookService
from ccbridge.settings import Mode, Settings, SlaSettings
from ccbridge.storage.recording_files import LocalRecordingFiles
from ccbridge.webhook_http.sender import HttpWebhookSender

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from ccbridge.testing.fake_pbx import FakeAsterisk

log = structlog.get_logger(__name__)

LOOP_LAG_WARN_MS = 100.0


@dataclass(slots=True)
class Service:
    """Everything one ccbridge process runs, already wired; :meth:`run` supervises it."""

    ami: AmiClient
    agi: FastAgiServer
    writer: CallBatchWriter
    calls: CallTrackingService
    repo: CallRepository
    access: AccessService
    jobs: JobRunner
    http: uvicorn.Server
    seat_feed: AmiSeatFeed
    recordings: _RecordingRuntime | None = None
    webhook_dispatcher: WebhookDispatcher | None = None
    read_pool: ReadPool | None = None
    metrics: Metrics = field(default_factory=Metrics)
    availability: DatabaseAvailability | None = None
    call_writes: ThreadedCallWrites | None = None
    journal: SqlJournal | None = None
    """The event journal (API-side events are appended through it; benches write with it)."""
    ownership: PbxOwnership | None = None
    """This node's claim on the PBX when several nodes share it (``CCBRIDGE_HA__ENABLED``)."""
    cluster: PbxOwnership | None = None
    """With several nodes: this node's claim on the work done once per database, whatever
    the PBX (retention, reports, exports, webhooks; ADR 0033)."""
    owner_forwarder: OwnerForwarder | None = None
    """With several nodes: sends owner-only requests from a standby to the owner."""
    event_listener: PgEventListener | None = None
    """With several nodes: the hub hears the other nodes' commits (LISTEN/NOTIFY)."""
    single_node_guard: SingleNodeGuard | None = None
    """Without HA on PostgreSQL: stands this node down if an HA node owns the PBX."""

    def background_loops(self) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
        """Every loop that runs beside the HTTP server, by name."""
        loops: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("db-writer", self.writer.run),
            ("ami-client", self.ami.run),
            ("jobs", self.jobs.run),
            ("seat-feed", self.seat_feed.run),
        ]
        if self.ownership is not None:
            loops.append(("pbx-ownership", self.ownership.run))
        if self.cluster is not None:
            loops.append(("cluster-lease", self.cluster.run))
        if self.single_node_guard is not None:
            loops.append(("single-node-guard", self.single_node_guard.run))
        if self.event_listener is not None:
            loops.append(("event-listener", self.event_listener.run))
        if self.recordings is not None:
            loops.append(("recordings", self.recordings.run))
        if self.webhook_dispatcher is not None:
            # Webhooks are sent by one node at a time: the PBX owner (ADR 0026).
            dispatch: Callable[[], Awaitable[object]] = self.webhook_dispatcher.run
            if self.cluster is not None:  # once per database (ADR 0033)
                dispatch = self.cluster.while_owner(dispatch)
            elif self.ownership is not None:
                dispatch = self.ownership.while_owner(dispatch)
            elif self.single_node_guard is not None:
                dispatch = self.single_node_guard.while_allowed(dispatch)
            loops.append(("webhooks", dispatch))
        if self.availability is not None:
            loops.append(("db-availability", self.availability.run))
        return loops

    async def run(self) -> None:
        """Run until the HTTP server exits (SIGINT/SIGTERM). A background loop that raises
        is restarted with back-off (``resilience.supervise``): a database outage or a bug
        in one loop never ends the API, AMI or FastAGI."""
        report = self.availability.report if self.availability is not None else None
        slow_stop: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                for name, loop in self.background_loops():
                    tg.create_task(supervise(name, loop, on_error=report), name=name)
                await tg.create_task(self.http.serve(), name="http")
                log.info("ccbridge_stopping")
                slow_stop = asyncio.create_task(report_slow_shutdown(), name="slow-shutdown")
                await self.ami.stop()
                await self.agi.stop()
                raise _StopRequested
        except* _StopRequested:
            pass
        finally:
            await self.jobs.run_final()  # after the FastAGI server stopped: no new records
            try:
                await self.writer.stop()
                log.info("final_flush_done", pending=self.writer.pending)
            finally:
                if self.ownership is not None:
                    await self.ownership.release()  # after the flush: written in our term
                if self.cluster is not None:
                    await self.cluster.release()
                if self.single_node_guard is not None:
                    await self.single_node_guard.release()  # likewise, for a node without HA
                if self.call_writes is not None:
                    self.call_writes.close()
            if self.access is not None:  # key-use records in flight, before the database closes
                await self.access.settle()
            if self.read_pool is not None:
                await self.read_pool.close()
            if self.owner_forwarder is not None:
                await self.owner_forwarder.close()
            if slow_stop is not None:
                slow_stop.cancel()


class _StopRequested(Exception):
    """Raised inside the TaskGroup after a clean HTTP shutdown to cancel the other tasks."""


class _HttpServer(uvicorn.Server):
    """uvicorn without its signal capture: uvicorn re-raises SIGTERM once it has stopped,
    which would kill the process before the batch writer's final flush."""

    def __init__(self, config: uvicorn.Config, hub: EventHub) -> None:
        super().__init__(config)
        self._hub = hub

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signals to :func:`_stop_on_signals`."""
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the event streams first: uvicorn waits for open responses, and an SSE
        response never ends by itself (then the grace period cancels what is left)."""
        log.info("http_stopping", open_connections=len(self.server_state.connections))
        self._hub.close()
        await super().shutdown(sockets)


def _http_server(app: FastAPI, settings: Settings, hub: EventHub) -> _HttpServer:
    """uvicorn on the configured address; our JSON logs, no lifespan (we own start and stop)."""
    return _HttpServer(
        uvicorn.Config(
            app,
            host=settings.api.host,
            port=settings.api.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=settings.api.shutdown_grace_seconds,
            timeout_keep_alive=settings.api.keep_alive_seconds,
        ),
        hub,
    )


@contextlib.contextmanager
def _stop_on_signals(http: uvicorn.Server) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into a graceful HTTP stop, which then stops everything else."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def request_stop() -> None:
        if http.should_exit:
            http.force_exit = True
        http.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, request_stop)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class StartRefusedError(RuntimeError):
    """``ccbridge serve`` must not start with this configuration; the message says why."""


async def run_service(settings: Settings) -> None:
    """Start ccbridge with ``settings`` and run until stopped."""
    problems = settings.check_high_availability()
    if problems:  # before anything is opened or configured
        raise StartRefusedError("; ".join(problems))
    configure_logging(settings.log_format, settings.log_level)
    log.info("ccbridge_starting", mode=settings.mode.value, simulator=settings.use_simulator)
    if settings.ha.enabled:
        log.info("ha_node", node=settings.ha.node_name(), pbx=settings.ha.pbx_id)
        if settings.pbx_records.queue_log_path is None:
            log.warning(
                "ha_without_queue_log",
                hint="a takeover recovers calls nobody watched from the PBX's queue log: set "
                "CCBRIDGE_PBX_RECORDS__QUEUE_LOG_PATH on every node (docs/ha.md)",
            )
    if settings.mode is Mode.DEV:
        await run_migrations_async(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        calendar = build_calendar_service(engine)
        ivr, agi = build_ivr_fastagi(settings, engine, calendar)
        await agi.start()
        try:
            async with _simulator(settings, agi.port) as pbx:
                ami_port = pbx.ami_port if pbx else None
                service = build_service(settings, engine, agi, ami_port, ivr, calendar)
                # Before AMI connects: calls left open by a crash get reconciled on first sync
                # (with several nodes, at each takeover instead: _pbx_ownership).
                # In a database with one PBX every tenant is on it (ADR 0033).
                await service.access.adopt_orphaned_tenants()
                if service.ownership is None:
                    service.calls.restore(await service.repo.open_calls(pbx=settings.ha.pbx_id))
                if settings.mode is Mode.DEV:
                    await ensure_dev_key(service.access, Path(settings.auth.dev_key_file))
                if pbx is not None:
                    await _seed_demo(engine, service.access)
                    await _seed_numbers(settings, ivr.routing)
                elif settings.routes:
                    log.warning(
                        "routes_setting_ignored",
                        hint="CCBRIDGE_ROUTES only seeds the simulator; assign numbers with "
                        "PUT /api/v1/tenants/{tenant_id}/numbers/{number}",
                    )
                # Everything built so far lives as long as the process: move it out of the
                # collector's reach, so full collections walk only what serving creates (their
                # pauses were the SSE fan-out's and the IVR steps' p99; docs/benchmarks.md).
                apply_gc_policy(service.metrics, settings.gc_young_threshold)
                with _stop_on_signals(service.http):
                    await service.run()
        finally:
            await agi.stop()
    finally:
        await engine.dispose()
        log.info("ccbridge_stopped")


async def run_api(settings: Settings) -> None:
    """Run an API-only process beside the one that owns the PBX (PostgreSQL only): it serves
    the HTTP API's reads (event polls, streams, calls) and never opens AMI or FastAGI (ADR
    0001). Its event hub is fed by ``LISTEN`` on the journal's commits (ADR 0008)."""
    configure_logging(settings.log_format, settings.log_level)
    engine = create_engine(settings.database_url)
    read_pool = PgReadPool.for_engine(engine)
    if read_pool is None:
        await engine.dispose()
        raise ValueError("`ccbridge api` needs PostgreSQL (SQLite has no LISTEN/NOTIFY)")
    log.info("ccbridge_api_starting")
    clock = SystemClock()
    sessions = create_session_factory(engine)
    hub = EventHub()
    journal = SqlJournal(sessions, read_pool=read_pool)
    repo = CallRepository(sessions)
    event_api, _dispatcher, _jobs = _events(settings, sessions, journal, hub, repo, clock)
    listener = PgEventListener(settings.database_url, journal, hub)
    metrics = Metrics()
    availability = database_availability(engine, metrics, clock)
    readiness = Readiness()

    async def listener_check() -> CheckResult:
        return CheckResult(listener.listening.is_set())

    readiness.add("database", database_check(availability))
    readiness.add("event_listener", listener_check)
    access = build_access_service(settings, engine, serves_pbx=False, read_pool=read_pool)
    app = create_app(
        call_store=repo,
        readiness=readiness,
        access=access,
        jwt=JwtCodec(settings.auth.jwt_secret.get_secret_value()),
        event_api=event_api,
    )
    http = _http_server(app, settings, hub)
    apply_gc_policy(metrics, settings.gc_young_threshold)
    try:
        with _stop_on_signals(http):
            loops = [
                asyncio.create_task(supervise(name, loop, on_error=availability.report), name=name)
                for name, loop in (
                    ("event-listener", listener.run),
                    ("db-availability", availability.run),
                )
            ]
            try:
                await http.serve()
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
    finally:
        await access.settle()  # key-use records in flight, before the database closes
        await read_pool.close()
        await engine.dispose()
        log.info("ccbridge_api_stopped")


def build_service(
    settings: Settings,
    engine: AsyncEngine,
    agi: FastAgiServer,
    ami_port: int | None,
    ivr: IvrWiring | None = None,
    calendar: CalendarService | None = None,
) -> Service:
    """Wire the services to their adapters (the one place that knows every concrete class).

    One calendar service serves leases, IVR and the API, so a PUT refreshes its one cache.
    """
    calendar = calendar or build_calendar_service(engine)
    ivr = ivr or _ivr(settings, engine, calendar)
    clock = SystemClock()
    metrics = Metrics()
    availability = database_availability(engine, metrics, clock)
    sessions = create_session_factory(engine)
    hub = EventHub()
    read_pool = read_pool_for(engine)
    ivr.tenant_status.read_through(tenant_status_read(sessions, read_pool))
    committed: list[Callable[[Sequence[StoredEvent]], None]] = []
    journal = SqlJournal(
        sessions,
        on_commit=_published_and_measured(hub, metrics, clock, committed),
        read_pool=read_pool,
    )
    repo = CallRepository(sessions)
    ivr.routing.callbacks.use_journal(journal)
    holds = settings.holds
    # Calls and their journal events are derived, encoded and written on the database writer
    # thread, on its own connection; the HTTP loop only hands batches over (ADR 0021).
    call_writes = ThreadedCallWrites.for_engine(engine, journal)
    writer = CallBatchWriter(
        call_writes, max_pending=holds.calls, metrics=metrics.held, on_error=availability.report
    )
    calls = CallTrackingService(writer)
    ownership = (
        _pbx_ownership(settings, calls, writer, repo, availability) if settings.ha.enabled else None
    )
    cluster = _cluster_lease(settings, availability) if ownership is not None else None
    if cluster is not None:
        metrics.ha.watch_cluster(cluster.may_act)
    guard = _single_node_guard(settings) if ownership is None else None
    ami = AmiClient(_ami_config(settings, ami_port), gate=ownership or guard)
    # Before any event is applied: is this the PBX it should be, with a system name of its
    # own among the database's PBXs (ADR 0033)?
    identity = PbxIdentity(settings.ha.pbx_id, SqlPbxSystemNames(sessions))
    ami.set_admission(identity)
    if guard is not None:
        guard.on_blocked(ami.drop)
    if ownership is not None:
        ownership.on_lost(lambda _epoch: ami.drop("this node lost the PBX's lease"))
        # A node frozen inside a batch must not hold the lease row past its own fence.
        call_writes.use_fence(
            ownership.fencing_token,
            idle_in_transaction=ownership.timing.ttl - ownership.timing.margin,
        )
        term = ownership
        metrics.ha.watch(term.may_act, lambda: term.terms_won, lambda: term.terms_lost)
    ami.action_observer = metrics.ami.observe_action
    metrics.ami.watch(lambda: ami.status)
    metrics.floor.watch_calls(calls.open_calls, clock.now)
    metrics.events.watch_journal(lambda: writer.pending)
    # The one owner of the AMI stream and the login sequence (docs/adr/0020-pbx-coordinator.md):
    # calls, then seats, then recordings; resync, then queue config, seat restore, verify.
    backfill = _backfill(settings, sessions, repo, calls, clock)
    call_feed = AmiCallFeed(calls, clock.now, backfill)
    pbx = PbxCoordinator(ami, calls=call_feed)
    if ownership is not None:
        # From the takeover (before AMI connects) to the end of the first resync, live call
        # events wait for the resync; a lost term drops what the last session left held.
        ownership.on_acquired(_holding(call_feed))
        ownership.on_lost(lambda _epoch: call_feed.hold_until_resync())
    recording_api, recordings, recording_jobs = _recordings(
        settings, sessions, ami, calls, repo, clock, journal, availability, metrics
    )
    if backfill is not None:
        backfill.use_recordings(recording_api.recordings)
    pbx.recordings = recordings.feed
    seat_api, seat_feed, seat_jobs, reconciler, retirement, pbx_config = _seats(
        settings,
        sessions,
        ami,
        calls,
        clock,
        calendar,
        ivr.tenant_status,
        journal,
        availability=availability,
        metrics=metrics,
        pbx=pbx,
        read_pool=read_pool,
    )
    pbx.seats = seat_feed
    # A recording-policy change re-renders the queues' monitor-format (ADR 0025). With several
    # nodes a change made through a standby is passed to the owner at once (ADR 0030).
    relay = _pbx_change_relay(pbx_config, reconciler, ownership, sessions)
    recording_api.policies.on_change = pbx_config.apply if relay is None else relay.apply
    if relay is not None:
        seat_api.agent_admin.pbx_queues = relay
    if ownership is not None:
        # A lost term forgets the seat and recording work it held, like the call snapshots.
        ownership.on_lost(lambda _epoch: seat_feed.held.discard())
        ownership.on_lost(lambda _epoch: recordings.feed.held.discard())
    # Calls answered while AMI was away get their recording once the PBX state is known.
    pbx.add_login_step(recordings.feed.after_login)
    pbx.attach()
    # One tenant-status cache for credentials and inbound calls: a suspension through the API
    # stops the tenant's tokens, keys and numbers at once; a termination also retires it
    # from the PBX.
    access = build_access_service(
        settings,
        engine,
        tenant_status=ivr.tenant_status,
        on_status_changed=retirement.on_status_changed,
    )
    event_api, dispatcher, event_jobs = _events(
        settings, sessions, journal, hub, repo, clock, on_error=availability.report, term=cluster
    )
    control_api = _call_control(settings, sessions, ami, calls, clock, calendar)
    reports_api = build_report_service(engine)
    floor_api, floor_job = _floor(
        settings, sessions, journal, hub, seat_api.seats, calls, ami, clock, reports_api
    )
    committed.append(floor_api.wallboard.on_events)
    readiness = _readiness(ami, agi, availability, ownership)
    forwarder = (
        _owner_forwarder(settings, ownership, sessions, metrics) if ownership is not None else None
    )
    if guard is not None:
        readiness.add("pbx_ownership", _guard_check(guard))
    readiness.add("pbx_identity", _owner_only(_identity_check(identity), ownership))
    readiness.add("acd_reconciler", _owner_only(_reconciler_check(reconciler), ownership))
    readiness.add("pbx_config", _owner_only(_pbx_config_check(pbx_config), ownership))
    readiness.add("calendar", calendar_check(calendar, clock.now))
    reports_api = build_report_service(engine)
    archives = ReportArchiver(
        reports_api,
        SqlReportArchives(sessions),
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        clock.now,
    )
    app = create_app(
        call_store=repo,
        readiness=readiness,
        access=access,
        jwt=JwtCodec(settings.auth.jwt_secret.get_secret_value()),
        seat_api=seat_api,
        recording_api=recording_api,
        ivr_api=ivr.service,
        event_api=event_api,
        calendar_api=calendar,
        reports_api=reports_api,
        report_archives_api=archives,
        sla_api=build_sla_service(engine),
        statements_api=build_statement_service(engine, calendar),
        metrics=metrics,
        routing_api=RoutingApi(
            numbers=ivr.routing.numbers,
            policies=ivr.routing.policies,
            callbacks=ivr.routing.callbacks,
        ),
        call_control_api=control_api,
        floor_api=floor_api,
        owner_forwarder=forwarder,
    )
    http = _http_server(app, settings, hub)
    # With several nodes, jobs run on the PBX owner only, except this node's own samplers
    # and buffers (ADR 0026): retention, exports, reports and reconciliation run once.
    jobs = JobRunner(
        on_error=availability.report,
        gate=(
            _owner_jobs_gate(ownership, ami)
            if ownership is not None
            else (guard.may_act if guard is not None else None)
        ),
        cluster_gate=cluster.may_act if cluster is not None else None,
    )
    jobs.add("floor-alerts", settings.floor.evaluate_seconds, floor_job)
    jobs.add("loop-lag", 1.0, _loop_lag_probe, every_node=True)
    if recordings is not None:
        metrics.events.watch_ftp(recordings.ftp_sessions)
    if dispatcher is not None:
        webhooks = dispatcher
        metrics.events.watch_webhooks(
            lambda: webhooks.sent, lambda: webhooks.failed, lambda: webhooks.in_doubt
        )
    jobs.add(
        "metrics-sample",
        METRICS_SAMPLE_SECONDS,
        _sampler(metrics, seat_api, dispatcher),
        every_node=True,
    )
    jobs.add(
        "idempotency-keys-retention",
        RETENTION_JOB_SECONDS,
        control_api.idempotency.purge,
        once_per_database=True,
    )
    jobs.add(
        "callbacks-settle",
        CALLBACK_SETTLE_SECONDS,
        lambda: ivr.routing.callbacks.settle(_call_lookup(calls, repo)),
    )
    for name, sampler in _sla_monitors(
        settings.sla, sessions, clock.now, ami, agi, metrics, writer
    ):
        jobs.add(name, settings.sla.sample_seconds, sampler)
    jobs.add(
        "report-tallies",
        settings.reports.tally_interval_seconds,
        reports_api.tallies.refresh,
        once_per_database=True,
    )
    jobs.add(
        "report-archives",
        settings.reports.archive_interval_seconds,
        archives.run_due,
        once_per_database=True,
    )
    for name, interval, job in (*seat_jobs, *recording_jobs, *ivr.jobs, *event_jobs):
        jobs.add(name, interval, job, once_per_database=name in ONCE_PER_DATABASE_JOBS)
    for name, interval, job in ivr.flushes:
        jobs.add(name, interval, job, on_stop=True, every_node=True)
    return Service(
        ami=ami,
        agi=agi,
        writer=writer,
        call_writes=call_writes,
        journal=journal,
        calls=calls,
        repo=repo,
        access=access,
        jobs=jobs,
        http=http,
        seat_feed=seat_feed,
        recordings=recordings,
        webhook_dispatcher=dispatcher,
        read_pool=read_pool,
        metrics=metrics,
        availability=availability,
        ownership=ownership,
        cluster=cluster,
        owner_forwarder=forwarder,
        single_node_guard=guard,
        event_listener=(
            PgEventListener(
                settings.database_url,
                journal,
                hub,
                channels={PBX_CHANGES_CHANNEL: relay.on_notice},
            )
            if relay is not None
            else None
        ),
    )


def _owner_forwarder(
    settings: Settings,
    ownership: PbxOwnership,
    sessions: async_sessionmaker[AsyncSession],
    metrics: Metrics,
) -> OwnerForwarder:
    """A standby's route to the owner for call control, seat commands and the wallboard."""
    forwarder = OwnerForwarder(
        node=ownership.node,
        pbx=ownership.pbx,
        owns_pbx=ownership.may_act,
        lookup=SqlPbxOwnerLookup(sessions),
        timeout=settings.ha.forward_timeout_seconds,
        placement=SqlTenantPlacement(sessions),
    )
    metrics.ha.watch_forwarding(lambda: forwarder.forwarded, lambda: forwarder.failed)
    return forwarder


def _single_node_guard(settings: Settings) -> SingleNodeGuard | None:
    """Without HA, on PostgreSQL against a real PBX: mark the PBX as this node's, and stand
    down if another node drives it (ADRs 0030, 0032)."""
    if settings.use_simulator or not settings.database_url.startswith("postgresql+asyncpg://"):
        return None
    leases = PgPbxLeases(settings.database_url, advertise_url=settings.ha.api_address(settings.api))
    me = f"{SINGLE_PREFIX}{settings.ha.node_name()}"
    pbx = settings.ha.pbx_id

    async def other_holder(pbx: str) -> tuple[str, int] | None:
        holder = await leases.hold_single(pbx, me, PRESENCE_TTL)
        return (holder.node, holder.epoch) if holder is not None and holder.live else None

    async def close() -> None:
        try:
            await leases.let_go(pbx, me)  # an HA node beside this one takes over now
        except Exception as exc:
            log.warning("single_node_let_go_failed", pbx=pbx, error=repr(exc))
        finally:
            await leases.close()

    return SingleNodeGuard(other_holder, pbx, close=close)


def _guard_check(guard: SingleNodeGuard) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness: a node without HA that found an HA owner of its PBX is not ready."""

    async def check() -> CheckResult:
        if guard.reason is None:
            return CheckResult(True, {"role": "single", "pbx": guard.pbx})
        node, epoch = guard.blocked_by or ("", 0)
        detail = {"role": "single", "pbx": guard.pbx, "ha_owner": node, "ha_epoch": epoch}
        return CheckResult(False, detail | {"reason": guard.reason})

    return check


def _pbx_change_relay(
    monitor: PbxConfigMonitor,
    reconciler: Reconciler,
    ownership: PbxOwnership | None,
    sessions: async_sessionmaker[AsyncSession],
) -> PbxChangeRelay | None:
    """With several nodes: config changes through any node's API reach the owner at once."""
    if ownership is None:
        return None
    return PbxChangeRelay(
        monitor, reconciler.run_once, ownership.may_act, PgPbxChangeNotices(sessions)
    )


def _pbx_ownership(
    settings: Settings,
    calls: CallTrackingService,
    writer: CallBatchWriter,
    repo: CallRepository,
    availability: DatabaseAvailability,
) -> PbxOwnership:
    """This node's claim on the PBX (ADR 0026). A takeover starts like a restart: the calls
    the last owner left open are restored, then AMI logs in and resyncs (and backfills). A
    loss forgets the PBX state this node held, as if it had died at the fence."""
    ha = settings.ha
    ownership = _lease(settings, availability, ha.pbx_id)

    async def take_over(_epoch: int) -> None:
        calls.forget_all()
        calls.restore(await repo.open_calls(pbx=ha.pbx_id))

    def give_up(_epoch: int) -> None:
        writer.discard()
        calls.forget_all()

    ownership.on_acquired(take_over)
    ownership.on_lost(give_up)
    return ownership


ONCE_PER_DATABASE_JOBS = frozenset(
    {
        "recording-purge",
        "recording-export-schedule",
        "ivr-activate",
        "events-retention",
        "webhook-log-retention",
    }
)
"""Jobs about no PBX, run by the cluster lease's holder (with the report and key jobs)."""


def _cluster_lease(settings: Settings, availability: DatabaseAvailability) -> PbxOwnership:
    """This node's claim on the work done once per database, whatever the PBX (ADR 0033):
    with several PBXs each has an owner, and only one of all their nodes may run retention,
    reports, exports and the webhook dispatcher. Same lease, fencing and timing as a PBX's."""
    return _lease(settings, availability, CLUSTER_LEASE)


def _lease(settings: Settings, availability: DatabaseAvailability, row: str) -> PbxOwnership:
    """This node's claim on one lease row (a PBX's, or the cluster's), with the HA timing."""
    ha = settings.ha
    return PbxOwnership(
        PgPbxLeases(settings.database_url, advertise_url=ha.api_address(settings.api)),
        pbx=row,
        node=ha.node_name(),
        timing=LeaseTiming(
            ttl=ha.lease_ttl_seconds,
            renew_every=ha.renew_interval_seconds,
            margin=ha.fence_margin_seconds,
        ),
        on_error=availability.report,
    )


def _holding(call_feed: AmiCallFeed) -> Callable[[int], Awaitable[None]]:
    """A takeover step: the call feed holds live events until the term's first resync."""

    async def hold(_epoch: int) -> None:
        call_feed.hold_until_resync()

    return hold


JOBS_AFTER_TAKEOVER_SECONDS = 15.0
"""A new owner's jobs wait for its AMI resync, or this long if the PBX is unreachable."""


def _owner_jobs_gate(ownership: PbxOwnership, ami: AmiClient) -> Callable[[], bool]:
    """Owner jobs run in a term, once the takeover's resync is done: reports and retention
    need no PBX, but they would compete with the resync for the CPU while the PBX waits."""

    def gate() -> bool:
        if not ownership.may_act():
            return False
        return ami.status.synced or ownership.owned_for() >= JOBS_AFTER_TAKEOVER_SECONDS

    return gate


def _identity_check(identity: PbxIdentity) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness: a PBX whose system name another PBX of the database has is not driven."""

    async def check() -> CheckResult:
        detail: dict[str, object] = {"pbx": identity.pbx, "system_name": identity.system_name}
        if identity.refused is None:
            return CheckResult(True, detail)
        return CheckResult(False, detail | {"reason": identity.refused})

    return check


def _owner_only(
    check: Callable[[], Awaitable[CheckResult]], ownership: PbxOwnership | None
) -> Callable[[], Awaitable[CheckResult]]:
    """A readiness check of PBX work, which a standby does not do (it is ready to serve)."""
    if ownership is None:
        return check

    async def checked() -> CheckResult:
        if not ownership.may_act():
            return CheckResult(True, {"role": "standby"})
        return await check()

    return checked


METRICS_SAMPLE_SECONDS = 5.0
AMI_DOWN_CAUSE = "ami_down"
FASTAGI_CAUSE = "fastagi_refusing"
HTTP_5XX_CAUSE = "http_5xx_rate"
EVENT_LAG_CAUSE = "event_journal_lag"


def _sla_monitors(
    cfg: SlaSettings,
    sessions: async_sessionmaker[AsyncSession],
    now: Callable[[], datetime],
    ami: AmiClient,
    agi: FastAgiServer,
    metrics: Metrics,
    writer: CallBatchWriter,
) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """One sampler per health signal; each opens and closes its own automatic incident
    (one open incident per cause at a time, resumed after a restart)."""
    store = SqlIncidentStore(sessions)
    window = timedelta(seconds=cfg.window_seconds)

    def incidents(cause: str, seconds: float) -> AutomaticIncidents:
        return AutomaticIncidents(store, now, cause, OutageDetector(timedelta(seconds=seconds)))

    ami_down = incidents(AMI_DOWN_CAUSE, cfg.ami_down_seconds)
    fastagi = incidents(FASTAGI_CAUSE, cfg.fastagi_refusing_seconds)
    http_5xx = incidents(HTTP_5XX_CAUSE, cfg.http_5xx_seconds)
    lag = incidents(EVENT_LAG_CAUSE, cfg.event_lag_seconds)
    agi_health = FastAgiHealth(window)
    http_health = ErrorRateHealth(window, cfg.http_5xx_ratio, cfg.http_5xx_min_requests)
    lag_health = JournalLagHealth(window, timedelta(seconds=cfg.event_lag_max_seconds))

    async def sample_fastagi() -> None:
        healthy = agi_health.observe(now(), agi.listening, agi.stats.refused_capacity)
        await fastagi.sample(healthy)

    async def sample_http() -> None:
        await http_5xx.sample(http_health.observe(now(), *answered_and_server_errors(metrics.http)))

    async def sample_lag() -> None:
        count, total = lag_count_and_sum(metrics.events)
        await lag.sample(lag_health.observe(now(), count, total, writer.pending))

    return [
        ("sla-ami", lambda: ami_down.sample(ami.status.logged_in)),
        ("sla-fastagi", sample_fastagi),
        ("sla-http-5xx", sample_http),
        ("sla-event-lag", sample_lag),
    ]


def _published_and_measured(
    hub: EventHub,
    metrics: Metrics,
    clock: SystemClock,
    listeners: Sequence[Callable[[Sequence[StoredEvent]], None]] = (),
) -> Callable[[Sequence[StoredEvent]], None]:
    """The journal's commit hook: publish to the hub, tell the *listeners* (the wallboard's
    day figures), then sample the event lag."""

    def on_commit(stored: Sequence[StoredEvent]) -> None:
        for listener in listeners:
            listener(stored)
        hub.publish(stored)
        metrics.events.committed(stored, clock.now())

    return on_commit


def _sampler(
    metrics: Metrics, seat_api: SeatApi, dispatcher: WebhookDispatcher | None
) -> Callable[[], Awaitable[None]]:
    """The job that samples what lives in the database: the seat census, webhook backlogs."""

    async def sample() -> None:
        metrics.floor.record_census(await seat_api.seats.census())
        if dispatcher is not None:
            metrics.events.record_webhook_backlog(await dispatcher.backlog())

    return sample


def database_availability(
    engine: AsyncEngine, metrics: Metrics, clock: SystemClock
) -> DatabaseAvailability:
    """The one availability tracker of the process: told by the engine of every lost link."""
    availability = DatabaseAvailability(
        lambda: ping(engine),
        is_database_unavailable,
        clock.now,
        metrics=metrics.db,
        is_busy=is_database_busy,
    )
    on_connection_lost(engine, lambda exc: availability.report(exc, "engine"))
    return availability


SIMULATOR_RECORDS_DIR = Path("./pbx-records")


def queue_log_path(settings: Settings) -> Path | None:
    """The PBX queue log ccbridge reads: the configured one, else the simulator's own."""
    configured = settings.pbx_records.queue_log_path
    if configured is None and settings.use_simulator:
        return SIMULATOR_RECORDS_DIR / "queue_log"
    return configured


def _backfill(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    repo: CallRepository,
    calls: CallTrackingService,
    clock: SystemClock,
) -> CallBackfill | None:
    """The gap backfill from the PBX's queue log (ADR 0013), when one is readable and wanted."""
    path = queue_log_path(settings)
    if path is None or not settings.pbx_records.backfill:
        return None
    return CallBackfill(
        QueueLogFile(path, queue_log_source(settings.ha.pbx_id)),
        SqlRecordCursors(sessions),
        repo,
        calls,
        clock.now,
        lookback=timedelta(seconds=settings.pbx_records.lookback_seconds),
    )


CALLBACK_SETTLE_SECONDS = 5.0
"""How often call-back attempts whose call has ended are settled (connected or not)."""


def _call_lookup(
    calls: CallTrackingService, repo: CallRepository
) -> Callable[[str], Awaitable[CallRecord | None]]:
    """A call as the tracker holds it, else as stored."""

    async def lookup(call_id: str) -> CallRecord | None:
        return calls.get(call_id) or await repo.get(call_id)

    return lookup


SEAT_TICK_SECONDS = 30.0
RETENTION_JOB_SECONDS = 3600.0


def egress_policy(settings: Settings, source: AllowListSource) -> EgressPolicy:
    """The one egress allow-list: the tenant's (platform admin) plus the platform-wide one."""
    return EgressPolicy(source, settings.egress_allow_networks)


def _events(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    journal: SqlJournal,
    hub: EventHub,
    calls: CallRepository,
    clock: SystemClock,
    *,
    on_error: ErrorReport | None = None,
    term: PbxOwnership | None = None,
) -> tuple[EventApi, WebhookDispatcher, list[tuple[str, float, Callable[[], Awaitable[object]]]]]:
    """Wire the event journal, its readers, webhooks and the 30-day retention jobs. With
    several nodes (*term*), every delivery is claimed and marked within this node's term
    (ADR 0030)."""
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    events = EventService(journal, hub, SqlEventSettings(sessions), calls, audit, clock.now)
    egress = egress_policy(settings, events)
    store = SqlWebhookStore(sessions)
    if term is not None:
        store.fence = term.fencing_token
        store.idle_in_transaction_ms = int((term.timing.ttl - term.timing.margin) * 1000)
    sender = HttpWebhookSender()
    dispatcher = WebhookDispatcher(
        store,
        journal,
        events,
        sender,
        hub,
        clock,
        egress=egress,
        on_error=on_error,
        may_act_for=None if term is None else term.remaining,
    )
    webhooks = WebhookService(
        store, events, sender, journal, audit, clock, wake=dispatcher.wake, egress=egress
    )
    jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("events-retention", RETENTION_JOB_SECONDS, events.prune),
        ("webhook-log-retention", RETENTION_JOB_SECONDS, webhooks.prune_log),
    ]
    return EventApi(events=events, webhooks=webhooks, clock=clock), dispatcher, jobs


def floor_rule_defaults(settings: Settings) -> FloorRules:
    """The platform's floor rules from ``CCBRIDGE_FLOOR__*``."""
    f = settings.floor
    return platform_defaults(
        not_ready_seconds=f.not_ready_too_long_seconds,
        break_seconds=f.break_too_long_seconds,
        on_break=f.too_many_on_break,
        breaks_per_day=f.break_count_exceeded,
        calls_waiting=f.calls_waiting_over,
        service_level_pct=f.service_level_target_pct,
        amber_band_pct=f.amber_band_pct,
        service_level_min_offered=f.service_level_min_offered,
    )


def _floor(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    journal: SqlJournal,
    hub: EventHub,
    seats: SeatService,
    calls: CallTrackingService,
    ami: AmiClient,
    clock: SystemClock,
    reports: ReportService,
) -> tuple[FloorApi, Callable[[], Awaitable[object]]]:
    """Wire floor rules, alerts (journal events), the wallboard and listen/whisper/barge."""
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    rules = FloorRuleService(
        SqlFloorRulesStore(sessions), floor_rule_defaults(settings), audit, clock.now
    )
    store = SqlFloorAlertStore(sessions, journal)
    seat_sessions = SeatSessionRepository(sessions)
    agents = AgentRepository(sessions)
    wallboard = WallboardService(
        seats=seats,
        agents=agents,
        groups=SkillGroupRepository(sessions),
        live_calls=calls.open_calls,
        current_call=calls.current_call_of,
        today=DayFigures(reports, calls.get, clock.now),
        rules=rules,
        alerts=store,
        clock=clock,
    )

    placed = PbxTenants(sessions, settings.ha.pbx_id)

    async def busy_tenants() -> set[str]:
        seated = {s.tenant_id for s in await seat_sessions.list_open(None, pbx=placed.pbx)}
        waiting = {c.tenant for c in calls.open_calls() if c.tenant and c.queued_at}
        return seated | waiting

    alerts = FloorAlertService(
        store=store,
        rules=rules,
        facts=wallboard.facts,
        tenants=busy_tenants,
        clock=clock,
        placed=placed.ids,
    )
    spy = SpyService(
        calls=calls,
        sessions=seat_sessions,
        agents=agents,
        endpoints=EndpointGuard(EndpointRepository(sessions), audit),
        pbx=AmiCallControl(ami, settings.agents_context),
        audit=audit,
        agents_context=settings.agents_context,
    )
    api = FloorApi(rules=rules, alerts=alerts, wallboard=wallboard, signal=hub, spy=spy)
    return api, alerts.evaluate


def _call_control(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    ami: AmiClient,
    calls: CallTrackingService,
    clock: SystemClock,
    calendar: CalendarService,
) -> CallControlApi:
    """Wire agent call control to AMI, the live calls, the seats and the dial policy."""
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    groups = SkillGroupRepository(sessions)
    facts = TenantFactsReader(
        lambda: SqlAccessUnitOfWork(sessions),
        groups,
        LeaseRepository(sessions),
        DialPolicyRepository(sessions),
        calendar,
    )
    control = CallControlService(
        calls=calls,
        sessions=SeatSessionRepository(sessions),
        agents=AgentRepository(sessions),
        groups=groups,
        facts=facts,
        pbx=AmiCallControl(ami, settings.agents_context),
        audit=audit,
        now=clock.now,
        agents_context=settings.agents_context,
        ledger=SqlOutboundLedger(sessions),
    )
    return CallControlApi(
        call_control=control,
        idempotency=IdempotencyService(IdempotencyRepository(sessions), clock.now),
    )


def _seats(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    ami: AmiClient,
    calls: CallTrackingService,
    clock: SystemClock,
    calendar: CalendarService,
    tenant_status: TenantStatusCache,
    journal: SqlJournal | None = None,
    *,
    availability: DatabaseAvailability | None = None,
    metrics: Metrics | None = None,
    pbx: PbxCoordinator,
    read_pool: ReadPool | None = None,
) -> tuple[
    SeatApi,
    AmiSeatFeed,
    list[tuple[str, float, Callable[[], Awaitable[object]]]],
    Reconciler,
    PbxRetirement,
    PbxConfigMonitor,
]:
    """Wire agents, leases, seats, the queue config and the reconciler to the DB and AMI.

    A terminated tenant's queues are left out of the queue file and of what the reconciler
    owns; its seats are closed by the retirement hook and job."""
    agents = AgentRepository(sessions)
    groups = SkillGroupRepository(sessions)
    leases = LeaseRepository(sessions)
    seat_sessions = SeatSessionRepository(sessions, journal, read_pool=read_pool)
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    endpoint_repo = EndpointRepository(sessions)
    guard = EndpointGuard(endpoint_repo, audit)
    queues = AmiQueueControl(ami)
    policies = RecordingRepository(sessions, cipher=secret_box(settings))
    home_pbx = settings.ha.pbx_id  # the owner's work covers the tenants placed on it (ADR 0033)

    async def live_groups() -> list[SkillGroupRecord]:
        return await groups.live_groups(home_pbx)

    publisher = QueueConfigPublisher(
        settings.asterisk_generated_dir,
        live_groups,
        ami,
        recorded=lambda live: recorded_queues(policies, live),
    )
    seats = SeatService(
        agents=agents,
        leases=leases,
        sessions=seat_sessions,
        intervals=StateIntervalRepository(sessions),
        queues=queues,
        endpoints=guard,
        clock=clock,
        pbx=home_pbx,
    )

    async def owned_queues() -> list[str]:
        return [g.queue for g in await live_groups()]

    async def seated_tenants() -> set[str]:
        return {s.tenant_id for s in await seat_sessions.list_open(None, pbx=home_pbx)}

    desired = DesiredSeats(seat_sessions, agents, owned_queues, guard, pbx=home_pbx)

    async def expected_members() -> list[tuple[str, str]]:
        return [(m.queue, m.interface) for m in await desired.desired()]

    generated = settings.asterisk_generated_dir.absolute() / GENERATED_FILE
    monitor = PbxConfigMonitor(
        publisher,
        queues,
        owned_queues,
        expected_members,
        hint=f"ccbridge writes {generated}: the PBX must #include that file "
        "(CCBRIDGE_ASTERISK_GENERATED_DIR, docs/install.md#pbx-includes)",
    )
    retirement = PbxRetirement(
        seats, monitor.apply, status=tenant_status.status, seated_tenants=seated_tenants
    )

    reconciler = Reconciler(queues, desired, DriftLog(), clock)
    # After each login (the coordinator runs the calls resync first): queue file, then
    # restore every signed-in seat, then verify the PBX has every queue and member.
    pbx.add_login_step(publisher.on_login)
    pbx.add_login_step(reconciler.on_login)
    pbx.add_login_step(monitor.on_login)
    gate = SeatCallGate(calls, seats.call_event)
    feed = AmiSeatFeed(
        gate,
        settings.holds.seats,
        on_error=availability.report if availability else None,
        wait_ready=availability.wait_up if availability else None,
        metrics=metrics.held if metrics else None,
    )
    api = SeatApi(
        agent_admin=AgentAdminService(
            agents, groups, seat_sessions, audit, guard, pbx_queues=monitor
        ),
        seats=seats,
        leases=LeaseService(
            leases,
            seat_sessions,
            audit,
            clock.now,
            calendar=calendar,
            zones=TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        ),
        dial_policy=DialPolicyService(
            DialPolicyRepository(sessions), lambda: SqlAccessUnitOfWork(sessions), audit, clock.now
        ),
        audit=audit,
        current_call=calls.current_call_of,
        endpoints=EndpointService(endpoint_repo, audit, clock.now, settings.agents_context),
    )
    jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("seat-tick", SEAT_TICK_SECONDS, seats.tick),
        ("seat-call-gate", 2.0, gate.sweep),
        ("acd-reconcile", RECONCILE_INTERVAL, reconciler.run_once),
        ("tenant-pbx-retire", SEAT_TICK_SECONDS, retirement.sweep),
        ("pbx-config-verify", VERIFY_INTERVAL, monitor.recheck),
    ]
    return api, feed, jobs, reconciler, retirement, monitor


@dataclass(slots=True)
class _RecordingRuntime:
    """The recording feed, the FTP thread and background exports, run under the service."""

    feed: AmiRecordingFeed
    ftp: Callable[[asyncio.AbstractEventLoop], FtpService] | None
    reencrypt: Callable[[], Awaitable[int]]
    resume: tuple[Callable[[], Awaitable[int]], ...]
    """Unfinished exports and off-boardings a stopped process left behind."""
    background: Callable[[Awaitable[object]], None]
    server: FtpService | None = None

    def ftp_sessions(self) -> int:
        """Connected FTP(S) sessions (0 while the FTP server is off)."""
        return self.server.sessions() if self.server is not None else 0

    _resumed: bool = False

    async def run(self) -> None:
        """Re-encrypt under a rotated key, resume unfinished exports and off-boardings, serve
        FTP in its thread, apply answers until cancelled."""
        rotated = await self.reencrypt()  # after a key rotation: every secret under the new key
        if rotated:
            log.info("secrets_reencrypted", rows=rotated)
        server = self.ftp(asyncio.get_running_loop()) if self.ftp else None
        if server is not None:
            server.start()
            self.server = server
        try:
            if not self._resumed:  # once: a restarted loop must not start them twice
                self._resumed = True
                for pending in self.resume:
                    self.background(pending())
            await self.feed.run()
        finally:
            if server is not None:
                self.server = None
                await asyncio.to_thread(server.stop)


async def _logged(work: Awaitable[object]) -> object:
    """Await background work; its failure is logged (and stored by the service), not lost."""
    try:
        return await work
    except Exception:
        log.exception("recording_background_task_failed")
        return None


RECORDING_FINALISE_SECONDS = 60.0
EXPORT_SCHEDULE_SECONDS = 600.0


def secret_box(settings: Settings) -> SecretBox:
    """The at-rest cipher for stored secrets (current key plus old keys during a rotation)."""
    return SecretBox(
        settings.secrets_key.get_secret_value(),
        [k.get_secret_value() for k in settings.secrets_old_keys],
    )


def live_answered_calls(calls: CallTrackingService) -> list[tuple[CallRecord, str]]:
    """Each open call with its first channel still up (the caller's), for late recording."""
    out = []
    for record in calls.open_calls():
        channels = calls.live_channels(record.call_id)
        if record.answered_at is not None and channels:
            out.append((record, channels[0]))
    return out


def recordings_after_resync(
    service: RecordingService, calls: CallTrackingService
) -> Callable[[], Awaitable[int]]:
    """The recordings' login step: finalise recordings whose channel hung up during the gap,
    then record (or index the PBX's recording of) calls answered in it and still up."""

    async def step() -> int:
        up = {ch for record in calls.open_calls() for ch in calls.live_channels(record.call_id)}
        service.forget_channels_gone(up)
        return await service.record_calls_answered_in_gap(live_answered_calls(calls))

    return step


def report_signer(settings: Settings) -> Ed25519ReportSigner:
    """The Ed25519 key purge reports are signed with (clients verify with its public key)."""
    return Ed25519ReportSigner(settings.recordings.report_signing_key.get_secret_value())


def _recordings(
    app_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    ami: AmiClient,
    calls: CallTrackingService,
    repo: CallRepository,
    clock: SystemClock,
    journal: SqlJournal,
    availability: DatabaseAvailability | None = None,
    metrics: Metrics | None = None,
) -> tuple[
    RecordingApi, _RecordingRuntime, list[tuple[str, float, Callable[[], Awaitable[object]]]]
]:
    """Wire recording control, the index, retention, exports and the FTP(S) service."""
    settings = app_settings.recordings
    store = RecordingRepository(sessions, journal, cipher=secret_box(app_settings))
    files = LocalRecordingFiles(settings.dir)
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)

    async def call_of(call_id: str) -> CallRecord | None:
        return calls.get(call_id) or await repo.get(call_id)

    key = settings.link_secret.get_secret_value().encode()
    control = AmiRecorderControl(ami)
    service = RecordingService(
        store,
        files,
        control,
        call_of,
        audit,
        clock,
        LinkSigner(key),
        pbx_file=control.recording_file,
        pbx=app_settings.ha.pbx_id,
    )
    feed = AmiRecordingFeed(
        service.on_agent_connect,
        service.on_channel_gone,
        app_settings.holds.recordings,
        on_pbx_recording=service.on_pbx_recording,
        on_hangup=service.on_hangup,
        on_error=availability.report if availability else None,
        wait_ready=availability.wait_up if availability else None,
        metrics=metrics.held if metrics else None,
        after_resync=recordings_after_resync(service, calls),
    )
    egress = egress_policy(app_settings, SqlEventSettings(sessions))
    exports = ExportService(
        store,
        ExportRepository(sessions),
        files,
        FtplibTransport(max_bytes_per_second=settings.export_max_bytes_per_second),
        clock,
        egress=egress,
    )
    accounts = FtpAccountRepository(sessions)
    tasks: set[asyncio.Task[object]] = set()

    def background(work: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(_logged(work))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    export_store = ExportRepository(sessions)
    offboarding = OffboardingService(
        store,
        export_store,
        exports,
        files,
        clock,
        report_signer(app_settings),
        OffboardingRepository(sessions),
        audit,
    )

    async def append(entry: AuditEntry) -> None:
        async with SqlAccessUnitOfWork(sessions) as uow:
            await uow.audit.append(entry)
            await uow.commit()

    def ftp(loop: asyncio.AbstractEventLoop) -> FtpService:
        ports = settings.ftp_passive_ports
        low, _, high = (ports or "").partition("-")
        config = FtpServerConfig(
            root=settings.dir,
            host=settings.ftp_host,
            port=settings.ftp_port,
            passive_ports=(int(low), int(high)) if ports else None,
            masquerade_address=settings.ftp_masquerade_address,
            certfile=settings.ftp_certfile,
            keyfile=settings.ftp_keyfile,
            tls_control_required=settings.ftp_tls_required,
        )
        return FtpService(config, LoopBridge(loop, append, accounts.get))

    retention = RetentionService(store, files, clock)
    api = RecordingApi(
        recordings=service,
        exports=exports,
        ftp_accounts=FtpAccountService(accounts, audit, clock),
        audit=audit,
        run_export=lambda job_id: background(exports.run(job_id)),
        policies=RecordingPolicyService(
            store,
            audit,
            clock,
            targets=ConfigurationChecker(egress, ResolvingHostChecker()),
        ),
        offboarding=offboarding,
        run_offboarding=lambda tenant: background(offboarding.run(tenant)),
        retention=retention,
    )
    jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("recording-purge", settings.purge_interval_seconds, retention.purge),
        ("recording-finalise", RECORDING_FINALISE_SECONDS, service.finalise_stale),
        ("recording-export-schedule", EXPORT_SCHEDULE_SECONDS, exports.nightly),
    ]
    runtime = _RecordingRuntime(
        feed,
        ftp if settings.ftp_enabled else None,
        store.reencrypt_secrets,
        (exports.run_pending, offboarding.run_pending),
        background,
    )
    return api, runtime, jobs


IVR_ACTIVATE_SECONDS = 15.0
IVR_LOG_FLUSH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class IvrWiring:
    """The IVR service (HTTP), the FastAGI flow runner and their periodic jobs."""

    service: IvrService
    runner: IvrRunner
    jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]]
    flushes: list[tuple[str, float, Callable[[], Awaitable[object]]]]
    """Periodic jobs that also run once at shutdown (the buffered call log)."""
    tenant_status: TenantStatusCache
    """Which tenants are active: inbound calls and (under ``serve``) credentials read it."""
    routing: RoutingWiring


@dataclass(frozen=True, slots=True)
class RoutingWiring:
    """Inbound numbers, routing policies and call-back requests: the API's services and what
    the FastAGI route reads (both caches are invalidated by the services on every change)."""

    numbers: InboundNumberService
    directory: NumberDirectory
    number_repo: InboundNumberRepository
    policies: RoutingPolicyService
    router: CallRouter
    callbacks: CallbackService


def _routing(
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditRecorder,
    now: Callable[[], datetime],
    crm: HttpCrmLookup,
    crm_targets: ConfigurationChecker,
    *,
    pbx: str | None = None,
) -> RoutingWiring:
    """Wire inbound numbers, routing policies and call-backs to the database; FastAGI routes
    only the numbers of the tenants placed on *pbx* (ADR 0033)."""
    number_repo = InboundNumberRepository(sessions)
    directory = NumberDirectory(number_repo, pbx=pbx)
    policy_repo = RoutingPolicyRepository(sessions)
    router = CallRouter(
        policy_repo,
        CallHistoryRepository(sessions),
        SeatSessionRepository(sessions),
        now,
        crm=crm,
    )
    groups = SkillGroupRepository(sessions)
    return RoutingWiring(
        numbers=InboundNumberService(
            number_repo, groups, IvrFlowRepository(sessions), audit, now, directory.invalidate
        ),
        directory=directory,
        number_repo=number_repo,
        policies=RoutingPolicyService(
            policy_repo, groups, audit, now, router.invalidate, crm_targets=crm_targets
        ),
        router=router,
        callbacks=CallbackService(CallbackRepository(sessions), now, pbx=pbx),
    )


def build_ivr_fastagi(
    settings: Settings,
    engine: AsyncEngine,
    calendar: CalendarService,
    *,
    now: Callable[[], datetime] | None = None,
) -> tuple[IvrWiring, FastAgiServer]:
    """The IVR runtime and the FastAGI server that runs it, as ``ccbridge serve`` wires them.

    The IVR bench builds its server here too, so it measures the production path; ``now``
    lets it fix the clock (service hours) and defaults to the system clock.
    """
    ivr = _ivr(settings, engine, calendar, now=now)
    names = PbxRecordingNames(
        RecordingRepository(create_session_factory(engine), cipher=secret_box(settings)),
        str(settings.recordings.dir.resolve()),
        now or SystemClock().now,
    )
    return ivr, _fastagi(settings, ivr.runner, ivr.tenant_status, ivr.routing, names)


def _ivr(
    settings: Settings,
    engine: AsyncEngine,
    calendar: CalendarService,
    *,
    now: Callable[[], datetime] | None = None,
) -> IvrWiring:
    """Wire flows, revisions, prompts, the active-flow cache, the call log, the CRM client and
    the tenant facts (zone, skill groups, outbound rights) flows are checked against; publish
    times count working days on ``calendar``."""
    clock_now = now or SystemClock().now
    sessions = create_session_factory(engine)
    flows, prompts = IvrFlowRepository(sessions), IvrPromptRepository(sessions)
    codec = YamlJsonFlowCodec()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock_now)
    cfg = settings.ivr
    converter = SoxPromptConverter(cfg.prompts_dir)
    call_logs = IvrCallLogRepository(sessions)
    tenants = TenantFactsReader(
        lambda: SqlAccessUnitOfWork(sessions),
        SkillGroupRepository(sessions),
        LeaseRepository(sessions),
        DialPolicyRepository(sessions),
        calendar,
    )
    crm_egress = _crm_egress(settings, sessions)
    crm_targets = ConfigurationChecker(crm_egress, ResolvingHostChecker())
    service = IvrService(
        flows,
        prompts,
        codec,
        audit,
        clock_now,
        tenants=tenants,
        calendar=calendar,
        converter=converter,
        call_logs=call_logs,
        prompt_limits=PromptLimits(
            max_input_bytes=cfg.prompt_max_input_bytes,
            max_duration_seconds=cfg.prompt_max_duration_seconds,
            max_output_bytes=cfg.prompt_max_output_bytes,
            quota_bytes=cfg.prompt_quota_bytes,
            quota_overrides=dict(cfg.prompt_quota_overrides),
        ),
        crm_targets=crm_targets,
    )
    root = cfg.asterisk_prompts_dir or str(cfg.prompts_dir.resolve())
    cache = ActiveFlowCache(flows, prompts, codec, prompts_root=root)
    call_log = BufferedCallLog(call_logs.add_many)
    crm = HttpCrmLookup(allow_for=crm_egress.networks)
    runner = IvrRunner(
        cache, call_log, clock_now, crm=crm, tenants=CachedTenantFacts(tenants), prompts_root=root
    )
    jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("ivr-activate", IVR_ACTIVATE_SECONDS, service.activate_due),
    ]
    return IvrWiring(
        service,
        runner,
        jobs,
        [("ivr-call-log", IVR_LOG_FLUSH_SECONDS, call_log.flush)],
        tenant_status_cache(sessions),
        _routing(sessions, audit, clock_now, crm, crm_targets, pbx=settings.ha.pbx_id),
    )


def _crm_egress(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> EgressPolicy:
    """The egress policy for CRM lookups; honours the deprecated ``crm_allowed_hosts``."""
    legacy: list[str] = []
    for entry in settings.ivr.crm_allowed_hosts:
        try:
            parse_networks([entry])
        except ValueError:
            log.warning("crm_allowed_hosts_name_ignored", host=entry[:100])
            continue
        legacy.append(entry)
    return EgressPolicy(SqlEventSettings(sessions), [*settings.egress_allow_networks, *legacy])


def build_report_service(engine: AsyncEngine) -> ReportService:
    """The four contract reports over *engine* (also used by ``ccbridge reports export``)."""
    sessions = create_session_factory(engine)
    clock = SystemClock()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    return ReportService(
        SqlReportSource(sessions),
        SqlReportSettingsStore(sessions),
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        audit,
        clock.now,
        SqlReportTallies(sessions),
    )


def build_sla_service(engine: AsyncEngine) -> SlaService:
    """The incident log and the monthly stability figure over *engine*."""
    sessions = create_session_factory(engine)
    clock = SystemClock()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    return SlaService(
        SqlIncidentStore(sessions),
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        audit,
        clock.now,
        SqlFaultReportStore(sessions),
    )


def build_statement_service(engine: AsyncEngine, calendar: CalendarService) -> StatementService:
    """Monthly statements over *engine*, counted on *calendar*'s working days."""
    sessions = create_session_factory(engine)
    clock = SystemClock()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    return StatementService(
        SqlStatementStore(sessions),
        LeaseRepository(sessions),
        SeatSessionRepository(sessions),
        SqlReportSource(sessions),
        build_sla_service(engine),
        calendar,
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        audit,
        clock.now,
    )


def build_calendar_service(engine: AsyncEngine) -> CalendarService:
    """The platform's working-day calendar over *engine* (also used by ``ccbridge calendar``)."""
    sessions = create_session_factory(engine)
    clock = SystemClock()
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    return CalendarService(CalendarRepository(sessions), audit, clock.now)


def calendar_check(
    calendar: CalendarService, now: Callable[[], datetime]
) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness detail: the years loaded, and a warning (not a failure) for a year notices
    reach without one; those notices count Monday to Friday only."""

    async def check() -> CheckResult:
        coverage = await calendar.coverage(local_date(now()))
        detail: dict[str, object] = {
            "loaded_years": coverage.loaded_years,
            "missing_years": coverage.missing_years,
        }
        if coverage.missing_years:
            years = ", ".join(str(y) for y in coverage.missing_years)
            detail["warning"] = (
                f"no working-day calendar for {years}: holidays and make-up days are not "
                f"counted in notice periods; {load_hint(coverage.missing_years[0])}"
            )
        return CheckResult(True, detail)

    return check


def _pbx_config_check(monitor: PbxConfigMonitor) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness: not ready while the PBX lacks a queue or member ccbridge expects (by name)."""

    async def check() -> CheckResult:
        ok, detail = monitor.readiness()
        return CheckResult(ok, detail)

    return check


def _reconciler_check(reconciler: Reconciler) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness detail: cycles, repairs per drift kind; not ready while cycles keep failing."""

    async def check() -> CheckResult:
        st = reconciler.stats
        return CheckResult(
            st.cycles > 0 or st.cycles_failed == 0,
            {
                "cycles": st.cycles,
                "cycles_failed": st.cycles_failed,
                "repairs": st.repairs,
                "repairs_failed": st.repairs_failed,
                "drift": {k.value: v for k, v in st.drift.items()},
                "last_duration_s": st.last_duration,
            },
        )

    return check


async def _seed_demo(engine: AsyncEngine, access: AccessService) -> None:
    """With the simulator: demo tenants, leases, skill groups and agents matching its queues."""
    from ccbridge.testing.demo_db import seed_demo_database  # lazy: the simulator is dev-only

    await seed_demo_database(engine, access)


async def _seed_numbers(settings: Settings, routing: RoutingWiring) -> None:
    """With the simulator: assign the seed numbers nobody holds yet, effective at once."""
    from ccbridge.testing.demo import seed_numbers  # lazy: the simulator is dev-only

    if await seed_numbers(routing.number_repo, _seed_routes(settings), SystemClock().now()):
        routing.directory.invalidate()


def build_access_service(
    settings: Settings,
    engine: AsyncEngine,
    *,
    tenant_status: TenantStatusCache | None = None,
    on_status_changed: StatusChanged | None = None,
    serves_pbx: bool = True,
    read_pool: ReadPool | None = None,
) -> AccessService:
    """Tenants, keys, tokens and audit over *engine* (also used by ``ccbridge keys create``);
    *serves_pbx* is false on an API-only process, which places tenants on no PBX of its own."""
    sessions = create_session_factory(engine)
    return AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec(settings.auth.jwt_secret.get_secret_value()),
        now=SystemClock().now,
        token_ttl_seconds=settings.auth.token_ttl_seconds,
        key_cache=KeyCache(ttl=timedelta(seconds=settings.auth.key_cache_seconds)),
        tenant_status=tenant_status or tenant_status_cache(sessions, read_pool),
        on_status_changed=on_status_changed,
        home_pbx=settings.ha.pbx_id if serves_pbx else None,
    )


def tenant_status_cache(
    sessions: async_sessionmaker[AsyncSession], read_pool: ReadPool | None = None
) -> TenantStatusCache:
    """The tenant-status cache over the tenants table (read through *read_pool* when given)."""
    return TenantStatusCache(tenant_status_read(sessions, read_pool))


async def ensure_dev_key(access: AccessService, key_file: Path) -> None:
    """Dev mode: with no platform-admin key yet, create one and write it to *key_file* (0600).

    The key itself is never logged; only the file path is.
    """
    existing = _read_key_file(key_file)
    if existing and await access.authenticate_key(existing):
        return
    if await access.has_platform_key():
        log.warning("dev_api_key_unavailable", path=str(key_file), hint="ccbridge keys create")
        return
    _key, plaintext = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="dev platform admin", actor="system:dev"
    )
    written = _write_key_file(key_file, plaintext)
    log.info("dev_api_key_created", path=written)


def _read_key_file(path: Path) -> str | None:
    """Return the key stored at *path*, if any (startup only; a tiny blocking read)."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _write_key_file(path: Path, plaintext: str) -> str:
    """Write the key readable by the owner only (0600, also when the file existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(plaintext + "\n")
    return str(path.resolve())


def _fastagi(
    settings: Settings,
    ivr: IvrRunner | None = None,
    status: TenantStatusCache | None = None,
    routing: RoutingWiring | None = None,
    recording: PbxRecordingNames | None = None,
) -> FastAgiServer:
    """The FastAGI server: ``inbound`` routes by the numbers assigned over the API (no fixed
    routes: ``CCBRIDGE_ROUTES`` only seeds the simulator's) and names the PBX-side recording
    (*recording*, ADR 0025), ``callback`` stores requests. Every script it finishes ends by
    setting ``CCB_AGI_DONE``, which the shipped dialplan's node failover reads (docs/ha.md)."""
    router = AgiRouter()
    fb = settings.fallback_route
    fallback = InboundRoute(fb.tenant, fb.queue) if fb else None
    closed = status.is_closed if status is not None else None
    router.add_route(
        SCRIPT,
        InboundRouteHandler(
            {},
            fallback,
            ivr,
            tenant_closed=closed,
            numbers=routing.directory if routing else None,
            policies=routing.router if routing else None,
            recording=recording,
        ),
    )
    if routing is not None:
        router.add_route(CALLBACK_SCRIPT, CallbackHandler(routing.callbacks))
    if ivr is not None:
        router.add_route(IVR_RETURN_SCRIPT, IvrReturnHandler(ivr, tenant_closed=closed))
    config = AgiServerConfig(
        host=settings.agi.host,
        port=settings.agi.port,
        allowed_peers=tuple(settings.agi.allowed_peers),
        max_sessions=settings.agi.max_sessions,
        done_variable=DONE_VARIABLE,
    )
    return FastAgiServer(config, router)


def _ami_config(settings: Settings, port: int | None) -> AmiConfig:
    ami = settings.ami
    return AmiConfig(
        host=ami.host or "127.0.0.1",
        port=port or ami.port,
        username=ami.username,
        secret=ami.secret.get_secret_value(),
        auth="plain" if ami.auth == "plain" else "md5",
        ping_interval=ami.ping_interval,
        max_missed_pongs=ami.max_missed_pongs,
        action_timeout=ami.action_timeout,
    )


def _seed_routes(settings: Settings) -> dict[str, tuple[str, str]]:
    """Seed numbers for the simulator: its demo numbers overlaid by ``CCBRIDGE_ROUTES``."""
    from ccbridge.testing.fake_pbx import demo_dids  # lazy: the simulator is dev-only

    routes = {did: (r.tenant, r.queue) for did, r in demo_dids().items()}
    routes.update({did: (r.tenant, r.queue) for did, r in settings.routes.items()})
    return routes


@contextlib.asynccontextmanager
async def _simulator(settings: Settings, agi_port: int) -> AsyncIterator[FakeAsterisk | None]:
    """Run the in-process fake Asterisk when configured (no AMI host, or --simulate-pbx)."""
    if not settings.use_simulator:
        yield None
        return
    from ccbridge.testing.call_generator import SimulatorConfig  # lazy: the simulator is dev-only
    from ccbridge.testing.fake_pbx import FakeAsterisk  # lazy: the simulator is dev-only

    sim = settings.simulator
    records = queue_log_path(settings)
    pbx = FakeAsterisk(
        users={settings.ami.username: settings.ami.secret.get_secret_value()},
        # Like a PBX that includes the generated file: skill groups become its queues.
        queues_conf=settings.asterisk_generated_dir / GENERATED_FILE,
        seed=sim.seed,
        records_dir=None if records is None else records.parent,
        config=SimulatorConfig(
            agi_url=f"agi://127.0.0.1:{agi_port}/{SCRIPT}",
            talk_seconds=(sim.talk_seconds_min, max(sim.talk_seconds_min, sim.talk_seconds_max)),
            abandon_probability=sim.abandon_ratio,
        ),
    )
    await pbx.start()
    log.info("pbx_simulator_started", ami_port=pbx.ami_port, calls_per_minute=sim.calls_per_minute)
    try:
        if sim.calls_per_minute > 0:
            pbx.simulator.start_traffic(sim.calls_per_minute)
        yield pbx
    finally:
        await pbx.stop()


def _readiness(
    ami: AmiClient,
    agi: FastAgiServer,
    database: DatabaseAvailability,
    ownership: PbxOwnership | None = None,
) -> Readiness:
    """Register one readiness check per dependency /readyz reports on. A standby node is
    ready (it serves the API and FastAGI) without an AMI session of its own."""
    readiness = Readiness()

    async def ami_check() -> CheckResult:
        if ownership is not None and not ownership.may_act():
            return CheckResult(True, {"role": "standby", "actions_fenced": ami.actions_fenced})
        st = ami.status
        age = None if st.last_event_at is None else round(time.monotonic() - st.last_event_at, 3)
        return CheckResult(
            st.logged_in and st.synced,
            {
                "logged_in": st.logged_in,
                "synced": st.synced,
                "reconnects": st.reconnects,
                "last_event_age_s": age,
                "last_pong_rtt_s": st.last_pong_rtt,
                "last_error": st.last_error,
            },
        )

    async def agi_check() -> CheckResult:
        return CheckResult(agi.listening, {"port": agi.port, "active": agi.stats.active})

    readiness.add("ami", ami_check)
    readiness.add("database", database_check(database))
    readiness.add("fastagi", agi_check)
    if ownership is not None:
        readiness.add("pbx_ownership", _ownership_check(ownership))
    return readiness


def _ownership_check(ownership: PbxOwnership) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness detail: this node's role, its epoch and how many terms it won and lost."""

    async def check() -> CheckResult:
        owner = ownership.may_act()
        return CheckResult(
            True,
            {
                "node": ownership.node,
                "pbx": ownership.pbx,
                "role": "owner" if owner else "standby",
                "epoch": ownership.epoch,
                "terms_won": ownership.terms_won,
                "terms_lost": ownership.terms_lost,
            },
        )

    return check


def database_check(database: DatabaseAvailability) -> Callable[[], Awaitable[CheckResult]]:
    """Readiness: while the database is away, why and since when (503 until it answers)."""

    async def check() -> CheckResult:
        ok, detail = await database.check()
        return CheckResult(ok, detail)

    return check


def freeze_startup_heap() -> int:
    """Move everything alive after start-up out of the collector's reach; return how many.

    Imports and wiring leave ~170k long-lived objects that a full collection walks each time:
    100+ ms with the loop stopped, which is an IVR step's (and AMI's) latency tail. Frozen
    objects are still freed by reference counting; only cycles among them would stay.
    """
    frozen = gc_policy.freeze_startup_heap()
    log.info("gc_startup_heap_frozen", objects=frozen)
    return frozen


def apply_gc_policy(
    metrics: Metrics, young: int = gc_policy.YOUNG_THRESHOLD
) -> gc_policy.GcPauseObserver:
    """ADR 0022: freeze the start-up heap, widen the young generation, time every pause."""
    freeze_startup_heap()
    gc_policy.apply_serving_thresholds(young)
    observer = gc_policy.GcPauseObserver(metrics.gc.observe)
    observer.install()
    log.info("gc_policy_applied", threshold=list(gc.get_threshold()))
    return observer


async def _loop_lag_probe() -> None:
    """Warn when the event loop wakes late: a starved loop lets Asterisk drop the AMI reader."""
    start = time.perf_counter()
    await asyncio.sleep(0.05)
    lag_ms = (time.perf_counter() - start - 0.05) * 1000
    if lag_ms > LOOP_LAG_WARN_MS:
        log.warning("event_loop_lag", lag_ms=round(lag_ms, 1))
