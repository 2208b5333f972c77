"""The recording index in SQL: insert, finalise, keyset search, holds, policies and purge."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, time
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.event_tables import (
    CallParamsRow,
    EventRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
)
from ccbridge.db.ivr_tables import IvrCallLogRow
from ccbridge.db.journal import SqlJournal
from ccbridge.db.pbx_scope import placed_on
from ccbridge.db.recording_tables import (
    CallHoldRow,
    PurgeReportRow,
    RecordingPolicyRow,
    RecordingRow,
)
from ccbridge.db.repositories.audit import AuditRepository
from ccbridge.db.tables import CallRow
from ccbridge.domain.access import AuditEntry
from ccbridge.domain.journal.types import NewEvent
from ccbridge.domain.recordings.model import (
    ExportTarget,
    Recording,
    RecordingPolicy,
    RecordingQuery,
    RecordingStatus,
)
from ccbridge.services.recording_ports import SealReport, SecretCipher, SignedReport

log = structlog.get_logger(__name__)

TENANT_CALL_DATA: tuple[tuple[str, type[Any], Any], ...] = (
    ("recording", RecordingRow, RecordingRow.tenant),
    ("call", CallRow, CallRow.tenant),
    ("call_param", CallParamsRow, CallParamsRow.tenant),
    ("event", EventRow, EventRow.tenant),
    ("ivr_call_log", IvrCallLogRow, IvrCallLogRow.tenant_id),
    ("webhook_delivery", WebhookDeliveryRow, WebhookDeliveryRow.tenant),
    ("webhook_endpoint", WebhookEndpointRow, WebhookEndpointRow.tenant),
)
"""What an off-boarding purge deletes, by the kind named in the report's counts: every row of
the tenant's calls and what was derived from them (docs/recordings.md, "Off-boarding")."""

MAX_PAGE = 1000
_TEXT_LIMITS = {"agent_no": 64, "skill_group": 64, "caller": 255, "callee": 255, "channel": 255}


def _clamp(value: str | None, name: str) -> str | None:
    limit = _TEXT_LIMITS[name]
    return value[:limit] if value is not None and len(value) > limit else value


def to_row(rec: Recording, now: datetime) -> dict[str, Any]:
    """Flatten a recording into column values (PBX text clamped to the column widths)."""
    return {
        "id": rec.id,
        "tenant": rec.tenant,
        "call_id": rec.call_id,
        "path": rec.path,
        "channel": _clamp(rec.channel, "channel"),
        "agent_no": _clamp(rec.agent_no, "agent_no"),
        "skill_group": _clamp(rec.skill_group, "skill_group"),
        "caller": _clamp(rec.caller, "caller"),
        "callee": _clamp(rec.callee, "callee"),
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "duration_ms": rec.duration_ms,
        "size_bytes": rec.size_bytes,
        "sha256": rec.sha256,
        "status": rec.status.value,
        "held": rec.held,
        "muted": rec.muted,
        "purged_at": rec.purged_at,
        "purge_reason": rec.purge_reason,
        "updated_at": now,
    }


def from_row(row: RecordingRow) -> Recording:
    """Rebuild the domain record from a row."""
    return Recording(
        id=row.id,
        tenant=row.tenant,
        call_id=row.call_id,
        path=row.path,
        started_at=row.started_at,
        status=RecordingStatus(row.status),
        channel=row.channel,
        agent_no=row.agent_no,
        skill_group=row.skill_group,
        caller=row.caller,
        callee=row.callee,
        ended_at=row.ended_at,
        duration_ms=row.duration_ms,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        held=row.held,
        muted=row.muted,
        purged_at=row.purged_at,
        purge_reason=row.purge_reason,
    )


def search_statement(
    query: RecordingQuery, before: tuple[datetime, str] | None, limit: int
) -> Select[RecordingRow]:
    """The keyset search: filters, then ``(started_at, id) < before``, newest first."""
    stmt = select(RecordingRow)
    if query.tenant is not None:
        stmt = stmt.where(RecordingRow.tenant == query.tenant)
    for name in ("agent_no", "caller", "callee", "skill_group", "call_id"):
        value = getattr(query, name)
        if value is not None:
            stmt = stmt.where(getattr(RecordingRow, name) == value)
    if query.started_from is not None:
        stmt = stmt.where(RecordingRow.started_at >= query.started_from)
    if query.started_to is not None:
        stmt = stmt.where(RecordingRow.started_at < query.started_to)
    if not query.include_unavailable:
        stmt = stmt.where(RecordingRow.status == RecordingStatus.OK.value)
    if before is not None:
        started_at, rec_id = before
        stmt = stmt.where(
            RecordingRow.started_at <= started_at,
            or_(
                RecordingRow.started_at < started_at,
                and_(RecordingRow.started_at == started_at, RecordingRow.id < rec_id),
            ),
        )
    return stmt.order_by(RecordingRow.started_at.desc(), RecordingRow.id.desc()).limit(limit)


def _hhmm(value: str | None) -> time | None:
    if not value:
        return None
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


_FINISHED = (RecordingStatus.OK, RecordingStatus.EMPTY, RecordingStatus.MISSING)
"""Statuses a purge may take (a row still ``recording`` is never purged)."""


def _past_horizon(
    tenant: str, started_before: datetime, statuses: tuple[RecordingStatus, ...]
) -> tuple[ColumnElement[bool], ...]:
    """Unheld recordings of *tenant* in *statuses* started before the retention horizon."""
    return (
        RecordingRow.tenant == tenant,
        RecordingRow.started_at < started_before,
        RecordingRow.held.is_(False),
        RecordingRow.status.in_([s.value for s in statuses]),
    )


class MissingCipherError(RuntimeError):
    """A password was to be stored or read but no secrets cipher is configured."""


class RecordingRepository:
    """Implements ``services.recording_ports.RecordingStore``; each call is one transaction.

    With a journal, events handed to :meth:`save` (``recording.ready``) are appended in the
    same transaction as the row (outbox, ADR 0008): both are stored or neither.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        journal: SqlJournal | None = None,
        *,
        cipher: SecretCipher | None = None,
    ) -> None:
        """Keep the factory; *cipher* encrypts export passwords (none stored without it)."""
        self._sessions = session_factory
        self._journal = journal
        self._cipher = cipher

    def _seal(self, password: str, tenant: str) -> str | None:
        if not password:
            return None
        if self._cipher is None:
            raise MissingCipherError("no secrets cipher: refusing to store a password")
        return self._cipher.encrypt(password, tenant)

    def _open(self, token: str | None, tenant: str) -> str:
        if not token:
            return ""
        if self._cipher is None:
            raise MissingCipherError("no secrets cipher: cannot read the export password")
        try:
            return self._cipher.decrypt(token, tenant)
        except ValueError as exc:
            # Retention and auto-record must not stop over one unreadable password: only
            # that tenant's export fails (at login), and this says why.
            log.error("export_password_undecryptable", tenant=tenant, error=str(exc))
            return ""

    def _policy(
        self, row: RecordingPolicyRow | None, tenant: str, timezone: str | None
    ) -> RecordingPolicy:
        zone = timezone or "UTC"
        if row is None:
            return RecordingPolicy(tenant=tenant, timezone=zone)
        target = None
        if row.export_host:
            target = ExportTarget(
                host=row.export_host,
                port=row.export_port or 21,
                username=row.export_username or "anonymous",
                password=self._open(row.export_password, tenant),
                tls=row.export_tls,
                directory=row.export_dir or "/",
                ca_pem=row.export_ca_pem,
            )
        groups = row.auto_record_groups
        return RecordingPolicy(
            tenant=tenant,
            retention_months=row.retention_months,
            auto_record=row.auto_record,
            auto_record_groups=None if groups is None else tuple(groups),
            export_target=target,
            export_time=_hhmm(row.export_time),
            timezone=zone,
        )

    async def add(self, rec: Recording, now: datetime) -> Recording:
        """Insert a new recording; a call under legal hold makes it held from the start."""
        async with self._sessions() as session:
            held = await session.get(CallHoldRow, (rec.tenant, rec.call_id)) is not None
            rec = replace(rec, held=rec.held or held)
            session.add(RecordingRow(**to_row(rec, now)))
            await session.commit()
        return rec

    async def save(self, rec: Recording, now: datetime, events: Sequence[NewEvent] = ()) -> None:
        """Overwrite every mutable column of an existing recording (and journal *events*)."""
        values = to_row(rec, now)
        values.pop("id")
        async with self._sessions() as session:
            await session.execute(
                update(RecordingRow).where(RecordingRow.id == rec.id).values(**values)
            )
            if self._journal is None or not events:
                await session.commit()
                return
            stored = await self._journal.append(session, events)
            await self._journal.commit(session, stored)

    async def get(self, recording_id: str, tenant: str | None = None) -> Recording | None:
        """One recording; with *tenant*, another tenant's is reported as missing."""
        stmt = select(RecordingRow).where(RecordingRow.id == recording_id)
        if tenant is not None:
            stmt = stmt.where(RecordingRow.tenant == tenant)
        async with self._sessions() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
        return None if row is None else from_row(row)

    async def of_call(self, call_id: str, tenant: str | None = None) -> builtins.list[Recording]:
        """Every recording of one call, oldest first."""
        stmt = select(RecordingRow).where(RecordingRow.call_id == call_id)
        if tenant is not None:
            stmt = stmt.where(RecordingRow.tenant == tenant)
        async with self._sessions() as session:
            rows = (await session.execute(stmt.order_by(RecordingRow.started_at))).scalars()
            return [from_row(r) for r in rows]

    async def unfinished(
        self, limit: int = 10_000, *, pbx: str | None = None
    ) -> builtins.list[Recording]:
        """Recordings still marked ``recording`` (a restart finalises those whose call ended);
        with *pbx*, only those of its tenants (ADR 0033)."""
        stmt = (
            select(RecordingRow)
            .where(RecordingRow.status == RecordingStatus.RECORDING.value)
            .where(placed_on(RecordingRow.tenant, pbx))
            .order_by(RecordingRow.started_at)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [from_row(r) for r in (await session.execute(stmt)).scalars()]

    async def search(
        self, query: RecordingQuery, before: tuple[datetime, str] | None = None, limit: int = 50
    ) -> builtins.list[Recording]:
        """Keyset-paginated search, newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        async with self._sessions() as session:
            rows = (await session.execute(search_statement(query, before, limit))).scalars()
            return [from_row(r) for r in rows]

    async def set_held(self, recording_id: str, tenant: str, held: bool, now: datetime) -> bool:
        """Put or lift a legal hold on one recording; False when there is none such."""
        async with self._sessions() as session:
            result = await session.execute(
                update(RecordingRow)
                .where(RecordingRow.id == recording_id, RecordingRow.tenant == tenant)
                .values(held=held, updated_at=now)
            )
            await session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def hold_call(
        self, tenant: str, call_id: str, held: bool, reason: str, actor: str, now: datetime
    ) -> int:
        """Put or lift a legal hold on a call (its recordings now and later); rows changed."""
        async with self._sessions() as session:
            existing = await session.get(CallHoldRow, (tenant, call_id))
            if held and existing is None:
                session.add(
                    CallHoldRow(
                        tenant=tenant,
                        call_id=call_id,
                        reason=reason,
                        created_at=now,
                        created_by=actor,
                    )
                )
            elif not held and existing is not None:
                await session.delete(existing)
            result = await session.execute(
                update(RecordingRow)
                .where(RecordingRow.tenant == tenant, RecordingRow.call_id == call_id)
                .values(held=held, updated_at=now)
            )
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def policy(self, tenant: str) -> RecordingPolicy:
        """The tenant's recording policy (defaults when none is stored), in its time zone."""
        async with self._sessions() as session:
            row = await session.get(RecordingPolicyRow, tenant)
            zone = await session.scalar(select(TenantRow.timezone).where(TenantRow.id == tenant))
        return self._policy(row, tenant, zone)

    async def policies(self) -> builtins.list[RecordingPolicy]:
        """Every stored policy, plus defaults for tenants that only have recordings."""
        async with self._sessions() as session:
            rows = {
                r.tenant: r for r in (await session.execute(select(RecordingPolicyRow))).scalars()
            }
            tenants = (await session.execute(select(RecordingRow.tenant).distinct())).scalars()
            names = sorted(set(rows) | set(tenants))
            found = await session.execute(select(TenantRow.id, TenantRow.timezone))
            zones: dict[str, str] = dict(found.all())
        return [self._policy(rows.get(t), t, zones.get(t)) for t in names]

    async def tenant_status(self, tenant: str) -> str | None:
        """The tenant's lifecycle status, or ``None`` when there is no such tenant."""
        async with self._sessions() as session:
            return await session.scalar(select(TenantRow.status).where(TenantRow.id == tenant))

    async def tenant_timezone(self, tenant: str) -> str | None:
        """The tenant's IANA zone, or ``None`` when there is no such tenant."""
        async with self._sessions() as session:
            return await session.scalar(select(TenantRow.timezone).where(TenantRow.id == tenant))

    async def reencrypt_secrets(self) -> int:
        """Rotation: rewrite export passwords not under the current key; return rows changed."""
        if self._cipher is None:
            return 0
        changed = 0
        async with self._sessions() as session:
            stmt = select(RecordingPolicyRow).where(RecordingPolicyRow.export_password.is_not(None))
            for row in (await session.execute(stmt)).scalars():
                token = row.export_password
                if not token or self._cipher.is_current(token):
                    continue
                try:
                    plain = self._cipher.decrypt(token, row.tenant)
                except ValueError as exc:  # keep the token: an old key may still be added
                    log.error("export_password_undecryptable", tenant=row.tenant, error=str(exc))
                    continue
                row.export_password = self._cipher.encrypt(plain, row.tenant)
                changed += 1
            await session.commit()
        return changed

    async def set_policy(self, policy: RecordingPolicy, now: datetime) -> None:
        """Store the tenant's policy (insert or replace)."""
        target = policy.export_target
        values: dict[str, Any] = {
            "retention_months": policy.retention_months,
            "auto_record": policy.auto_record,
            "auto_record_groups": None
            if policy.auto_record_groups is None
            else list(policy.auto_record_groups),
            "export_host": target.host if target else None,
            "export_port": target.port if target else None,
            "export_username": target.username if target else None,
            "export_password": self._seal(target.password, policy.tenant) if target else None,
            "export_tls": target.tls if target else False,
            "export_dir": target.directory if target else None,
            "export_ca_pem": target.ca_pem if target else None,
            "export_time": policy.export_time.strftime("%H:%M") if policy.export_time else None,
            "updated_at": now,
        }
        async with self._sessions() as session:
            row = await session.get(RecordingPolicyRow, policy.tenant)
            if row is None:
                session.add(RecordingPolicyRow(tenant=policy.tenant, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
            await session.commit()

    # --- retention -----------------------------------------------------------------------

    async def mark_for_purge(
        self, tenant: str, started_before: datetime, now: datetime, limit: int = 1000
    ) -> int:
        """Mark up to *limit* unheld, finished recordings started before the horizon."""
        eligible = (
            select(RecordingRow.id)
            .where(*_past_horizon(tenant, started_before, _FINISHED))
            .order_by(RecordingRow.started_at)
            .limit(limit)
        )
        async with self._sessions() as session:
            ids = list((await session.execute(eligible)).scalars())
            if ids:
                await session.execute(
                    update(RecordingRow)
                    .where(RecordingRow.id.in_(ids))
                    .values(status=RecordingStatus.PURGING.value, updated_at=now)
                )
            await session.commit()
        return len(ids)

    async def count_eligible(self, tenant: str, started_before: datetime) -> int:
        """How many recordings a purge would delete now (the dry run's answer)."""
        stmt = (
            select(func.count())
            .select_from(RecordingRow)
            .where(*_past_horizon(tenant, started_before, (*_FINISHED, RecordingStatus.PURGING)))
        )
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def purging(
        self, tenant: str | None = None, limit: int = 1000
    ) -> builtins.list[Recording]:
        """Recordings marked for purge whose deletion is not yet recorded."""
        stmt = select(RecordingRow).where(RecordingRow.status == RecordingStatus.PURGING.value)
        if tenant is not None:
            stmt = stmt.where(RecordingRow.tenant == tenant)
        async with self._sessions() as session:
            rows = (
                await session.execute(stmt.order_by(RecordingRow.started_at).limit(limit))
            ).scalars()
            return [from_row(r) for r in rows]

    async def finish_purge(
        self, recording_id: str, reason: str, now: datetime, audit: AuditEntry
    ) -> bool:
        """Turn a ``purging`` row into a tombstone and append its audit entry, atomically.

        Only a row still ``purging`` changes, so a rerun after a crash writes no second entry.
        """
        async with self._sessions() as session:
            result = await session.execute(
                update(RecordingRow)
                .where(
                    RecordingRow.id == recording_id,
                    RecordingRow.status == RecordingStatus.PURGING.value,
                )
                .values(
                    status=RecordingStatus.PURGED.value,
                    purged_at=now,
                    purge_reason=reason,
                    agent_no=None,
                    skill_group=None,
                    caller=None,
                    callee=None,
                    channel=None,
                    sha256=None,
                    updated_at=now,
                )
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
            if changed:
                await AuditRepository(session).append(audit)
            await session.commit()
        return changed

    # --- off-boarding --------------------------------------------------------------------

    async def all_of_tenant(self, tenant: str) -> builtins.list[Recording]:
        """Every recording row of a tenant, tombstones included (the off-boarding manifest)."""
        stmt = (
            select(RecordingRow)
            .where(RecordingRow.tenant == tenant)
            .order_by(RecordingRow.started_at)
        )
        async with self._sessions() as session:
            return [from_row(r) for r in (await session.execute(stmt)).scalars()]

    async def erase_tenant(self, tenant: str, audit: AuditEntry, seal: SealReport) -> SignedReport:
        """Delete every row of *tenant*'s call data (``TENANT_CALL_DATA``), its recording holds
        and policy; store the signed report with the counts and one audit entry in the same
        transaction (a crash leaves all or nothing)."""
        async with self._sessions() as session:
            counts: dict[str, int] = {}
            for kind, table, column in TENANT_CALL_DATA:
                result = await session.execute(delete(table).where(column == tenant))
                counts[kind] = int(result.rowcount)  # type: ignore[attr-defined]
            await session.execute(delete(CallHoldRow).where(CallHoldRow.tenant == tenant))
            await session.execute(
                delete(RecordingPolicyRow).where(RecordingPolicyRow.tenant == tenant)
            )
            report = seal(counts)
            session.add(
                PurgeReportRow(
                    id=report.id,
                    tenant=report.tenant,
                    created_at=report.created_at,
                    manifest=report.manifest,
                    signature=report.signature,
                )
            )
            await AuditRepository(session).append(audit)
            await session.commit()
        return report

    async def add_many(self, recs: Sequence[Recording], now: datetime) -> None:
        """Bulk insert (the benchmark's 100k index and imports)."""
        async with self._sessions() as session:
            await session.execute(RecordingRow.__table__.insert(), [to_row(r, now) for r in recs])  # type: ignore[attr-defined]
            await session.commit()
