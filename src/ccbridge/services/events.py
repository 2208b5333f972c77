"""CRM events use cases: read the journal (poll, long-poll, stream), emit API-side events,
per-tenant switches (extras, sandbox), sample events, exports and retention."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from ccbridge.domain.access import AccessDeniedError, Principal
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.journal.derive import (
    call_params,
    four_variables,
    recording_ready_event,
    segment_params,
)
from ccbridge.domain.journal.types import EncodedEvent, EventType, NewEvent, StoredEvent
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.event_codec import encode_json, sse_frame
from ccbridge.services.event_hub import EventHub
from ccbridge.services.event_ports import (
    CallParamsStore,
    EventSettings,
    EventSettingsStore,
    JournalStore,
)

RETENTION = timedelta(days=30)
KNOWN_EXTRAS = frozenset({"ivr", "crm", "queue_wait", "recording"})
"""Extra families a tenant can switch on (CPI-02): ``ivr`` = IVR choices and other
``CCB_X_*`` channel variables, ``crm`` = CRM fields, ``queue_wait`` = seconds in queue,
``recording`` = recording id."""
SETTINGS_TTL = 5.0
FRAME_CACHE = 20_000
CHUNK_CACHE = 1_000
"""Recent SSE chunks by (tenant, cursor): a few wake-ups' worth for every tenant."""


def filter_extras(data: dict[str, Any], enabled: frozenset[str]) -> dict[str, Any]:
    """Drop extras the tenant did not switch on (the journal keeps them all)."""
    extras = data.get("extras")
    if not isinstance(extras, dict) or not extras:
        return data
    keep: dict[str, Any] = {}
    for name, value in extras.items():
        family = "queue_wait" if name == "queue_wait_s" else name.split("_", 1)[0]
        if family == "recording" and name == "recording_id":
            family = "recording"
        if family in enabled or ("ivr" in enabled and family not in KNOWN_EXTRAS):
            keep[name] = value
    return {**data, "extras": keep}


class EventService:
    """One journal behind poll, long-poll, SSE and webhooks."""

    def __init__(
        self,
        journal: JournalStore,
        hub: EventHub,
        settings: EventSettingsStore,
        calls: CallParamsStore,
        audit: AuditRecorder | None,
        now: Callable[[], datetime],
    ) -> None:
        self._journal = journal
        self._hub = hub
        self._settings = settings
        self._calls = calls
        self._audit = audit
        self._now = now
        self._cache: dict[str, tuple[float, EventSettings]] = {}
        self._filtered: OrderedDict[tuple[str, int], EncodedEvent] = OrderedDict()
        self._chunks: OrderedDict[tuple[str, int], tuple[bytes, int, int]] = OrderedDict()

    # --- settings ------------------------------------------------------------------------

    async def settings(self, tenant: str) -> EventSettings:
        """The tenant's switches (cached a few seconds; writes invalidate)."""
        hit = self._cache.get(tenant)
        if hit is not None and time.monotonic() - hit[0] < SETTINGS_TTL:
            return hit[1]
        raw = await self._settings.get(tenant)
        value = (
            EventSettings()
            if raw is None
            else EventSettings(frozenset(raw[0]), raw[1], tuple(raw[2]))
        )
        self._cache[tenant] = (time.monotonic(), value)
        return value

    async def allow_list(self, tenant: str) -> Sequence[str]:
        """The tenant's egress allow-list (``services.egress.AllowListSource``; cached)."""
        return (await self.settings(tenant)).allow_private

    async def update_settings(
        self, who: Principal, tenant: str, new: EventSettings
    ) -> EventSettings:
        """Switch extras and sandbox; the egress allow-list only by a platform admin; audited.

        ``allow_private`` is the tenant's egress allow-list (webhooks, exports, CRM lookups):
        opening a private network is the platform's decision, never the tenant's, so a
        tenant admin may send it back unchanged but not change it.
        """
        unknown = new.extras - KNOWN_EXTRAS
        if unknown:
            raise ConflictError(f"unknown extras {sorted(unknown)}", field="extras")
        current = await self.settings(tenant)
        if not who.is_platform and sorted(new.allow_private) != sorted(current.allow_private):
            raise AccessDeniedError("only a platform admin may change allow_private")
        await self._settings.put(tenant, sorted(new.extras), new.sandbox, list(new.allow_private))
        self._cache.pop(tenant, None)
        self._filtered.clear()
        self._chunks.clear()
        if self._audit is not None:
            await self._audit.record(
                who,
                tenant,
                "events.settings",
                "event_settings",
                tenant,
                {
                    "extras": sorted(new.extras),
                    "sandbox": new.sandbox,
                    "allow_private": list(new.allow_private),
                },
            )
        return new

    async def present(self, events: Sequence[StoredEvent]) -> list[dict[str, Any]]:
        """Envelopes as a tenant may see them (extras filtered by its switches)."""
        out: list[dict[str, Any]] = []
        for event in events:
            env = event.envelope()
            enabled = (await self.settings(event.tenant)).extras
            env["data"] = filter_extras(env["data"], enabled)
            out.append(env)
        return out

    async def visible(self, tenant: str, event: EncodedEvent) -> EncodedEvent:
        """*event* as the tenant may see it: the stored bytes as they are, unless extras must
        be filtered (then decoded, filtered and re-encoded once, and kept a while)."""
        if not event.has_extras:
            return event
        key = (tenant, event.seq)
        hit = self._filtered.get(key)
        if hit is None:
            env = orjson.loads(event.envelope)
            env["data"] = filter_extras(env["data"], (await self.settings(tenant)).extras)
            hit = self._filtered[key] = EncodedEvent(event.seq, event.type, encode_json(env), False)
            if len(self._filtered) > FRAME_CACHE:
                self._filtered.popitem(last=False)
        return hit

    async def _visible_page(self, tenant: str, page: list[EncodedEvent]) -> list[EncodedEvent]:
        """:meth:`visible` for a page; the page itself when no event carries extras (the
        common case: no await per event)."""
        if not any(e.has_extras for e in page):
            return page
        return [await self.visible(tenant, e) for e in page]

    # --- reading ------------------------------------------------------------------------

    async def read(
        self,
        tenant: str,
        after: int,
        limit: int,
        *,
        types: Sequence[str] | None = None,
    ) -> list[EncodedEvent]:
        """One page after *after*, as stored envelope bytes: from the hub when it covers the
        cursor, else from the database (keyset)."""
        if not types:
            buffered = self._hub.read_encoded(tenant, after, limit)
            if buffered is not None:
                return buffered
        return await self._journal.list_encoded(tenant, after, limit, types=types)

    async def poll(
        self,
        tenant: str,
        after: int,
        limit: int,
        *,
        wait: float = 0.0,
        types: Sequence[str] | None = None,
    ) -> list[EncodedEvent]:
        """A page of visible envelopes; with *wait*, hold until an event arrives (long-poll)."""
        deadline = time.monotonic() + wait
        while True:
            page = await self.read(tenant, after, limit, types=types)
            left = deadline - time.monotonic()
            waiting = not page and left > 0 and not self._hub.closed
            if waiting and not await self._hub.wait(tenant, after, left):
                # Timed out: one last look (another process may have written).
                page = await self.read(tenant, after, limit, types=types)
                left = 0
            if page or left <= 0 or self._hub.closed:
                return await self._visible_page(tenant, page)

    async def stream(
        self,
        tenant: str,
        after: int,
        *,
        ping_every: float = 15.0,
        batch: int = 500,
    ) -> AsyncIterator[bytes | None]:
        """Yield SSE frames after *after* until the hub closes, every frame available at once
        joined into one chunk (one write per wake-up, however many events); ``None`` is a
        keep-alive tick.

        A reader that falls behind holds no queue: it reads on by cursor (the hub's memory,
        then the database), so a slow consumer costs only its own socket buffer.
        """
        cursor = after
        while True:
            chunk, end, count = await self._chunk(tenant, cursor, batch)
            if count:
                cursor = end
                yield chunk
            if self._hub.closed:
                return  # shutdown: the client resumes elsewhere with Last-Event-ID
            if count >= batch:
                continue
            if not await self._hub.wait(tenant, cursor, ping_every):
                yield None

    async def _chunk(self, tenant: str, cursor: int, batch: int) -> tuple[bytes, int, int]:
        """``(frames, last cursor, count)`` after *cursor*: built once per tenant and wake-up,
        then shared by every stream at that cursor (encode once, not once per subscriber)."""
        tail = self._hub.last_seq(tenant)
        hit = self._chunks.get((tenant, cursor))
        if hit is not None and hit[1] == tail:
            return hit
        page = await self.read(tenant, cursor, batch)
        if not page:
            return b"", cursor, 0
        frames = await self._visible_page(tenant, page)
        built = (
            b"".join(sse_frame(e.seq, e.type, e.envelope) for e in frames),
            page[-1].seq,
            len(page),
        )
        if len(page) < batch and page[-1].seq == tail:  # exactly "all that is new": shareable
            self._chunks[(tenant, cursor)] = built
            if len(self._chunks) > CHUNK_CACHE:
                self._chunks.popitem(last=False)
        return built

    # --- writing ------------------------------------------------------------------------

    async def emit(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append API-side events (wrap-up, recording, samples) in their own transaction."""
        return await self._journal.write(events)

    async def recording_ready(
        self,
        *,
        tenant: str,
        call_id: str,
        recording_id: str,
        url: str | None,
        duration_s: float | None,
        at: datetime | None = None,
    ) -> StoredEvent | None:
        """The hook the recordings module calls when a recording is stored (idempotent)."""
        record = await self._calls.get_with_params(call_id, tenant)
        params = (
            call_params(record)
            if record
            else four_variables(agent_no=None, skill_group=None, caller=None, callee=None)
        )
        event = recording_ready_event(
            tenant=tenant,
            call_id=call_id,
            recording_id=recording_id,
            params=params,
            url=url,
            duration_s=duration_s,
            at=at or self._now(),
        )
        stored = await self.emit([event])
        return stored[0] if stored else None

    async def submit_wrapup(
        self,
        who: Principal,
        tenant: str,
        call_id: str,
        *,
        agent_no: str,
        disposition: str,
        notes: str,
        fields: dict[str, str],
        submission_id: str,
    ) -> StoredEvent | None:
        """CPI-08: the agent's disposition after a call, posted into the journal; audited."""
        record = await self._calls.get_with_params(call_id, tenant)
        if record is None:
            raise NotFoundError(f"call {call_id} not found")
        leg = next((s for s in reversed(record.segments) if s.agent_no == agent_no), None)
        if leg is None:
            raise ConflictError(f"agent {agent_no} did not handle call {call_id}", field="agent_no")
        stored = await self.emit(
            [
                NewEvent(
                    tenant=tenant,
                    type=EventType.WRAPUP_SUBMITTED,
                    occurred_at=self._now(),
                    key=f"wrapup:{call_id}:{submission_id}",
                    call_id=call_id,
                    data={
                        "call_id": call_id,
                        "params": segment_params(leg),
                        "disposition": disposition,
                        "notes": notes,
                        "fields": fields,
                        "submitted_by": who.actor,
                        "extras": {},
                    },
                )
            ]
        )
        if self._audit is not None:
            await self._audit.record(
                who, tenant, "wrapup.submit", "call", call_id, {"disposition": disposition}
            )
        return stored[0] if stored else None

    async def emit_samples(self, who: Principal, tenant: str) -> list[StoredEvent]:
        """CPI-03 sandbox: one sample of every call event, marked ``sandbox: true``."""
        if not (await self.settings(tenant)).sandbox:
            raise ConflictError("sample events need the tenant's sandbox mode on", field="sandbox")
        now = self._now()
        stamp = now.strftime("%Y%m%d%H%M%S%f")
        call_id = f"sandbox-{stamp}"
        params = four_variables(
            agent_no="1001", skill_group="sales", caller="13800138000", callee="4008001234"
        )
        leg = {"leg": 1, "via": "queue", **params}
        steps: list[tuple[EventType, dict[str, Any]]] = [
            (EventType.CALL_QUEUED, {"state": "queued", "params": {**params, "agent_no": None}}),
            (EventType.CALL_RINGING, {"state": "agent_ringing", "params": params}),
            (EventType.CALL_ANSWERED, {"state": "connected", "params": params, "leg": 1}),
            (
                EventType.CALL_ENDED,
                {
                    "state": "ended",
                    "params": params,
                    "end_reason": "Normal Clearing",
                    "legs": [leg],
                    "answered": True,
                },
            ),
        ]
        events = [
            NewEvent(
                tenant=tenant,
                type=kind,
                occurred_at=now + timedelta(milliseconds=i),
                key=f"sandbox:{stamp}:{i}",
                call_id=call_id,
                data={"call_id": call_id, **fields, "sandbox": True, "extras": {}},
            )
            for i, (kind, fields) in enumerate(steps)
        ]
        stored = await self.emit(events)
        if self._audit is not None:
            await self._audit.record(who, tenant, "events.test", "call", call_id)
        return stored

    # --- calls ----------------------------------------------------------------------------

    async def call(self, tenant: str | None, call_id: str) -> CallRecord:
        """One call with its per-leg detail, or ``NotFoundError``."""
        record = await self._calls.get_with_params(call_id, tenant)
        if record is None or record.merged_into is not None:
            raise NotFoundError(f"call {call_id} not found")
        return record

    async def export_calls(
        self, tenant: str, start: datetime, end: datetime, *, page: int = 500
    ) -> AsyncIterator[CallRecord]:
        """Every call of *tenant* started in ``[start, end)``, oldest first (streamed)."""
        after: tuple[datetime, str] | None = None
        while True:
            rows = await self._calls.list_with_params(
                tenant=tenant, start=start, end=end, after=after, limit=page
            )
            for rec in rows:
                if rec.merged_into is None:
                    yield rec
            if len(rows) < page:
                return
            after = (rows[-1].started_at, rows[-1].call_id)
            await asyncio.sleep(0)

    async def call_events(self, tenant: str, call_id: str) -> list[StoredEvent]:
        """Every journal event of one call in order (replay, debugging)."""
        out: list[StoredEvent] = []
        after = 0
        while True:
            page = await self._journal.list_after(tenant, after, 500, call_id=call_id)
            out.extend(page)
            if len(page) < 500:
                return out
            after = page[-1].seq

    async def prune(self) -> int:
        """Retention job: drop events older than 30 days."""
        return await self._journal.delete_before(self._now() - RETENTION)
