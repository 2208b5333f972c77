"""Push export of a tenant's recordings to its own FTP(S) server, resumable, with a manifest.

Per-file state lives in the database: a restarted export skips files already delivered,
asks the server how much of a half-sent file it has (``SIZE``) and resumes from there
(``REST``), so nothing is sent twice. The manifest (``sha256sum`` format) goes last.
"""

from __future__ import annotations

import posixpath
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from ccbridge.domain.egress import EgressError
from ccbridge.domain.recordings.export import (
    MANIFEST_NAME,
    ExportFile,
    ExportJob,
    ExportStatus,
    manifest_text,
)
from ccbridge.domain.recordings.model import RecordingQuery
from ccbridge.domain.recordings.policy import due_export_window
from ccbridge.domain.time import Clock
from ccbridge.errors import CcbridgeError, ConflictError, ErrorCode, NotFoundError
from ccbridge.services.egress import EgressPolicy
from ccbridge.services.recording_ports import (
    ExportStore,
    ExportTransport,
    RecordingFiles,
    RecordingStore,
)

log = structlog.get_logger(__name__)

PAGE = 1000
EXPORT_FAILED = "export_failed"
"""The stored reason for a failure that is not a connection's (e.g. a size mismatch)."""


class ExportFailedError(CcbridgeError):
    """An export run failed; ``reason`` is the tenant-safe word also stored on the job."""

    code = ErrorCode.CONFLICT
    status = 409
    title = "Export failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the export failed: {reason}")
        self.reason = reason


@dataclass(slots=True)
class LiveProgress:
    """Bytes moved by the running upload, between the per-file DB updates."""

    job_id: str
    bytes_in_flight: int = 0


class ExportService:
    """Create, run and report push exports."""

    def __init__(
        self,
        store: RecordingStore,
        exports: ExportStore,
        files: RecordingFiles,
        transport: ExportTransport,
        clock: Clock,
        new_id: Callable[[], str] = lambda: secrets.token_hex(16),
        *,
        egress: EgressPolicy | None = None,
    ) -> None:
        """Without *egress* no private network is allowed (tests pass one for 127.0.0.1)."""
        self._egress = egress
        self._store = store
        self._exports = exports
        self._files = files
        self._transport = transport
        self._clock = clock
        self._new_id = new_id
        self.live: dict[str, LiveProgress] = {}

    async def create(
        self, tenant: str, range_from: datetime, range_to: datetime, kind: str = "on_demand"
    ) -> ExportJob:
        """Freeze the list of downloadable recordings started in ``[from, to)`` into a job."""
        if range_to <= range_from:
            raise ConflictError("range_to must be after range_from", field="range_to")
        job_id = self._new_id()
        query = RecordingQuery(tenant=tenant, started_from=range_from, started_to=range_to)
        files: list[ExportFile] = []
        before = None
        while page := await self._store.search(query, before, PAGE):
            for rec in page:
                files.append(
                    ExportFile(
                        job_id=job_id,
                        recording_id=rec.id,
                        remote_path=rec.path.split("/", 1)[1],
                        size_bytes=rec.size_bytes or 0,
                        sha256=rec.sha256 or "",
                    )
                )
            before = (page[-1].started_at, page[-1].id)
            if len(page) < PAGE:
                break
        job = ExportJob(
            id=job_id,
            tenant=tenant,
            kind=kind,
            range_from=range_from,
            range_to=range_to,
            status=ExportStatus.PENDING,
            created_at=self._clock.now(),
            total_files=len(files),
            total_bytes=sum(f.size_bytes for f in files),
        )
        await self._exports.create(job, files)
        return job

    async def status(self, job_id: str, tenant: str | None = None) -> ExportJob:
        """The job as stored, with the bytes of the file in flight added."""
        job = await self._exports.get(job_id, tenant)
        if job is None:
            raise NotFoundError(f"export {job_id} not found")
        live = self.live.get(job_id)
        if live is None:
            return job
        return replace(job, sent_bytes=min(job.total_bytes, job.sent_bytes + live.bytes_in_flight))

    async def run(self, job_id: str) -> ExportJob:
        """Deliver every file not yet delivered, then the manifest and the report."""
        job = await self._exports.get(job_id)
        if job is None:
            raise NotFoundError(f"export {job_id} not found")
        if job.status is ExportStatus.DONE:
            return job
        policy = await self._store.policy(job.tenant)
        target = policy.export_target
        if target is None:
            await self._exports.update(
                job_id, status=ExportStatus.FAILED, error="the tenant has no export target"
            )
            raise ConflictError("the tenant has no export target configured")
        await self._exports.update(job_id, status=ExportStatus.RUNNING, attempts=job.attempts + 1)
        live = self.live[job_id] = LiveProgress(job_id)
        resumed: list[str] = []
        skipped: list[str] = []
        session = None
        try:
            allow = await self._egress.allow_list(job.tenant) if self._egress else ()
            session = await self._transport.connect(target, allow)
            files = await self._exports.files(job_id)
            for f in files:
                if f.sent:
                    continue
                remote = posixpath.join(target.directory, f.remote_path)
                local_rel = f"{job.tenant}/{f.remote_path}"
                facts = await self._files.inspect(local_rel)
                if facts is None:
                    skipped.append(f.remote_path)  # purged meanwhile: reported, not sent
                    continue
                have = await session.remote_size(remote)
                if have != f.size_bytes:
                    offset = have if have is not None and 0 < have < f.size_bytes else 0
                    if offset:
                        resumed.append(f.remote_path)
                    live.bytes_in_flight = offset

                    def moved(n: int) -> None:
                        live.bytes_in_flight += n

                    await session.upload(self._files.absolute(local_rel), remote, offset, moved)
                    if await session.remote_size(remote) != f.size_bytes:
                        raise OSError(f"{remote}: size mismatch after upload")
                live.bytes_in_flight = 0
                await self._exports.mark_sent(job_id, f.recording_id, self._clock.now())
            sent = [f for f in await self._exports.files(job_id) if f.sent]
            await session.put_text(
                posixpath.join(target.directory, MANIFEST_NAME), manifest_text(sent)
            )
            report = self._report(job, sent, resumed, skipped)
            await self._exports.update(
                job_id,
                status=ExportStatus.DONE,
                error=None,
                report=report,
                finished_at=self._clock.now(),
            )
            log.info("recording_export_done", job=job_id, files=len(sent))
        except Exception as exc:
            # The stored error is read by the tenant: one fixed word, never exception text
            # (which could map the platform's internal network); the detail goes to our log.
            reason = exc.failure if isinstance(exc, EgressError) else EXPORT_FAILED
            await self._exports.update(job_id, status=ExportStatus.FAILED, error=reason)
            log.warning("recording_export_failed", job=job_id, reason=reason, error=repr(exc))
            raise ExportFailedError(reason) from exc
        finally:
            self.live.pop(job_id, None)
            if session is not None:
                try:
                    await session.close()
                except Exception:  # the server may be gone; the outcome is already stored
                    log.debug("export_close_failed", job=job_id)
        return await self.status(job_id)

    def _report(
        self, job: ExportJob, sent: list[ExportFile], resumed: list[str], skipped: list[str]
    ) -> dict[str, Any]:
        return {
            "job": job.id,
            "tenant": job.tenant,
            "range": [job.range_from.isoformat(), job.range_to.isoformat()],
            "files": len(sent),
            "bytes": sum(f.size_bytes for f in sent),
            "manifest": MANIFEST_NAME,
            "resumed": resumed,
            "skipped_missing": skipped,
            "finished_at": self._clock.now().isoformat(),
        }

    async def run_pending(self) -> int:
        """Resume jobs left pending or running by a stopped process; return jobs finished."""
        done = 0
        for job in await self._exports.unfinished():
            try:
                await self.run(job.id)
                done += 1
            except Exception:
                log.exception("recording_export_resume_failed", job=job.id)
        return done

    async def nightly(self) -> int:
        """Scheduled job: once the tenant's local clock passed its export time, push its
        previous local day (once; the job runs every few minutes and skips done windows)."""
        now = self._clock.now()
        started = 0
        for policy in await self._store.policies():
            window = due_export_window(policy, now)
            if window is None:
                continue
            day_start, day_end = window
            recent = await self._exports.of_tenant(policy.tenant, limit=20)
            if any(j.kind == "scheduled" and j.range_from == day_start for j in recent):
                continue
            job = await self.create(policy.tenant, day_start, day_end, kind="scheduled")
            try:
                await self.run(job.id)
            except Exception:
                log.exception("scheduled_export_failed", tenant=policy.tenant)
            started += 1
        return started
