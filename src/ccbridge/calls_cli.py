"""``ccbridge calls audit``: list every call where ccbridge and the PBX's records disagree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.repositories.calls import CallRepository
from ccbridge.domain.calls.audit import CallDifference
from ccbridge.services.call_audit import audit_period
from ccbridge.settings import Settings

calls_app = typer.Typer(help="Calls: compare with the PBX's own records.")


def _when(value: str) -> datetime:
    """ISO 8601; a time without an offset is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _line(diff: CallDifference) -> str:
    return (
        f"{diff.call_id}\ttenant={diff.tenant}\t{diff.field}\t"
        f"pbx={diff.pbx}\tccbridge={diff.ccbridge}"
    )


@calls_app.command("audit")
def audit(
    start: Annotated[str, typer.Option("--from", help="Period start (ISO 8601, UTC default).")],
    end: Annotated[str, typer.Option("--to", help="Period end, exclusive.")],
    queue_log: Annotated[
        Path | None,
        typer.Option(help="The PBX queue log (default: CCBRIDGE_PBX_RECORDS__QUEUE_LOG_PATH)."),
    ] = None,
) -> None:
    """Compare ccbridge's calls with the PBX's queue log; exit 1 when any call differs."""
    settings = Settings()
    path = queue_log or settings.pbx_records.queue_log_path
    if path is None:
        typer.echo("no queue log: pass --queue-log or set CCBRIDGE_PBX_RECORDS__QUEUE_LOG_PATH")
        raise typer.Exit(2)
    since, until = _when(start), _when(end)

    async def run() -> tuple[int, list[CallDifference]]:
        engine = create_engine(settings.database_url)
        try:
            repo = CallRepository(create_session_factory(engine))
            calls, diffs = await audit_period(QueueLogFile(path), repo, since, until)
            return len(calls), diffs
        finally:
            await engine.dispose()

    checked, diffs = asyncio.run(run())
    for diff in diffs:
        typer.echo(_line(diff))
    differing = len({d.call_id for d in diffs})
    typer.echo(f"{checked} PBX calls checked, {differing} with differences ({len(diffs)} in all)")
    if diffs:
        raise typer.Exit(1)
