"""Report sheets as files: CSV (UTF-8 with BOM, for zh-CN Excel) and XLSX (XlsxWriter)."""

from __future__ import annotations

import csv
import io

import xlsxwriter

from ccbridge.domain.reports.template import Sheet

BOM = "\ufeff"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> object:
    """Keep a text cell from being read as a spreadsheet formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(sheet: Sheet) -> bytes:
    """The sheet as CSV: a BOM first so zh-CN Excel reads UTF-8, then headings and rows."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(sheet.headings)
    for row in sheet.rows:
        writer.writerow(["" if v is None else _safe(v) for v in row])
    return out.getvalue().encode("utf-8")


def to_xlsx(sheet: Sheet) -> bytes:
    """The sheet as one XLSX worksheet named after the report, headings in bold."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    ws = book.add_worksheet(sheet.title[:31])
    bold = book.add_format({"bold": True})
    ws.write_row(0, 0, sheet.headings, bold)
    for i, row in enumerate(sheet.rows, start=1):
        for j, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                ws.write_string(i, j, value)
            else:
                ws.write_number(i, j, value)
    ws.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue()
