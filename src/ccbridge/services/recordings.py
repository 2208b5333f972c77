"""Recording control and the index: MixMonitor on answer, API control, finalisation, search.

A recording starts when an agent answers (if the tenant's policy records that skill group)
or on request; its file is ``<root>/<tenant>/<yyyy>/<mm>/<dd>/<call-id>.wav`` (generated from
validated ids only). When the recorded channel hangs up or the recording is stopped, the file
is measured and hashed in a thread and the row gets the four call variables as the call
record has them at that moment.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from ccbridge.domain.access import Principal, Role
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.journal.derive import (
    four_variables,
    recording_missing_event,
    recording_ready_event,
)
from ccbridge.domain.journal.types import NewEvent
from ccbridge.domain.recordings.model import (
    BadRecordingNameError,
    Recording,
    RecordingQuery,
    RecordingStatus,
    check_call_id,
    check_tenant,
    recording_path,
)
from ccbridge.domain.recordings.pbx_names import pbx_recording_path
from ccbridge.domain.recordings.signing import DownloadGrant, LinkSigner
from ccbridge.domain.recordings.wav import SAMPLE_RATE
from ccbridge.domain.time import Clock
from ccbridge.errors import ConflictError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.recording_ports import (
    RecorderControl,
    RecordingFiles,
    RecordingGoneError,
    RecordingNotFoundError,
    RecordingStore,
)

log = structlog.get_logger(__name__)

SYSTEM = Principal(actor="system:recorder", role=Role.PLATFORM_ADMIN, tenant_id=None)
FINALISE_TRIES = 5
FINALISE_DELAY = 0.2
"""Asterisk closes the file in its own thread just after the hangup; look a few times."""

HUNG_UP_REMEMBERED = 4096
LINKS_REMEMBERED = 1000
"""Past this many remembered links, expired ones are forgotten on the next first use."""

CallLookup = Callable[[str], Awaitable[CallRecord | None]]
PbxFileProbe = Callable[[str], Awaitable[str | None]]
"""The file a MixMonitor already running on a channel writes (``MIXMONITOR_FILENAME``), or
``None`` when nothing records it: asked after a resync, before recording a call late."""


@dataclass(frozen=True, slots=True)
class SignedLink:
    """A short-lived download link (no auth header needed)."""

    path: str
    expires: int


class RecordingService:
    """Start/stop/mute recordings, finalise them into the index, search and sign downloads."""

    def __init__(
        self,
        store: RecordingStore,
        files: RecordingFiles,
        control: RecorderControl,
        calls: CallLookup,
        audit: AuditRecorder,
        clock: Clock,
        signer: LinkSigner,
        *,
        finalise_delay: float = FINALISE_DELAY,
        pbx_file: PbxFileProbe | None = None,
        pbx: str | None = None,
    ) -> None:
        """*pbx_file* asks the PBX what a channel already records (ADR 0025); without it a
        call answered during an AMI gap is taken to be unrecorded. *pbx*: only the
        recordings of the tenants placed on it are finalised here (ADR 0033)."""
        self._pbx = pbx
        self._pbx_file = pbx_file
        self._store = store
        self._files = files
        self._control = control
        self._calls = calls
        self._audit = audit
        self._clock = clock
        self._signer = signer
        self._delay = finalise_delay
        self._active: dict[str, str] = {}
        """Recorded channel → recording id (a hangup of that channel finalises it)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._answered: dict[str, str] = {}
        """Answered call → its caller channel (what API control records)."""
        self._answered_on: dict[str, set[str]] = {}
        """Channel → the answered calls noted on it: a hang-up finds them without a scan (it
        runs for every Hangup on the AMI event path)."""
        self._links_used: dict[str, int] = {}
        self._hung_up: dict[str, None] = {}
        """The channels that hung up last (oldest first, at most ``HUNG_UP_REMEMBERED``): a
        PBX recording indexed after its channel's ``Hangup`` is finalised at once."""
        """Signature of each signed link already audited → its expiry (epoch s)."""

    # --- control -------------------------------------------------------------------------

    async def on_agent_connect(self, call_id: str, channel: str) -> Recording | None:
        """An agent answered: record when the tenant's policy says so."""
        self._answered[call_id] = channel
        self._answered_on.setdefault(channel, set()).add(call_id)
        call = await self._calls(call_id)
        if call is None or call.tenant is None:
            return None
        policy = await self._store.policy(call.tenant)
        if not policy.records(call.skill_group) or channel in self._active:
            return None
        return await self.start(SYSTEM, call.tenant, call_id, channel)

    async def on_pbx_recording(
        self, call_id: str, channel: str, written: str | None, tenant: str | None = None
    ) -> Recording | None:
        """The PBX started MixMonitor itself (app_queue, ``MixMonitorStart``; ADR 0025):
        index the file it writes, under the same rules, and start nothing over AMI.

        Only a generated name of this tenant's call is indexed (*written* is the channel's
        ``MIXMONITOR_FILENAME``); ccbridge's own MixMonitor, whose channel is already
        recorded here, and any other recording on the PBX are left alone. The answer that
        follows (``AgentConnect``) then finds the channel recorded and starts nothing.
        """
        if channel in self._active:
            return None
        call = await self._calls(call_id)
        tenant = (call.tenant if call else None) or tenant
        if tenant is None:
            return None
        if not written and self._pbx_file is not None:
            # channelvars without MIXMONITOR_FILENAME: ask the PBX which file it writes.
            try:
                written = await self._pbx_file(channel)
            except Exception as exc:
                log.warning("recording_probe_failed", call_id=call_id, error=repr(exc))
        if not written:
            return None
        path = pbx_recording_path(self._files.absolute_root(), written, tenant, call_id)
        if path is None:
            log.info("pbx_recording_not_ours", call_id=call_id)
            return None
        rec = await self._index_pbx_file(tenant, call_id, channel, path, call)
        if rec is not None:
            self._answered[call_id] = channel
            self._answered_on.setdefault(channel, set()).add(call_id)
        return rec

    async def _index_pbx_file(
        self, tenant: str, call_id: str, channel: str, path: str, call: CallRecord | None
    ) -> Recording | None:
        """Add the row of a file the PBX records on *channel* (once per path); audited."""
        for row in await self._store.of_call(call_id, tenant):
            if row.path == path:
                if row.status is not RecordingStatus.RECORDING:
                    return None
                self._active[channel] = row.id
                rec = row
                break
        else:
            rec = await self._add_row(tenant, call_id, path, channel, call)
            detail = {"call_id": call_id, "by": "pbx"}
            await self._audit.record(SYSTEM, tenant, "recording.start", "recording", rec.id, detail)
            log.info("recording_started_by_pbx", call_id=call_id, path=path)
        if channel in self._hung_up:
            self.on_channel_gone(channel)  # its Hangup came first: the file is closed
        return rec

    async def _add_row(
        self, tenant: str, call_id: str, path: str, channel: str, call: CallRecord | None
    ) -> Recording:
        """Index a recording starting now on *channel* with the call's variables so far, and
        bind the channel to it (its hang-up finalises it)."""
        now = self._clock.now()
        rec = Recording(
            id=secrets.token_hex(16),
            tenant=tenant,
            call_id=call_id,
            path=path,
            started_at=now,
            channel=channel,
            agent_no=call.agent_no if call else None,
            skill_group=call.skill_group if call else None,
            caller=call.caller if call else None,
            callee=call.callee if call else None,
        )
        rec = await self._store.add(rec, now)
        self._active[channel] = rec.id
        return rec

    async def start(self, who: Principal, tenant: str, call_id: str, channel: str) -> Recording:
        """Start MixMonitor on *channel* into a generated path; audited."""
        try:
            check_tenant(tenant)
            check_call_id(call_id)
        except BadRecordingNameError as exc:
            raise ConflictError(str(exc), field="call_id") from None
        if any(ch in channel for ch in "\r\n\x00"):
            raise ConflictError("bad channel name", field="channel")
        if channel in self._active:
            raise ConflictError("this call is already being recorded")
        now = self._clock.now()
        take = len(await self._store.of_call(call_id)) + 1
        path = recording_path(tenant, call_id, now, take)
        while await self._files.inspect(path) is not None:
            # A file of that name exists (a MixMonitor the PBX started writes it from its
            # first moment): never truncate it, take the next name.
            take += 1
            path = recording_path(tenant, call_id, now, take)
        rec = await self._add_row(tenant, call_id, path, channel, await self._calls(call_id))
        try:
            await self._control.start(channel, self._files.absolute(rec.path))
        except Exception as exc:
            self._active.pop(channel, None)
            await self._store.save(replace(rec, status=RecordingStatus.MISSING, ended_at=now), now)
            log.warning("recording_start_failed", call_id=call_id, error=str(exc))
            raise
        await self._audit.record(
            who, tenant, "recording.start", "recording", rec.id, {"call_id": call_id}
        )
        return rec

    async def control(self, who: Principal, tenant: str, call_id: str, action: str) -> Recording:
        """API control of a call in progress: start, stop, pause or resume its recording.

        An agent may only control a call it is connected to; another tenant's call is 404.
        """
        call = await self._calls(call_id)
        if call is None or call.tenant != tenant or call_id not in self._answered:
            raise RecordingNotFoundError(f"call {call_id} is not in progress")
        own = who.agent_no is not None and who.agent_no == call.agent_no
        if who.role is Role.AGENT and not own:
            raise RecordingNotFoundError(f"call {call_id} is not in progress")
        if action == "start":
            return await self.start(who, tenant, call_id, self._answered[call_id])
        if action == "stop":
            return await self.stop(who, tenant, call_id)
        return await self.mute(who, tenant, call_id, action == "pause")

    async def _current(self, tenant: str, call_id: str) -> Recording:
        for rec in reversed(await self._store.of_call(call_id, tenant)):
            if rec.status is RecordingStatus.RECORDING and rec.channel in self._active:
                return rec
        raise RecordingNotFoundError(f"call {call_id} is not being recorded")

    async def stop(self, who: Principal, tenant: str, call_id: str) -> Recording:
        """Stop the call's recording and finalise it; audited."""
        rec = await self._current(tenant, call_id)
        assert rec.channel is not None
        await self._control.stop(rec.channel)
        await self._audit.record(
            who, tenant, "recording.stop", "recording", rec.id, {"call_id": call_id}
        )
        return await self.finalise(rec.id)

    async def mute(self, who: Principal, tenant: str, call_id: str, muted: bool) -> Recording:
        """Pause (write silence, e.g. for card data) or resume the call's recording; audited."""
        rec = await self._current(tenant, call_id)
        assert rec.channel is not None
        await self._control.mute(rec.channel, muted)
        rec = replace(rec, muted=muted)
        await self._store.save(rec, self._clock.now())
        action = "recording.pause" if muted else "recording.resume"
        await self._audit.record(who, tenant, action, "recording", rec.id, {"call_id": call_id})
        return rec

    def on_hangup(self, channel: str) -> None:
        """A channel hung up (``Hangup``): remembered for a while, then as ``on_channel_gone``."""
        self._hung_up[channel] = None
        if len(self._hung_up) > HUNG_UP_REMEMBERED:
            del self._hung_up[next(iter(self._hung_up))]
        self.on_channel_gone(channel)

    def on_channel_gone(self, channel: str) -> None:
        """The recorded channel hung up (or MixMonitor stopped): finalise in the background."""
        for call_id in self._answered_on.pop(channel, ()):
            if self._answered.get(call_id) == channel:
                del self._answered[call_id]
        # Forget the channel now: if finalising fails (the database is away), the periodic
        # ``finalise_stale`` job must see the row as no longer recording and finish it.
        rec_id = self._active.pop(channel, None)
        if rec_id is None:
            return
        task = asyncio.get_running_loop().create_task(self._finalise_logged(rec_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finalise_logged(self, recording_id: str) -> None:
        """Finalise after a hang-up; a failure is logged and left to ``finalise_stale``."""
        try:
            await self.finalise(recording_id)
        except Exception as exc:
            log.warning("recording_finalise_deferred", id=recording_id, error=repr(exc))

    async def idle(self) -> None:
        """Wait for background finalisations (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def finalise(self, recording_id: str) -> Recording:
        """Measure and hash the file (in a thread), copy the call's variables, mark the row."""
        rec = await self._store.get(recording_id)
        if rec is None:
            raise RecordingNotFoundError(f"recording {recording_id} not found")
        if rec.channel is not None and self._active.get(rec.channel) == rec.id:
            # Only this recording's binding: the channel may already record the next take.
            del self._active[rec.channel]
        if rec.status is not RecordingStatus.RECORDING:
            return rec
        facts = None
        for attempt in range(FINALISE_TRIES):
            facts = await self._files.inspect(rec.path)
            if facts is not None and facts.audio_bytes > 0:
                break
            await asyncio.sleep(self._delay * (attempt + 1))
        call = await self._calls(rec.call_id)
        now = self._clock.now()
        if facts is None:
            status = RecordingStatus.MISSING
        elif facts.audio_bytes == 0:
            status = RecordingStatus.EMPTY
        else:
            status = RecordingStatus.OK
        rec = replace(
            rec,
            status=status,
            ended_at=now,
            size_bytes=facts.size_bytes if facts else None,
            sha256=facts.sha256 if facts else None,
            duration_ms=facts.audio_bytes * 1000 // (2 * SAMPLE_RATE) if facts else None,
            agent_no=(call.agent_no if call else None) or rec.agent_no,
            skill_group=(call.skill_group if call else None) or rec.skill_group,
            caller=(call.caller if call else None) or rec.caller,
            callee=(call.callee if call else None) or rec.callee,
        )
        events = [self._ready_event(rec, now)] if status is RecordingStatus.OK else []
        await self._store.save(rec, now, events)
        log.info("recording_finalised", id=rec.id, call_id=rec.call_id, status=status.value)
        return rec

    @staticmethod
    def _ready_event(rec: Recording, now: datetime) -> NewEvent:
        """``recording.ready`` with the four variables the row was finalised with."""
        params = four_variables(
            agent_no=rec.agent_no, skill_group=rec.skill_group, caller=rec.caller, callee=rec.callee
        )
        return recording_ready_event(
            tenant=rec.tenant,
            call_id=rec.call_id,
            recording_id=rec.id,
            params=params,
            url=f"/api/v1/recordings/{rec.id}",
            duration_s=None if rec.duration_ms is None else rec.duration_ms / 1000,
            at=now,
        )

    async def finalise_stale(self) -> int:
        """Periodic: finalise rows left ``recording`` whose channel is no longer known (restart)."""
        done = 0
        for rec in await self._store.unfinished(pbx=self._pbx):
            if rec.channel in self._active:
                continue
            call = await self._calls(rec.call_id)
            if call is not None and not call.state.is_final:
                continue  # still talking: the hangup will finalise it
            await self.finalise(rec.id)
            done += 1
        return done

    async def register_gap_recording(self, call: CallRecord) -> Recording | None:
        """Index the recording of a call answered while AMI was away (found by a backfill).

        Nobody saw the ``AgentConnect``, so no row exists. The file, if the PBX wrote one
        (app_queue's MixMonitor into the name FastAGI set, ADR 0025), is at the call's
        generated name: the answer's or the start's UTC date, first take. Found, it is
        indexed and finalised like any other (``recording.ready``), once (backfills
        overlap); not found while the tenant's policy records the call and nothing of it is
        indexed, a ``missing`` row and ``recording.missing`` flag the loss. A row of it still
        ``recording`` on a channel nobody watches is finalised.
        """
        tenant, answered = call.tenant, call.answered_at
        if tenant is None or answered is None or not call.state.is_final:
            return None  # still up: the resync records it or indexes the PBX's recording
        rows = await self._store.of_call(call.call_id, tenant)
        for row in rows:
            # Indexed before the gap (by ccbridge, or the PBX's MixMonitorStart) and hung up
            # in it, or before a restart: the file is closed, so finalise it now.
            if row.status is RecordingStatus.RECORDING and row.channel not in self._active:
                await self.finalise(row.id)
        found = await self._pbx_file_of(call, tenant, {row.path for row in rows})
        if found is not None:
            path, already = found
            if already:
                return None
            row = self._gap_row(call, tenant, answered, path)
            await self._store.add(row, self._clock.now())
            log.info("recording_found_after_gap", call_id=call.call_id, path=path)
            return await self.finalise(row.id)
        if rows:
            return None  # something of it is indexed (a later take, a failed late start)
        now = self._clock.now()
        row = self._gap_row(call, tenant, answered, recording_path(tenant, call.call_id, answered))
        if not (await self._store.policy(tenant)).records(call.skill_group):
            return None
        row = replace(row, status=RecordingStatus.MISSING, ended_at=call.ended_at or now)
        row = await self._store.add(row, now)
        params = four_variables(
            agent_no=row.agent_no, skill_group=row.skill_group, caller=row.caller, callee=row.callee
        )
        flag = recording_missing_event(
            tenant=tenant, call_id=call.call_id, recording_id=row.id, params=params, at=now
        )
        await self._store.save(row, now, [flag])
        log.warning("recording_missing_after_gap", call_id=call.call_id, tenant=tenant)
        return row

    async def _pbx_file_of(
        self, call: CallRecord, tenant: str, indexed: set[str]
    ) -> tuple[str, bool] | None:
        """The PBX's first file of *call* under its generated name (the start's or the
        answer's UTC date) and whether it is indexed already; ``None`` when there is none."""
        days = (call.started_at, call.answered_at or call.started_at)
        try:
            candidates = dict.fromkeys(recording_path(tenant, call.call_id, day) for day in days)
        except BadRecordingNameError:
            return None
        for path in candidates:
            if path in indexed:
                return path, True
        for path in candidates:
            if await self._files.inspect(path) is not None:
                return path, False
        return None

    @staticmethod
    def _gap_row(call: CallRecord, tenant: str, answered: datetime, path: str) -> Recording:
        """A row for a recording nobody saw start, with the call's variables."""
        return Recording(
            id=secrets.token_hex(16),
            tenant=tenant,
            call_id=call.call_id,
            path=path,
            started_at=answered,
            agent_no=call.agent_no,
            skill_group=call.skill_group,
            caller=call.caller,
            callee=call.callee,
        )

    def forget_channels_gone(self, up: Collection[str]) -> int:
        """After a resync: a recorded channel no longer *up* hung up while AMI was away (its
        ``Hangup`` never came), so its recording is finalised now. Returns how many."""
        gone = [channel for channel in self._active if channel not in up]
        for channel in gone:
            self.on_channel_gone(channel)
        return len(gone)

    async def record_calls_answered_in_gap(self, live: Iterable[tuple[CallRecord, str]]) -> int:
        """After a resync: record the live calls answered while AMI was away (no
        ``AgentConnect`` reached ccbridge), from now on, on their caller's *channel*, when the
        policy records them and nothing records them yet. Returns how many were started."""
        started = 0
        for call, channel in live:
            tenant = call.tenant
            if (
                tenant is None
                or call.answered_at is None
                or call.learned_at is None
                or call.state.is_final
                or channel in self._active
                or await self._store.of_call(call.call_id, tenant)
            ):
                continue
            self._answered[call.call_id] = channel
            self._answered_on.setdefault(channel, set()).add(call.call_id)
            if await self._recorded_by_pbx(call, tenant, channel):
                continue
            if not (await self._store.policy(tenant)).records(call.skill_group):
                continue
            try:
                await self.start(SYSTEM, tenant, call.call_id, channel)
            except Exception as exc:  # one call's failure must not stop the others
                log.warning("recording_late_start_failed", call_id=call.call_id, error=repr(exc))
                continue
            log.info("recording_started_after_gap", call_id=call.call_id)
            started += 1
        return started

    async def _recorded_by_pbx(self, call: CallRecord, tenant: str, channel: str) -> bool:
        """Say whether the PBX already records *channel* (app_queue started MixMonitor while
        AMI was away); if so, index that file instead of starting a second recording."""
        written = None
        if self._pbx_file is not None:
            try:
                written = await self._pbx_file(channel)
            except Exception as exc:  # then the file on disk tells
                log.warning("recording_probe_failed", call_id=call.call_id, error=repr(exc))
        if written:
            path = pbx_recording_path(self._files.absolute_root(), written, tenant, call.call_id)
        else:
            # MixMonitor creates its file when it starts: the generated name on disk means
            # app_queue is recording this call.
            found = await self._pbx_file_of(call, tenant, set())
            path = found[0] if found is not None else None
            if path is None:
                return False
        if path is not None:
            await self._index_pbx_file(tenant, call.call_id, channel, path, call)
            log.info("recording_by_pbx_after_gap", call_id=call.call_id)
        return True

    # --- index ---------------------------------------------------------------------------

    async def search(
        self, query: RecordingQuery, before: tuple[datetime, str] | None, limit: int
    ) -> list[Recording]:
        """Keyset search within the query's tenant."""
        return await self._store.search(query, before, limit)

    async def get(self, recording_id: str, tenant: str | None) -> Recording:
        """One recording; a purged one answers 410, another tenant's 404."""
        rec = await self._store.get(recording_id, tenant)
        if rec is None:
            raise RecordingNotFoundError(f"recording {recording_id} not found")
        if rec.status is RecordingStatus.PURGED:
            raise RecordingGoneError(f"recording {recording_id} was deleted ({rec.purge_reason})")
        return rec

    async def sign_download(
        self, who: Principal, recording_id: str, tenant: str | None, ttl_seconds: int
    ) -> SignedLink:
        """A link valid for *ttl_seconds*, bound to this tenant and recording; audited."""
        rec = await self.get(recording_id, tenant)
        if not rec.downloadable:
            raise ConflictError(f"recording {recording_id} is {rec.status.value}, not offered")
        expires = int(self._clock.now().timestamp()) + ttl_seconds
        sig = self._signer.sign(DownloadGrant(rec.tenant, rec.id, expires))
        await self._audit.record(
            who, rec.tenant, "recording.link", "recording", rec.id, {"expires": expires}
        )
        path = f"/api/v1/recordings/{rec.id}/file?tenant={rec.tenant}&expires={expires}&sig={sig}"
        return SignedLink(path=path, expires=expires)

    async def open_signed(
        self, recording_id: str, tenant: str, expires: int, sig: str, peer: str, range_: str | None
    ) -> tuple[Recording, str]:
        """Check a signed link and return the recording and its absolute path.

        Audited once per link: its first request that passes the signature. A player seeking
        sends dozens of ``Range`` requests on one link; they are one download, not dozens.
        Every new link is audited again (``recording.link`` when issued, this on first use).
        """
        now = self._clock.now()
        self._signer.verify(DownloadGrant(tenant, recording_id, expires), sig, now)
        rec = await self.get(recording_id, tenant)
        if not rec.downloadable:
            raise RecordingNotFoundError(f"recording {recording_id} is not offered")
        if sig not in self._links_used:
            self._forget_expired_links(now.timestamp())
            self._links_used[sig] = expires
            who = Principal(actor="link:signed", role=SYSTEM.role, tenant_id=tenant)
            detail = {"peer": peer, "range": range_, "link_expires": expires}
            try:
                await self._audit.record(
                    who, tenant, "recording.download", "recording", rec.id, detail
                )
            except Exception:
                self._links_used.pop(sig, None)  # not audited: the next request tries again
                raise
        return rec, self._files.absolute(rec.path)

    def _forget_expired_links(self, now: float) -> None:
        """Drop links past their expiry (they can no longer be used), bounding the memory."""
        if len(self._links_used) >= LINKS_REMEMBERED:
            for key in [k for k, exp in self._links_used.items() if exp <= now]:
                del self._links_used[key]

    async def hold(
        self,
        who: Principal,
        tenant: str,
        recording_id: str | None,
        call_id: str | None,
        held: bool,
        reason: str,
    ) -> int:
        """Put or lift a legal hold on one recording or on every recording of a call; audited."""
        now = self._clock.now()
        if recording_id is not None:
            await self.get(recording_id, tenant)
            changed = int(await self._store.set_held(recording_id, tenant, held, now))
            obj_type, obj_id = "recording", recording_id
        elif call_id is not None:
            changed = await self._store.hold_call(tenant, call_id, held, reason, who.actor, now)
            obj_type, obj_id = "call", call_id
        else:
            raise ConflictError("name a recording or a call", field="recording_id")
        action = "recording.hold" if held else "recording.release"
        await self._audit.record(who, tenant, action, obj_type, obj_id, {"reason": reason})
        return changed
