"""The ``ccbridge ivr`` commands' work, apart from typer: read a file, validate or simulate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ccbridge.api.schemas.ivr import SimulateOut
from ccbridge.domain.ivr.engine import CallContext
from ccbridge.domain.ivr.simulator import parse_digits, simulate
from ccbridge.ivr_format.parse import FlowLimitError, ParsedFlow, load_document, parse_flow


def _read(path: Path, known: set[str] | None = None) -> ParsedFlow:
    media = "application/yaml" if path.suffix in (".yaml", ".yml") else "application/json"
    return parse_flow(load_document(path.read_bytes(), media), known)


OFFLINE_NOTE = (
    "offline: no tenant, so skill groups and transfer rights (seat kinds, dial policy) are not "
    "checked; POST /api/v1/tenants/{tenant}/ivr/validate checks them, and publishing does"
)
"""What ``ccbridge ivr validate`` cannot know without a tenant, said in every answer."""


def _unchecked(known: set[str] | None) -> list[str]:
    return ["skill_groups", "transfer_rights"] + (["prompts"] if known is None else [])


def _errors_json(errors: list[dict[str, str]], known: set[str] | None) -> str:
    out = {"valid": False, "errors": errors, "unchecked": _unchecked(known), "note": OFFLINE_NOTE}
    return json.dumps(out, ensure_ascii=False, indent=2)


def validate_file(path: Path, known: set[str] | None) -> tuple[int, str]:
    """Return (exit code, output): 0 and a summary, or 1 and every fault with its JSON path.

    Either way the output lists what an offline check leaves to the tenant-aware validate.
    """
    try:
        parsed = _read(path, known)
    except FlowLimitError as exc:
        return 1, _errors_json(exc.errors, known)
    except OSError as exc:
        return 2, f"cannot read {path}: {exc.strerror}"
    if parsed.errors or parsed.flow is None:
        return 1, _errors_json([e.as_dict() for e in parsed.errors], known)
    out = {
        "valid": True,
        "nodes": len(parsed.flow.nodes),
        "unchecked": _unchecked(known),
        "note": OFFLINE_NOTE,
    }
    return 0, json.dumps(out, ensure_ascii=False)


def simulate_file(
    path: Path, digits: str, at: str | None, caller: str, did: str, tier: str
) -> tuple[int, str]:
    """Return (exit code, output): the simulation as JSON, or the flow's faults."""
    code, out = validate_file(path, None)
    if code != 0:
        return code, out
    parsed = _read(path)
    assert parsed.flow is not None
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError:
        return 2, f"--at must be ISO 8601 with an offset, got {at!r}"
    if when.tzinfo is None:
        return 2, "--at needs a UTC offset, e.g. 2026-12-01T10:00+08:00"
    sim = simulate(
        parsed.flow,
        CallContext(now=when, caller=caller, did=did, tier=tier),
        parse_digits(digits),
    )
    return 0, SimulateOut.of(sim).model_dump_json(indent=2)
