"""Floor rules and alert episodes in SQL; an alert and its journal event commit together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.floor_tables import FloorAlertRow, FloorRulesRow
from ccbridge.db.journal import SqlJournal
from ccbridge.domain.floor.alerts import FloorAlert, cleared_event, raised_event
from ccbridge.domain.floor.rules import FloorRule, Severity
from ccbridge.services.floor_ports import StoredFloorRules


class SqlFloorRulesStore:
    """``services.floor_ports.FloorRulesStore`` over ``floor_rules``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; each call is one short transaction."""
        self._sessions = session_factory

    async def get(self, tenant_id: str) -> StoredFloorRules | None:
        """The tenant's overrides, or None."""
        async with self._sessions() as db:
            row = await db.get(FloorRulesRow, tenant_id)
            if row is None:
                return None
            return StoredFloorRules(row.tenant_id, row.overrides, row.updated_at, row.updated_by)

    async def put(self, rules: StoredFloorRules) -> None:
        """Insert or replace the tenant's overrides."""
        async with self._sessions() as db:
            row = await db.get(FloorRulesRow, rules.tenant_id)
            if row is None:
                row = FloorRulesRow(tenant_id=rules.tenant_id)
                db.add(row)
            row.overrides = dict(rules.overrides)
            row.updated_at = rules.updated_at
            row.updated_by = rules.updated_by
            await db.commit()


def _alert(row: FloorAlertRow) -> FloorAlert:
    return FloorAlert(
        id=row.id,
        tenant_id=row.tenant_id,
        key=row.episode_key,
        rule=FloorRule(row.rule),
        severity=Severity(row.severity),
        agent_no=row.agent_no,
        skill_group=row.skill_group,
        value=row.value,
        threshold=row.threshold,
        started_at=row.started_at,
        message=row.message,
        raised_at=row.raised_at,
        cleared_at=row.cleared_at,
    )


def _row(alert: FloorAlert) -> FloorAlertRow:
    return FloorAlertRow(
        id=alert.id,
        tenant_id=alert.tenant_id,
        episode_key=alert.key,
        rule=alert.rule.value,
        severity=alert.severity.value,
        agent_no=alert.agent_no,
        skill_group=alert.skill_group,
        value=alert.value,
        threshold=alert.threshold,
        started_at=alert.started_at,
        raised_at=alert.raised_at,
        message=alert.message,
        cleared_at=alert.cleared_at,
    )


class SqlFloorAlertStore:
    """``services.floor_ports.FloorAlertStore`` over ``floor_alerts`` and the journal."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], journal: SqlJournal
    ) -> None:
        """Keep the factory and the journal the events go to."""
        self._sessions = session_factory
        self._journal = journal

    async def open_alerts(self, tenant_id: str | None) -> list[FloorAlert]:
        """Alerts not cleared yet, oldest first (index ``ix_floor_alerts_open``)."""
        stmt = select(FloorAlertRow).where(FloorAlertRow.cleared_at.is_(None))
        if tenant_id is not None:
            stmt = stmt.where(FloorAlertRow.tenant_id == tenant_id)
        stmt = stmt.order_by(FloorAlertRow.raised_at, FloorAlertRow.id)
        async with self._sessions() as db:
            return [_alert(r) for r in (await db.scalars(stmt)).all()]

    async def raise_alerts(self, alerts: Sequence[FloorAlert]) -> None:
        """Insert the alerts and their ``floor.alert`` events in one transaction."""
        if not alerts:
            return
        async with self._sessions() as db:
            db.add_all(_row(a) for a in alerts)
            await db.flush()
            stored = await self._journal.append(db, [raised_event(a) for a in alerts])
            await self._journal.commit(db, stored)

    async def clear_alerts(self, alerts: Sequence[FloorAlert], at: datetime) -> None:
        """Set ``cleared_at`` on open alerts and append ``floor.alert_cleared`` for each."""
        if not alerts:
            return
        async with self._sessions() as db:
            ids = [a.id for a in alerts]
            await db.execute(
                update(FloorAlertRow)
                .where(FloorAlertRow.id.in_(ids), FloorAlertRow.cleared_at.is_(None))
                .values(cleared_at=at)
            )
            stored = await self._journal.append(db, [cleared_event(a, at) for a in alerts])
            await self._journal.commit(db, stored)

    async def recent(self, tenant_id: str, limit: int) -> list[FloorAlert]:
        """The newest alerts of the tenant (index ``ix_floor_alerts_tenant_raised``)."""
        stmt = (
            select(FloorAlertRow)
            .where(FloorAlertRow.tenant_id == tenant_id)
            .order_by(FloorAlertRow.raised_at.desc(), FloorAlertRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as db:
            return [_alert(r) for r in (await db.scalars(stmt)).all()]
