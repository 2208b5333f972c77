"""Announce a PBX configuration change to every node (PostgreSQL ``NOTIFY``, ADR 0030).

The notice is sent in its own short transaction, after the change itself committed, so the
owner that hears it reads the new state. Listeners hear it on ``PBX_CHANGES_CHANNEL`` through
``db.event_listener.PgEventListener``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

PBX_CHANGES_CHANNEL = "ccbridge_pbx_changes"
_NOTIFY = text("SELECT pg_notify(:channel, :what)")


class PgPbxChangeNotices:
    """Send ``what`` changed (``skill_groups``, ``recording_policy``) to every listening node."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Keep the session factory (one short transaction per notice)."""
        self._sessions = sessions

    async def __call__(self, what: str) -> None:
        """Notify now."""
        async with self._sessions() as db, db.begin():
            await db.execute(_NOTIFY, {"channel": PBX_CHANGES_CHANNEL, "what": what})
