"""Read queues the way Asterisk's config parser does, so the fake PBX has only what is written.

A real Asterisk reads ``queues.conf`` from its configuration directory, follows ``#include``
and ``#tryinclude`` (relative paths are relative to that directory, not to the including
file), applies templates (``[name](!)`` defines one, ``[name](tpl)`` inherits) and makes one
queue of every other section but ``[general]``. The fake PBX reads the same way, so a queue
ccbridge writes to a folder the "PBX" does not include simply does not exist (issue 18).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ccbridge.testing.pbx_model import MemberSpec, QueueSpec

NOT_QUEUES = frozenset({"general"})


class ConfigIncludeError(FileNotFoundError):
    """An ``#include`` names a missing file (Asterisk refuses the whole file then)."""


@dataclass(slots=True)
class _Section:
    name: str
    template: bool
    parents: list[str]
    options: list[tuple[str, str]] = field(default_factory=list)


def read_queue_specs(path: Path, config_dir: Path | None = None) -> list[QueueSpec]:
    """Return the queues ``path`` defines (missing ``path``: none, as with ``#tryinclude``)."""
    base = config_dir or path.parent
    if not path.exists():
        return []
    sections: list[_Section] = []
    _parse(path, base, sections, depth=0)
    by_name = {s.name: s for s in sections}
    out = []
    for section in sections:
        if section.template or section.name.lower() in NOT_QUEUES:
            continue
        options = _resolved(section, by_name)
        strategy = "rrmemory"
        members: list[MemberSpec] = []
        for key, value in options:
            if key == "strategy":
                strategy = value
            elif key == "member":
                members.append(_member(value))
        out.append(QueueSpec(section.name, strategy, members))
    return out


def _parse(path: Path, base: Path, sections: list[_Section], depth: int) -> None:
    if depth > 10:
        raise ValueError(f"#include nested too deep at {path}")
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("#"):
            directive, _, arg = line.partition(" ")
            target = Path(arg.strip().strip('"'))
            target = target if target.is_absolute() else base / target
            if directive == "#include" and not target.exists():
                raise ConfigIncludeError(f"{path}: #include {target} not found")
            if directive in ("#include", "#tryinclude") and target.exists():
                _parse(target, base, sections, depth + 1)
            continue
        if line.startswith("["):
            name, _, rest = line[1:].partition("]")
            flags = [f.strip() for f in rest.strip().strip("()").split(",") if f.strip()]
            sections.append(_Section(name, "!" in flags, [f for f in flags if f not in ("!", "+")]))
            continue
        if not sections:
            continue
        key, sep, value = line.partition("=")
        if sep:
            sections[-1].options.append((key.strip(), value.lstrip(">").strip()))


def _resolved(section: _Section, by_name: dict[str, _Section]) -> list[tuple[str, str]]:
    """Options inherited from the templates first, then the section's own (later wins)."""
    options: list[tuple[str, str]] = []
    for parent in section.parents:
        if parent in by_name:
            options += _resolved(by_name[parent], by_name)
    return options + section.options


def _member(value: str) -> MemberSpec:
    """``member => Local/2001@agents,0,1001 张伟`` (interface, penalty, member name)."""
    parts = [p.strip() for p in value.split(",")]
    penalty = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    name = parts[2] if len(parts) > 2 and parts[2] else parts[0]
    return MemberSpec(parts[0], name, penalty)
