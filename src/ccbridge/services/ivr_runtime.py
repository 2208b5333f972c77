"""What the FastAGI runner needs at call time: the active revisions (cached with a version
stamp, so a call never waits on the database) and a buffered call log written by a job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from ccbridge.domain.calendar import DEFAULT_TIMEZONE
from ccbridge.domain.dialing import NO_OUTBOUND
from ccbridge.services.ivr_ports import (
    ActiveFlow,
    FlowCodec,
    IvrCallRecord,
    IvrFlowRepo,
    PromptRepo,
    TenantFacts,
    TenantFactsSource,
)

log = structlog.get_logger(__name__)

STAMP_CHECK_SECONDS = 1.0
TENANT_FACTS_SECONDS = 5.0
MAX_BUFFERED_LOGS = 10_000


class ActiveFlowCache:
    """Active revisions by tenant; reloaded only when the DB's activation stamp changes."""

    def __init__(
        self,
        flows: IvrFlowRepo,
        prompts: PromptRepo,
        codec: FlowCodec,
        *,
        prompts_root: str,
        check_every: float = STAMP_CHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flows = flows
        self._prompts = prompts
        self._codec = codec
        self._root = prompts_root.rstrip("/")
        self._check_every = check_every
        self._monotonic = monotonic
        self._checked_at = -float("inf")
        self._stamp: object = None
        self._by_tenant: dict[str, list[ActiveFlow]] = {}
        self._first_load = asyncio.Lock()
        self.reloads = 0
        self.refresh_failures = 0

    async def flow_for(
        self, tenant_id: str, did: str, flow_id: str | None = None
    ) -> ActiveFlow | None:
        """Return the flow listing ``did``, else the tenant's flow without DIDs, else None;
        with *flow_id* (the number is mapped to a flow), that flow's active revision."""
        await self._refresh()
        if flow_id is not None:
            flows = self._by_tenant.get(tenant_id, ())
            return next((a for a in flows if a.flow_id == flow_id), None)
        default: ActiveFlow | None = None
        for active in self._by_tenant.get(tenant_id, ()):
            if did and did in active.flow.dids:
                return active
            if not active.flow.dids and default is None:
                default = active
        return default

    async def _refresh(self) -> None:
        if not self.reloads:  # nothing loaded yet: calls wait for the first load, none skip the IVR
            async with self._first_load:
                if not self.reloads:
                    self._checked_at = self._monotonic()
                    await self._reload_if_changed()
            return
        now = self._monotonic()
        if now - self._checked_at < self._check_every:
            return
        self._checked_at = now
        try:
            await self._reload_if_changed()
        except Exception as exc:
            # The database is away: calls keep running the flows already loaded (FastAGI
            # answers from memory); the check is tried again after ``check_every``.
            self.refresh_failures += 1
            if self.refresh_failures == 1 or self.refresh_failures % 100 == 0:
                log.warning(
                    "ivr_flows_refresh_failed", error=repr(exc), failures=self.refresh_failures
                )

    async def _reload_if_changed(self) -> None:
        stamp = await self._flows.state_stamp()
        if stamp == self._stamp:
            return
        by_tenant: dict[str, list[ActiveFlow]] = {}
        files: dict[str, dict[str, str]] = {}
        for rev in await self._flows.active_revisions():
            parsed = self._codec.parse(rev.document)
            if parsed.flow is None or parsed.errors:
                log.error("ivr_revision_unusable", tenant=rev.tenant_id, flow=rev.flow_id)
                continue
            if rev.tenant_id not in files:
                files[rev.tenant_id] = {
                    p.prompt_id: f"{self._root}/{rev.tenant_id}/{p.file_name.rsplit('.', 1)[0]}"
                    for p in await self._prompts.list(rev.tenant_id)
                }
            by_tenant.setdefault(rev.tenant_id, []).append(
                ActiveFlow(
                    rev.tenant_id, rev.flow_id, rev.revision, parsed.flow, files[rev.tenant_id]
                )
            )
        self._by_tenant = by_tenant
        self._stamp = stamp
        self.reloads += 1


class CachedTenantFacts:
    """TenantFactsSource for calls: each tenant's facts are read at most every few seconds.

    A call starts without waiting on the database most of the time, and a changed dial policy
    or lease still reaches calls within ``ttl`` seconds. When the store cannot be read, the
    last facts stand; with none yet, the call may transfer nowhere (fail closed, SEC-01).
    """

    def __init__(
        self,
        source: TenantFactsSource,
        *,
        ttl: float = TENANT_FACTS_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._monotonic = monotonic
        self._cached: dict[str, tuple[float, TenantFacts]] = {}
        self._reading: dict[str, asyncio.Future[TenantFacts]] = {}

    async def facts(self, tenant_id: str, at: datetime) -> TenantFacts:
        """Return the tenant's facts, read again when older than ``ttl`` seconds.

        One read per tenant at a time: calls arriving while it runs wait for it. Without that,
        every call starting during a slow read started its own, which made reads slower still
        (measured: ~1 read per call at 200 concurrent IVR calls on SQLite).
        """
        now = self._monotonic()
        hit = self._cached.get(tenant_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        reading = self._reading.get(tenant_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(tenant_id, at, now, hit))
            self._reading[tenant_id] = reading
        return await asyncio.shield(reading)  # a caller hanging up must not cancel the others'

    async def _read(
        self, tenant_id: str, at: datetime, now: float, hit: tuple[float, TenantFacts] | None
    ) -> TenantFacts:
        """Read the store once; on failure keep the last facts, or fail closed."""
        try:
            fresh = await self._source.facts(tenant_id, at)
        except Exception:
            log.exception("ivr_tenant_facts_unreadable", tenant=tenant_id)
            if hit is not None:
                return hit[1]
            return TenantFacts(DEFAULT_TIMEZONE, frozenset(), NO_OUTBOUND)
        finally:
            del self._reading[tenant_id]
        self._cached[tenant_id] = (now, fresh)
        return fresh


class BufferedCallLog:
    """CallLogSink: keep records in memory; ``flush`` (a periodic job) writes them in one batch."""

    def __init__(self, write: Callable[[list[IvrCallRecord]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: list[IvrCallRecord] = []
        self.dropped = 0

    def record(self, entry: IvrCallRecord) -> None:
        """Queue one call's record (dropped and counted when the buffer is full)."""
        if len(self._pending) >= MAX_BUFFERED_LOGS:
            self.dropped += 1
            return
        self._pending.append(entry)

    async def flush(self) -> int:
        """Write what is queued; on failure or cancellation the records are kept for the next run.

        A job cancelled mid-write (shutdown) must not lose the batch it had taken.
        """
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            await self._write(batch)
        except BaseException:
            self._pending = batch + self._pending
            raise
        return len(batch)
