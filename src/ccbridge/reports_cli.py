"""``ccbridge reports``: the KPI reference page and report exports from the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ccbridge.domain.kpis.catalogue import render_markdown

if TYPE_CHECKING:
    from ccbridge.domain.reports.intervals import Granularity
    from ccbridge.domain.reports.model import Dimension, ReportKind

KPI_DOCS = Path("docs/kpis.md")

reports_app = typer.Typer(help="Contract reports (RPT-01) and the KPI catalogue.")


@reports_app.command("kpi-docs")
def kpi_docs(
    out: Annotated[Path, typer.Option(help="Where to write the page.")] = KPI_DOCS,
) -> None:
    """Write docs/kpis.md from the KPI catalogue (a test checks the committed file matches)."""
    out.write_text(render_markdown(), encoding="utf-8")
    typer.echo(f"wrote {out}")


@reports_app.command("export")
def export(
    tenant: Annotated[str, typer.Option(help="The tenant id.")],
    report: Annotated[
        str, typer.Option(help="service-level | seat-time | seat-detail | call-attributes")
    ],
    first: Annotated[str, typer.Option("--from", help="First tenant-local date, YYYY-MM-DD.")],
    last: Annotated[str, typer.Option("--to", help="Last tenant-local date (inclusive).")],
    out: Annotated[Path, typer.Option(help="File to write; .xlsx gives XLSX, else CSV.")],
    interval: Annotated[str, typer.Option(help="15min … 60min, day … year.")] = "day",
    group_by: Annotated[str, typer.Option(help="tenant | skill_group | agent.")] = "tenant",
    template: Annotated[bool, typer.Option(help="Apply the tenant's template.")] = True,
) -> None:
    """Compute a report and write it as CSV (UTF-8 with BOM) or XLSX.

    Exit 0 when written, 2 for a bad argument (the message names it).
    """
    import asyncio

    from ccbridge.domain.reports.intervals import Granularity
    from ccbridge.domain.reports.model import Dimension, ReportKind

    try:
        kind, gran, dim = ReportKind(report), Granularity(interval), Dimension(group_by)
        start, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        typer.echo(f"bad argument: {exc}", err=True)
        raise typer.Exit(2) from None
    fmt = "xlsx" if out.suffix.lower() == ".xlsx" else "csv"
    body, rows = asyncio.run(_export(tenant, kind, start, end, gran, dim, fmt, template))
    if isinstance(body, str):
        typer.echo(body, err=True)
        raise typer.Exit(2)
    out.write_bytes(body)
    typer.echo(f"wrote {rows} rows to {out}")


async def _export(
    tenant: str,
    kind: ReportKind,
    first: date,
    last: date,
    gran: Granularity,
    dim: Dimension,
    fmt: str,
    template: bool,
) -> tuple[bytes | str, int]:
    """The encoded report and its row count, or the refusal's message."""
    from ccbridge.bootstrap import build_report_service  # lazy: keeps `--help` fast
    from ccbridge.cli import _load_settings
    from ccbridge.db.engine import create_engine
    from ccbridge.errors import CcbridgeError

    engine = create_engine(_load_settings().database_url, null_pool=True)
    try:
        svc = build_report_service(engine)
        try:
            run = await svc.run(tenant, kind, first, last, gran, dim)
            body = await svc.export(run, tenant, fmt, template)
        except CcbridgeError as exc:
            return f"{exc.field or 'tenant'}: {exc.detail}", 0
        return body, len(run.table.rows)
    finally:
        await engine.dispose()


@reports_app.command("rebuild")
def rebuild(
    tenant: Annotated[str, typer.Option(help="The tenant id.")],
    first: Annotated[str, typer.Option("--from", help="First tenant-local date, YYYY-MM-DD.")],
    last: Annotated[str, typer.Option("--to", help="Last tenant-local date (inclusive).")],
) -> None:
    """Recompute the 15-minute report tallies of a period from the calls and state intervals.

    Idempotent: run it again and the tallies are the same. Needed only for history before
    the tallies existed (the job keeps them current) or after restoring raw rows by hand.
    Exit 0 when done, 2 for a bad argument.
    """
    import asyncio

    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        typer.echo(f"bad argument: {exc}", err=True)
        raise typer.Exit(2) from None
    if end < start:
        typer.echo("bad argument: --to is before --from", err=True)
        raise typer.Exit(2)
    result = asyncio.run(_rebuild(tenant, start, end))
    if isinstance(result, str):
        typer.echo(result, err=True)
        raise typer.Exit(2)
    typer.echo(f"recomputed {result} UTC days of tallies for {tenant}")


async def _rebuild(tenant: str, first: date, last: date) -> int | str:
    """Days recomputed, or the refusal's message."""
    from datetime import datetime, time, timedelta

    from ccbridge.bootstrap import build_report_service  # lazy: keeps `--help` fast
    from ccbridge.cli import _load_settings
    from ccbridge.db.engine import create_engine
    from ccbridge.domain.calendar import tenant_zone
    from ccbridge.errors import CcbridgeError

    engine = create_engine(_load_settings().database_url, null_pool=True)
    try:
        svc = build_report_service(engine)
        try:
            zone = tenant_zone((await svc.settings(tenant)).kpis.timezone)
        except CcbridgeError as exc:
            return f"{exc.field or 'tenant'}: {exc.detail}"
        start = datetime.combine(first, time(), zone)
        end = datetime.combine(last + timedelta(days=1), time(), zone) - timedelta(seconds=1)
        return await svc.tallies.rebuild(tenant, start, end)
    finally:
        await engine.dispose()
