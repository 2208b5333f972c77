"""Monthly statements over ``statements`` (the computed body and the trail as JSON)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.sla_tables import StatementRow
from ccbridge.domain.billing.statement import (
    BillingModel,
    Deadlines,
    Statement,
    StatementLine,
    StatementState,
    Transition,
)
from ccbridge.domain.sla.stability import SlaOutcome, SlaTier
from ccbridge.services.statements import StatementExistsError


def _period(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _body(s: Statement) -> dict[str, Any]:
    sla = s.sla
    return {
        "lines": [
            [ln.item, str(ln.quantity), str(ln.unit_price), str(ln.amount)] for ln in s.lines
        ],
        "sla": None
        if sla is None
        else {
            "stability_percent": str(sla.stability_percent),
            "tier": sla.tier.value,
            "pay_fraction": str(sla.pay_fraction),
            "payable": str(sla.payable),
            "deduction": str(sla.deduction),
            "report_required": sla.report_required,
        },
        "deadlines": [
            s.deadlines.issue_by.isoformat(),
            s.deadlines.confirm_by.isoformat(),
            s.deadlines.payment_due.isoformat(),
        ],
    }


def _trail(s: Statement) -> list[dict[str, Any]]:
    return [{"to": t.to.value, "at": t.at.isoformat(), "by": t.by, "note": t.note} for t in s.trail]


def _statement(row: StatementRow) -> Statement:
    b = row.body
    sla = b["sla"]
    year, month = (int(x) for x in row.period.split("-"))
    return Statement(
        tenant=row.tenant_id,
        year=year,
        month=month,
        model=BillingModel(row.model),
        lines=tuple(
            StatementLine(i, Decimal(q), Decimal(p), Decimal(a)) for i, q, p, a in b["lines"]
        ),
        sla=None
        if sla is None
        else SlaOutcome(
            Decimal(sla["stability_percent"]),
            SlaTier(sla["tier"]),
            Decimal(sla["pay_fraction"]),
            Decimal(sla["payable"]),
            Decimal(sla["deduction"]),
            bool(sla["report_required"]),
        ),
        deadlines=Deadlines(*(date.fromisoformat(d) for d in b["deadlines"])),
        trail=tuple(
            Transition(StatementState(t["to"]), datetime.fromisoformat(t["at"]), t["by"], t["note"])
            for t in row.trail
        ),
    )


class SqlStatementStore:
    """``services.statements.StatementStore`` over SQL."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def add(self, statement: Statement) -> None:
        """Insert; a second statement for the month is refused."""
        try:
            async with self._sessions() as db, db.begin():
                db.add(
                    StatementRow(
                        tenant_id=statement.tenant,
                        period=_period(statement.year, statement.month),
                        model=statement.model.value,
                        body=_body(statement),
                        trail=_trail(statement),
                    )
                )
        except IntegrityError as exc:
            raise StatementExistsError("the month already has a statement") from exc

    async def get(self, tenant_id: str, year: int, month: int) -> Statement | None:
        """The statement, or None."""
        async with self._sessions() as db:
            row = await db.get(StatementRow, (tenant_id, _period(year, month)))
        return None if row is None else _statement(row)

    async def save(self, statement: Statement) -> None:
        """Store the new trail."""
        stmt = (
            update(StatementRow)
            .where(
                StatementRow.tenant_id == statement.tenant,
                StatementRow.period == _period(statement.year, statement.month),
            )
            .values(trail=_trail(statement))
        )
        async with self._sessions() as db, db.begin():
            await db.execute(stmt)
