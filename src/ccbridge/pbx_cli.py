"""``ccbridge pbx``: the PBXs this database knows, and forgetting a retired one (ADR 0033)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ccbridge.asterisk.queue_log_file import queue_log_source
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.pbx_registry import KnownPbx, PbxForgetRefused, SqlPbxRegistry
from ccbridge.domain.ha.system_names import describe
from ccbridge.settings import Settings

pbx_app = typer.Typer(help="PBXs: the ones this database knows; forget a retired one.")


def _line(pbx: KnownPbx) -> str:
    served = f"served by {pbx.node} (epoch {pbx.epoch})" if pbx.live else "no live node"
    name = "not read yet" if pbx.system_name is None else describe(pbx.system_name)
    return f"{pbx.pbx}\t{served}\tsystemname={name}\ttenants={pbx.tenants}"


@pbx_app.command("list")
def list_pbxs() -> None:
    """Every PBX known to the database: who serves it, its Asterisk systemname, its tenants."""
    settings = Settings()

    async def run() -> list[KnownPbx]:
        engine = create_engine(settings.database_url)
        try:
            return await SqlPbxRegistry(create_session_factory(engine)).known()
        finally:
            await engine.dispose()

    known = asyncio.run(run())
    for pbx in known:
        typer.echo(_line(pbx))
    if not known:
        typer.echo("no PBX is known yet: a PBX is known once a node serving it has started")


@pbx_app.command("forget")
def forget(
    pbx: Annotated[str, typer.Argument(help="The retired PBX's id (CCBRIDGE_HA__PBX_ID).")],
) -> None:
    """Remove a retired PBX: its lease row (freeing its systemname) and its queue-log cursor.

    Refused while a node serves it or a tenant is placed on it.
    """
    settings = Settings()

    async def run() -> bool:
        engine = create_engine(settings.database_url)
        try:
            registry = SqlPbxRegistry(create_session_factory(engine))
            return await registry.forget(pbx, queue_log_source(pbx))
        finally:
            await engine.dispose()

    try:
        forgotten = asyncio.run(run())
    except PbxForgetRefused as exc:
        typer.echo(f"not forgotten: {exc}", err=True)
        raise typer.Exit(1) from None
    if not forgotten:
        typer.echo(f"no PBX {pbx!r} is known to this database", err=True)
        raise typer.Exit(2)
    typer.echo(f"forgot PBX {pbx!r}: its systemname is free, its tenants were already moved")
