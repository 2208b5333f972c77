"""Event schemas are a public contract: committed, current, and only ever extended.

Additive-only rule: against the committed schema, no property may disappear, change type or
become required; new properties must be optional. Real payloads validate against them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccbridge.api.schemas.events import DATA_MODELS, all_schemas
from ccbridge.domain.journal.types import EventType

COMMITTED = Path(__file__).parents[2] / "docs" / "events" / "schemas"


def _committed() -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(COMMITTED.glob("*.json"))
    }


def breaking_changes(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """Every non-additive difference from *old* to *new* (empty: compatible)."""
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, old_prop in old_props.items():
        path = f"{where}.{name}" if where else name
        if name not in new_props:
            problems.append(f"{path}: removed or renamed")
            continue
        for key in ("type", "anyOf", "const", "enum", "$ref", "format"):
            if key in old_prop and old_prop.get(key) != new_props[name].get(key):
                problems.append(f"{path}: {key} changed")
        problems += breaking_changes(old_prop, new_props[name], path)
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}.{name}: newly required")
    for name, old_def in old.get("$defs", {}).items():
        problems += breaking_changes(old_def, new.get("$defs", {}).get(name, {}), f"$defs.{name}")
    return problems


def test_committed_schemas_are_current() -> None:
    assert _committed() == all_schemas(), (
        "Event schemas changed. Check they are additive, then run "
        "`.venv/bin/ccbridge event-schemas` and commit docs/events/schemas."
    )


@pytest.mark.parametrize("event_type", [t.value for t in EventType])
def test_schemas_only_ever_grow(event_type: str) -> None:
    committed = _committed()[event_type]
    assert breaking_changes(committed, all_schemas()[event_type]) == []


def test_the_rule_catches_removals_renames_retypes_and_new_required_fields() -> None:
    old = all_schemas()["call.answered"]
    removed = json.loads(json.dumps(old))
    del removed["properties"]["data"]["properties"]["params"]
    retyped = json.loads(json.dumps(old))
    retyped["properties"]["cursor"]["type"] = "integer"
    required = json.loads(json.dumps(old))
    required["properties"]["data"].setdefault("required", []).append("leg")
    added = json.loads(json.dumps(old))
    added["properties"]["data"]["properties"]["new_optional"] = {"type": "string"}
    assert any("params: removed" in p for p in breaking_changes(old, removed))
    assert any("cursor: type changed" in p for p in breaking_changes(old, retyped))
    assert any("newly required" in p for p in breaking_changes(old, required))
    assert breaking_changes(old, added) == []


def test_every_type_has_a_data_model() -> None:
    assert set(DATA_MODELS) == set(EventType)
