"""``ccbridge reports``: the KPI reference page and report exports from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccbridge.domain.kpis.catalogue import render_markdown

KPI_DOCS = Path("docs/kpis.md")

reports_app = typer.Typer(help="Contract reports (RPT-01) and the KPI catalogue.")


@reports_app.command("kpi-docs")
def kpi_docs(
    out: Annotated[Path, typer.Option(help="Where to write the page.")] = KPI_DOCS,
) -> None:
    """Write docs/kpis.md from the KPI catalogue (a test checks the committed file matches)."""
    out.write_text(render_markdown(), encoding="utf-8")
    typer.echo(f"wrote {out}")
