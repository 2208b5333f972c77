"""The ``ccbridge calendar`` commands' work, apart from typer: read a year file, store it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ccbridge.domain.access import Principal, Role
from ccbridge.services.calendar import CalendarInvalidError, CalendarService

CLI = Principal(actor="cli", role=Role.PLATFORM_ADMIN, tenant_id=None)
"""Who imports a calendar file, in the audit log (like ``ccbridge keys create``)."""


class CalendarFile(BaseModel):
    """A year file: ``{year, holidays: [...], makeup_workdays: [...]}`` in JSON or YAML."""

    model_config = ConfigDict(extra="forbid")

    year: Annotated[int, Field(ge=2000, le=2100)]
    holidays: Annotated[list[date], Field(max_length=366)] = []
    makeup_workdays: Annotated[list[date], Field(max_length=366)] = []


class CalendarFileError(Exception):
    """The file cannot be read as a calendar year; the message says where."""


def read_file(path: Path) -> CalendarFile:
    """Parse the file (YAML for ``.yaml``/``.yml``, else JSON) into a year, or say why not."""
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        return CalendarFile.model_validate(data)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, ValidationError):
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}" for e in exc.errors()
            )
            raise CalendarFileError(f"{path}: {where}") from None
        raise CalendarFileError(f"{path}: {exc}") from None


async def import_file(calendar: CalendarService, path: Path) -> tuple[int, str]:
    """Store the file's year through the service (validated and audited as ``cli``).

    Returns (exit code, output): 0 and a summary, 1 and every faulty date, 2 for a bad file.
    """
    try:
        year = read_file(path)
    except CalendarFileError as exc:
        return 2, f"error: {exc}"
    try:
        view = await calendar.put(CLI, year.year, year.holidays, year.makeup_workdays)
    except CalendarInvalidError as exc:
        return 1, json.dumps({"valid": False, "errors": exc.errors}, ensure_ascii=False, indent=2)
    summary = {
        "year": view.year,
        "holidays": len(view.holidays),
        "makeup_workdays": len(view.makeup_days),
        "note": "a running ccbridge picks it up within a minute",
    }
    return 0, json.dumps(summary, ensure_ascii=False)
