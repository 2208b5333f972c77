"""Agents and their skill levels in SQL: tenant-scoped, keyset listing, optimistic versions."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.seat_tables import AgentRow, AgentSkillRow, SkillGroupRow
from ccbridge.domain.leases.model import SeatKind
from ccbridge.services.seat_ports import (
    MAX_PAGE,
    AgentRecord,
    AlreadyExistsError,
    RecordNotFoundError,
    SkillLevel,
    StaleWriteError,
)


def check_limit(limit: int) -> None:
    """Refuse a page size outside ``1..MAX_PAGE``."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")


def record_to_row(record: AgentRecord, now: datetime) -> dict[str, object]:
    """Flatten an agent into ``agents`` column values (skills go to ``agent_skills``)."""
    return {
        "tenant_id": record.tenant_id,
        "agent_no": record.agent_no,
        "name": record.name,
        "certified": record.certified,
        "interface": record.interface,
        "seat_kind": record.seat_kind.value,
        "version": record.version,
        "created_at": now,
        "updated_at": now,
    }


def row_to_record(row: AgentRow, skills: Iterable[AgentSkillRow]) -> AgentRecord:
    """Rebuild the agent; skills are ordered by skill-group name."""
    return AgentRecord(
        tenant_id=row.tenant_id,
        agent_no=row.agent_no,
        name=row.name,
        certified=row.certified,
        interface=row.interface,
        seat_kind=SeatKind(row.seat_kind),
        skills=tuple(
            SkillLevel(s.skill_group, s.level) for s in sorted(skills, key=lambda s: s.skill_group)
        ),
        version=row.version,
    )


def _skill_rows(record: AgentRecord) -> list[dict[str, object]]:
    names = [s.skill_group for s in record.skills]
    if len(set(names)) != len(names):
        raise ValueError(f"agent {record.agent_no} lists a skill group twice: {names}")
    return [
        {
            "tenant_id": record.tenant_id,
            "agent_no": record.agent_no,
            "skill_group": s.skill_group,
            "level": s.level,
        }
        for s in record.skills
    ]


class AgentRepository:
    """Persist and query agents (implements ``services.seat_ports.AgentRepo``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def _require_groups(self, session: AsyncSession, record: AgentRecord) -> None:
        """Refuse skills naming a group the tenant does not have (another tenant's too)."""
        wanted = {s.skill_group for s in record.skills}
        if not wanted:
            return
        stmt = select(SkillGroupRow.name).where(
            SkillGroupRow.tenant_id == record.tenant_id, SkillGroupRow.name.in_(wanted)
        )
        found = set((await session.execute(stmt)).scalars().all())
        if missing := sorted(wanted - found):
            raise RecordNotFoundError(
                f"unknown skill group(s) for tenant {record.tenant_id}: {', '.join(missing)}",
                field="skills",
            )

    async def create(self, record: AgentRecord) -> AgentRecord:
        """Insert the agent with version 1; ``AlreadyExistsError`` if the 工号 is taken."""
        stored = replace(record, version=1)
        skills = _skill_rows(stored)
        try:
            async with self._sessions() as session, session.begin():
                await self._require_groups(session, stored)
                await session.execute(insert(AgentRow), [record_to_row(stored, datetime.now(UTC))])
                if skills:
                    await session.execute(insert(AgentSkillRow), skills)
        except IntegrityError as exc:
            if await self.get(record.tenant_id, record.agent_no) is not None:
                raise AlreadyExistsError(
                    f"agent {record.agent_no} already exists", field="agent_no"
                ) from exc
            raise RecordNotFoundError(
                f"tenant {record.tenant_id} or one of the skill groups does not exist"
            ) from exc
        return stored

    async def get(self, tenant_id: str, agent_no: str) -> AgentRecord | None:
        """Return the agent, or None (also when it belongs to another tenant)."""
        async with self._sessions() as session:
            row = await session.get(AgentRow, (tenant_id, agent_no))
            if row is None:
                return None
            skills = await self._skills(session, tenant_id, [agent_no])
        return row_to_record(row, skills.get(agent_no, ()))

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[AgentRecord]:
        """Return the tenant's agents ordered by 工号, strictly after the cursor ``after``."""
        check_limit(limit)
        stmt = select(AgentRow).where(AgentRow.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(AgentRow.agent_no > after)
        stmt = stmt.order_by(AgentRow.agent_no).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
            skills = await self._skills(session, tenant_id, [r.agent_no for r in rows])
        return [row_to_record(r, skills.get(r.agent_no, ())) for r in rows]

    async def update(self, record: AgentRecord) -> AgentRecord:
        """Replace the agent and its skills if still at ``record.version``; return version + 1."""
        skills = _skill_rows(record)
        stmt = (
            update(AgentRow)
            .where(
                AgentRow.tenant_id == record.tenant_id,
                AgentRow.agent_no == record.agent_no,
                AgentRow.version == record.version,
            )
            .values(
                name=record.name,
                certified=record.certified,
                interface=record.interface,
                seat_kind=record.seat_kind.value,
                version=AgentRow.version + 1,
                updated_at=datetime.now(UTC),
            )
            .returning(AgentRow.version)
        )
        try:
            async with self._sessions() as session, session.begin():
                await self._require_groups(session, record)
                version = (await session.execute(stmt)).scalar_one_or_none()
                if version is None:
                    raise StaleWriteError(
                        f"agent {record.agent_no} changed or was deleted since version "
                        f"{record.version}; re-read it and retry"
                    )
                await session.execute(
                    delete(AgentSkillRow).where(
                        AgentSkillRow.tenant_id == record.tenant_id,
                        AgentSkillRow.agent_no == record.agent_no,
                    )
                )
                if skills:
                    await session.execute(insert(AgentSkillRow), skills)
        except IntegrityError as exc:  # a skill group deleted meanwhile
            raise StaleWriteError(f"a skill group of agent {record.agent_no} vanished") from exc
        return replace(record, version=version)

    async def delete(self, tenant_id: str, agent_no: str) -> bool:
        """Delete the agent and its skills; say whether it existed."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(AgentSkillRow).where(
                    AgentSkillRow.tenant_id == tenant_id, AgentSkillRow.agent_no == agent_no
                )
            )
            gone = await session.execute(
                delete(AgentRow)
                .where(AgentRow.tenant_id == tenant_id, AgentRow.agent_no == agent_no)
                .returning(AgentRow.agent_no)
            )
            return gone.first() is not None

    @staticmethod
    async def _skills(
        session: AsyncSession, tenant_id: str, agent_nos: Sequence[str]
    ) -> dict[str, builtins.list[AgentSkillRow]]:
        if not agent_nos:
            return {}
        stmt = select(AgentSkillRow).where(
            AgentSkillRow.tenant_id == tenant_id, AgentSkillRow.agent_no.in_(agent_nos)
        )
        out: dict[str, builtins.list[AgentSkillRow]] = {}
        for row in (await session.execute(stmt)).scalars():
            out.setdefault(row.agent_no, []).append(row)
        return out
