"""The PBX ownership lease in PostgreSQL, on a connection of its own (ADR 0026).

The lease is a row (``pbx_owners``), judged by the database's clock: a takeover is one
conditional upsert that succeeds only once the row has expired, and bumps the fencing epoch.
A dedicated asyncpg connection keeps renewals out of the pool, where a burst of API or writer
work could make them wait past the lease; every statement has a deadline shorter than what is
left of the term. A lost connection is simply opened again on the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, make_url, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.domain.ha.forwarding import OwnerAddress
from ccbridge.domain.ha.placement import CLUSTER_LEASE
from ccbridge.domain.ha.system_names import SystemNameClaim

_LOCK_EXPIRED = """
SELECT 1 FROM pbx_owners WHERE pbx = $1 AND expires_at < clock_timestamp() FOR UPDATE
"""
"""A takeover first locks the expired row ``FOR UPDATE``: that waits for the old term's
batches and webhook claims (they hold it ``FOR KEY SHARE``), so none of them commits in the
new term. A live lease matches nothing and locks nothing, so a standby's poll never queues
ahead of the owner's renewal; the renewal's plain ``UPDATE`` never waits for the batches."""
_ACQUIRE = """
INSERT INTO pbx_owners AS o (pbx, node, epoch, acquired_at, expires_at, url)
VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp() + make_interval(secs => $3), $4)
ON CONFLICT (pbx) DO UPDATE
   SET node = excluded.node, epoch = o.epoch + 1, acquired_at = excluded.acquired_at,
       expires_at = excluded.expires_at, url = excluded.url
 WHERE o.expires_at < clock_timestamp()
RETURNING epoch
"""
_RENEW = """
UPDATE pbx_owners SET expires_at = clock_timestamp() + make_interval(secs => $4)
 WHERE pbx = $1 AND node = $2 AND epoch = $3 AND expires_at > clock_timestamp()
RETURNING epoch
"""
_RELEASE = """
UPDATE pbx_owners SET expires_at = clock_timestamp() - interval '1 millisecond'
 WHERE pbx = $1 AND node = $2 AND epoch = $3
"""
_HOLD_SINGLE = """
INSERT INTO pbx_owners AS o (pbx, node, epoch, acquired_at, expires_at, url)
VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp() + make_interval(secs => $3), $4)
ON CONFLICT (pbx) DO UPDATE
   SET node = excluded.node,
       epoch = CASE WHEN o.node = excluded.node AND o.expires_at > clock_timestamp()
                    THEN o.epoch ELSE o.epoch + 1 END,
       acquired_at = CASE WHEN o.node = excluded.node AND o.expires_at > clock_timestamp()
                          THEN o.acquired_at ELSE excluded.acquired_at END,
       expires_at = excluded.expires_at, url = excluded.url
 WHERE o.expires_at < clock_timestamp() OR o.node = excluded.node
RETURNING epoch
"""
"""A node without HA marks the PBX as driven by it (ADR 0032): it takes the row when it is
free or expired and renews it while it is its own, so an HA node started beside it sees a
live holder and stands by. One statement on the row, so two nodes never both win it."""
_LET_GO = """
UPDATE pbx_owners SET expires_at = clock_timestamp() - interval '1 millisecond'
 WHERE pbx = $1 AND node = $2 AND expires_at > clock_timestamp()
RETURNING epoch
"""
_HOLDER = """
SELECT node, epoch, expires_at, expires_at > clock_timestamp() AS live
  FROM pbx_owners WHERE pbx = $1
"""

_LIVE_OWNER = text(
    "SELECT node, epoch, url FROM pbx_owners WHERE pbx = :pbx AND expires_at > clock_timestamp()"
)


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds (or last held) a PBX's lease, as the database sees it now."""

    node: str
    epoch: int
    expires_at: datetime
    live: bool


def _as_holder(row: asyncpg.Record | None) -> LeaseHolder | None:
    """A ``_HOLDER`` row as a :class:`LeaseHolder` (``None``: no row)."""
    if row is None:
        return None
    return LeaseHolder(row["node"], int(row["epoch"]), row["expires_at"], bool(row["live"]))


class PgPbxLeases:
    """Acquire, renew and release PBX leases; one connection, statements one at a time."""

    def __init__(
        self, url: str, *, advertise_url: str | None = None, connect_timeout: float = 3.0
    ) -> None:
        """Keep the SQLAlchemy URL (``postgresql+asyncpg://…``) in asyncpg's form;
        ``advertise_url`` is this node's API address, written with every lease it takes."""
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._advertise_url = advertise_url
        self._connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def acquire(self, pbx: str, node: str, ttl: float, *, deadline: float) -> int | None:
        """Take the lease if it is free or expired; return the new epoch, else ``None``."""
        async with self._use(deadline) as conn, conn.transaction():
            await conn.execute(_LOCK_EXPIRED, pbx, timeout=deadline)
            value = await conn.fetchval(
                _ACQUIRE, pbx, node, ttl, self._advertise_url, timeout=deadline
            )
        return None if value is None else int(value)

    async def renew(self, pbx: str, node: str, epoch: int, ttl: float, *, deadline: float) -> bool:
        """Extend our unexpired lease of ``epoch``; ``False`` when it is no longer ours."""
        return await self._fetchval(_RENEW, (pbx, node, epoch, ttl), deadline) is not None

    async def release(self, pbx: str, node: str, epoch: int, *, deadline: float) -> None:
        """Expire our lease now, so a standby takes over without waiting for the TTL."""
        await self._fetchval(_RELEASE, (pbx, node, epoch), deadline)

    async def hold_single(
        self, pbx: str, node: str, ttl: float, *, deadline: float = 3.0
    ) -> LeaseHolder | None:
        """Take or renew ``pbx``'s row for a node without HA; ``None`` when it is ours now,
        else the other live holder (this node must not drive the PBX)."""
        async with self._use(deadline) as conn, conn.transaction():
            won = await conn.fetchval(
                _HOLD_SINGLE, pbx, node, ttl, self._advertise_url, timeout=deadline
            )
            if won is not None:
                return None
            return _as_holder(await conn.fetchrow(_HOLDER, pbx, timeout=deadline))

    async def let_go(self, pbx: str, node: str, *, deadline: float = 3.0) -> None:
        """Expire ``node``'s row of ``pbx`` now (a node without HA stopping)."""
        await self._fetchval(_LET_GO, (pbx, node), deadline)

    async def holder(self, pbx: str, *, deadline: float = 3.0) -> LeaseHolder | None:
        """The lease row of ``pbx`` (``None``: nobody ever held it)."""
        async with self._use(deadline) as conn:
            return _as_holder(await conn.fetchrow(_HOLDER, pbx, timeout=deadline))

    async def close(self) -> None:
        """Close the connection (the lease itself is left to expire or was released)."""
        async with self._lock:
            await self._drop()

    async def _fetchval(self, sql: str, args: tuple[object, ...], deadline: float) -> int | None:
        async with self._use(deadline) as conn:
            value = await conn.fetchval(sql, *args, timeout=deadline)
        return None if value is None else int(value)

    @contextlib.asynccontextmanager
    async def _use(self, deadline: float) -> AsyncIterator[asyncpg.Connection]:
        """The connection, one statement group at a time; dropped if anything fails in it."""
        async with self._lock:
            conn = await self._connection(deadline)
            try:
                yield conn
            except BaseException:
                # A timed-out or broken statement leaves the connection in doubt: open anew.
                await self._drop()
                raise

    async def _connection(self, deadline: float) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=min(self._connect_timeout, deadline),
                server_settings={"application_name": "ccbridge-pbx-lease"},
            )
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()


class SqlPbxOwnerLookup:
    """The live owner of a PBX and its API address, read through the shared pool: a standby
    asks it for each request it forwards (the lease connection is kept for renewals)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Keep the session factory."""
        self._sessions = sessions

    async def __call__(self, pbx: str) -> OwnerAddress | None:
        """The unexpired holder of ``pbx``'s lease, by the database's clock."""
        async with self._sessions() as db:
            row = (await db.execute(_LIVE_OWNER, {"pbx": pbx})).first()
        if row is None:
            return None
        return OwnerAddress(str(row.node), int(row.epoch), row.url)


class SqlPbxSystemNames:
    """Each PBX's Asterisk system name in its lease row, claimed at every AMI login through the
    shared pool (ADR 0033): the unique index turns a second PBX with the same name away."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Keep the session factory."""
        self._sessions = sessions

    async def claim_system_name(self, pbx: str, system_name: str | None) -> SystemNameClaim:
        """Write *system_name* into *pbx*'s lease row unless another PBX's row has it
        (``None``: write nothing); the other PBX with it, and how many other PBXs there are.
        A PBX with no lease row yet (a lone node on SQLite, the simulator) writes nothing."""
        holder: str | None = None
        async with self._sessions() as db:
            if system_name is not None:
                try:
                    async with db.begin():
                        await db.execute(
                            update(PbxOwnerRow)
                            .where(PbxOwnerRow.pbx == pbx)
                            .values(system_name=system_name)
                        )
                except IntegrityError:
                    holder = (
                        await db.execute(
                            select(PbxOwnerRow.pbx)
                            .where(PbxOwnerRow.system_name == system_name, PbxOwnerRow.pbx != pbx)
                            .order_by(PbxOwnerRow.pbx)
                            .limit(1)
                        )
                    ).scalar_one_or_none()
            others = (
                await db.execute(
                    select(func.count())
                    .select_from(PbxOwnerRow)
                    .where(PbxOwnerRow.pbx.not_in([pbx, CLUSTER_LEASE]))
                )
            ).scalar_one()
        return SystemNameClaim(holder=holder, other_pbxs=int(others))
