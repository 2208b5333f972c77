"""Structural diff of two flow documents: per node (added, removed, changed fields), then the rest.

Editor layout is reported apart (``layout_changed``) so moving a box is never a logic change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class NodeChange:
    """What happened to one node between two revisions."""

    node: str
    change: str
    """``added``, ``removed`` or ``changed``."""
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FlowDiff:
    """Node changes, changed top-level settings, and whether only the layout moved."""

    nodes: list[NodeChange]
    settings: list[str]
    layout_changed: bool


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> FlowDiff:
    """Compare two documents node by node (field names that differ), then their settings."""
    old_nodes, new_nodes = _mapping(old.get("nodes")), _mapping(new.get("nodes"))
    changes: list[NodeChange] = []
    for node_id in sorted(set(old_nodes) | set(new_nodes)):
        if node_id not in old_nodes:
            changes.append(NodeChange(node_id, "added"))
        elif node_id not in new_nodes:
            changes.append(NodeChange(node_id, "removed"))
        else:
            a, b = _mapping(old_nodes[node_id]), _mapping(new_nodes[node_id])
            fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if fields:
                changes.append(NodeChange(node_id, "changed", fields))
    settings = sorted(
        k for k in (set(old) | set(new)) - {"nodes", "layout"} if old.get(k) != new.get(k)
    )
    return FlowDiff(changes, settings, old.get("layout") != new.get("layout"))
