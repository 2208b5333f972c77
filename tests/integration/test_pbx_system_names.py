"""Each PBX's Asterisk system name in its lease row (ADR 0033 step 4), over SQLite and PostgreSQL.

Two PBXs never share a system name (the unique index turns the second away, naming the
first); at most one has none; and a restart restores only the untenanted open calls its own
PBX could have made, once that PBX's system name is known.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.db.pbx_ownership import SqlPbxSystemNames
from ccbridge.db.repositories import CallRepository
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.ha.placement import CLUSTER_LEASE
from ccbridge.domain.ha.system_names import SystemNameClaim

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


async def _leases(sessions: async_sessionmaker[AsyncSession], *pbxs: str) -> None:
    async with sessions.begin() as s:
        await s.execute(
            insert(PbxOwnerRow),
            [
                {"pbx": pbx, "node": f"n-{pbx}", "epoch": 1, "acquired_at": T0, "expires_at": T0}
                for pbx in pbxs
            ],
        )


async def _names(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str | None]:
    async with sessions() as s:
        rows = (await s.execute(select(PbxOwnerRow.pbx, PbxOwnerRow.system_name))).all()
    return {str(pbx): name for pbx, name in rows}


async def test_a_lone_pbx_claims_any_name_and_counts_no_other(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _leases(session_factory, "default", CLUSTER_LEASE)
    names = SqlPbxSystemNames(session_factory)
    assert await names.claim_system_name("default", "") == SystemNameClaim(None, 0)
    assert (await _names(session_factory))["default"] == ""
    # the PBX was given a system name and restarted: the row follows it
    assert await names.claim_system_name("default", "pbx-a") == SystemNameClaim(None, 0)
    assert (await _names(session_factory))["default"] == "pbx-a"


async def test_a_second_pbx_with_the_same_name_is_turned_away_naming_the_first(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _leases(session_factory, "pbx-a", "pbx-b", CLUSTER_LEASE)
    names = SqlPbxSystemNames(session_factory)
    assert await names.claim_system_name("pbx-a", "ast1") == SystemNameClaim(None, 1)
    assert await names.claim_system_name("pbx-b", "ast1") == SystemNameClaim("pbx-a", 1)
    assert await _names(session_factory) == {"pbx-a": "ast1", "pbx-b": None, CLUSTER_LEASE: None}
    # one PBX without a system name is fine beside a named one; a second one is not
    assert await names.claim_system_name("pbx-b", "") == SystemNameClaim(None, 1)
    assert await names.claim_system_name("pbx-a", "") == SystemNameClaim("pbx-b", 1)
    assert (await _names(session_factory))["pbx-a"] == "ast1"  # the refused claim wrote nothing


async def test_an_unread_name_writes_nothing_and_still_counts_the_others(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _leases(session_factory, "pbx-a", "pbx-b")
    names = SqlPbxSystemNames(session_factory)
    assert await names.claim_system_name("pbx-a", None) == SystemNameClaim(None, 1)
    assert await names.claim_system_name("pbx-c", "x") == SystemNameClaim(None, 2)  # no row yet
    assert await _names(session_factory) == {"pbx-a": None, "pbx-b": None}


async def test_a_restart_restores_only_the_untenanted_calls_its_pbx_could_have_made(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _leases(session_factory, "pbx-a", "pbx-b")
    repo = CallRepository(session_factory)
    ids = ("1795433102.18", "pbx-b-1795433102.18", "ccb-0123456789abcdef0123")
    await repo.upsert_many(
        [CallRecord(call_id=cid, started_at=T0, state=CallState.RINGING, version=1) for cid in ids]
    )
    # not known yet (no login since the upgrade): every untenanted call may be this PBX's
    assert {c.call_id for c in await repo.open_calls(pbx="pbx-b")} == set(ids)
    names = SqlPbxSystemNames(session_factory)
    await names.claim_system_name("pbx-a", "")
    await names.claim_system_name("pbx-b", "pbx-b")
    assert [c.call_id for c in await repo.open_calls(pbx="pbx-b")] == ["pbx-b-1795433102.18"]
    assert [c.call_id for c in await repo.open_calls(pbx="pbx-a")] == ["1795433102.18"]
    assert len(await repo.open_calls()) == 3  # the API's read sees every call
