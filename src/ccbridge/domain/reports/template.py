"""Per-tenant report templates: which columns, in which order, under which headings (RPT-03)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ccbridge.domain.reports.model import Cell, Table


class TemplateError(ValueError):
    """A template names a column the report does not have."""

    def __init__(self, column: str) -> None:
        super().__init__(f"unknown report column {column!r}")
        self.column = column


@dataclass(frozen=True, slots=True)
class ReportTemplate:
    """The client's own format: a column choice and order, and heading overrides.

    An empty ``columns`` keeps the report's default columns; ``language`` picks the default
    headings (``zh`` or ``en``).
    """

    columns: tuple[str, ...] = ()
    headings: Mapping[str, str] = field(default_factory=dict)
    language: str = "zh"


@dataclass(frozen=True, slots=True)
class Sheet:
    """A report laid out for export: headings and rows of cells in column order."""

    title: str
    headings: list[str]
    rows: list[list[Cell]]


def layout(table: Table, template: ReportTemplate, title: str) -> Sheet:
    """Apply *template* to *table*; ``TemplateError`` for a column the table lacks.

    Columns generated from data (e.g. ``not_ready:<reason>``) are allowed even when this
    period's data has none of them; their cells are then empty.
    """
    by_key = {c.key: c for c in table.columns}
    keys: Sequence[str] = template.columns or [c.key for c in table.columns]
    for key in keys:
        if key not in by_key and ":" not in key:
            raise TemplateError(key)
    for key in template.headings:
        if key not in by_key and key not in keys:
            raise TemplateError(key)
    headings = []
    for key in keys:
        col = by_key.get(key)
        default = (
            key
            if col is None
            else (col.heading_en if template.language == "en" else col.heading_zh)
        )
        headings.append(template.headings.get(key, default))
    rows = [[row.get(key) for key in keys] for row in table.rows]
    return Sheet(title, headings, rows)
