"""B6's peer: the events poll as a FastAPI tutorial would write it, on the same database.

FastAPI + SQLAlchemy ORM + aiosqlite, a pydantic response model, no caching and no hub:
every poll loads ORM rows, validates them into models and lets FastAPI encode the page.
Same endpoint semantics as ``GET /api/v1/events``: the caller's key names its tenant, the
page is the tenant's events with ``seq > after`` in cursor order, ``next_after`` the last
cursor. Keys are looked up in a dict loaded at start (kinder to the peer than a DB lookup).

Run by ``bench/serve_events.py``::

    python bench/naive_poll_app.py --db /path/events.db --spec spec.json --port 8100
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, DateTime, String, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The peer's own ORM base (it shares only the table with ccbridge)."""


class Event(Base):
    """The journal table, mapped the ordinary way."""

    __tablename__ = "events"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class EventOut(BaseModel):
    """The public envelope (docs/events.md)."""

    id: str
    cursor: str
    type: str
    schema_version: int
    tenant: str
    call_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]


class Page(BaseModel):
    """A page and the cursor to pass back."""

    items: list[EventOut]
    next_after: str


def build(db: str, keys: dict[str, str]) -> FastAPI:
    """The app: one endpoint, tenant from the bearer key."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    tenant_of = {key: tenant for tenant, key in keys.items()}
    app = FastAPI()

    @app.get("/api/v1/events", response_model=Page)
    async def poll(
        authorization: Annotated[str, Header()],
        after: int = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Page:
        tenant = tenant_of.get(authorization.removeprefix("Bearer "))
        if tenant is None:
            raise HTTPException(401)
        async with sessions() as session:
            rows = (
                await session.scalars(
                    select(Event)
                    .where(Event.tenant == tenant, Event.seq > after)
                    .order_by(Event.seq)
                    .limit(limit)
                )
            ).all()
        items = [
            EventOut(
                id=r.id,
                cursor=str(r.seq),
                type=r.type,
                schema_version=1,
                tenant=r.tenant,
                call_id=r.call_id,
                occurred_at=r.occurred_at,
                recorded_at=r.recorded_at,
                data=r.data,
            )
            for r in rows
        ]
        return Page(items=items, next_after=str(rows[-1].seq if rows else after))

    return app


def main() -> None:
    """Serve on 127.0.0.1 with uvicorn's defaults."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    with open(args.spec) as f:
        keys = json.load(f)["keys"]
    uvicorn.run(build(args.db, keys), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
