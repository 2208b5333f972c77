"""Read queues the way Asterisk's config parser does, so the fake PBX has only what is written.

A real Asterisk reads ``queues.conf`` from its configuration directory, follows ``#include``
and ``#tryinclude`` (relative paths are relative to that directory, not to the including
file), applies templates (``[name](!)`` defines one, ``[name](tpl)`` inherits) and makes one
queue of every other section but ``[general]``. The fake PBX reads the same way, so a queue
ccbridge writes to a folder the "PBX" does not include simply does not exist (issue 18).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccbridge.testing.pbx_model import MemberSpec, QueueSpec

NOT_QUEUES = frozenset({"general"})


class ConfigIncludeError(FileNotFoundError):
    """An ``#include`` names a missing file (Asterisk refuses the whole file then)."""


Resolve = Callable[[Path], Path]
"""Maps a path as the PBX sees it to where the file is here (a container's mounts)."""


@dataclass(slots=True)
class ConfigSection:
    """One ``[name](flags)`` section with its options in file order."""

    name: str
    template: bool
    parents: list[str]
    options: list[tuple[str, str]] = field(default_factory=list)
    append: bool = False
    """``[name](+)``: adds options to an earlier section of that name."""

    def get(self, key: str) -> list[str]:
        """Every value of ``key`` in this section."""
        return [v for k, v in self.options if k == key]


def read_sections(
    path: Path, config_dir: Path | None = None, resolve: Resolve | None = None
) -> list[ConfigSection]:
    """Every section of ``path`` and what it includes, in order (missing ``path``: none)."""
    if not path.exists():
        return []
    sections: list[ConfigSection] = []
    _parse(path, config_dir or path.parent, sections, 0, resolve or (lambda p: p))
    return sections


def read_queue_specs(
    path: Path, config_dir: Path | None = None, resolve: Resolve | None = None
) -> list[QueueSpec]:
    """Return the queues ``path`` defines (missing ``path``: none, as with ``#tryinclude``)."""
    sections = read_sections(path, config_dir, resolve)
    by_name = {s.name: s for s in sections}
    out = []
    for section in sections:
        if section.template or section.name.lower() in NOT_QUEUES:
            continue
        options = _resolved(section, by_name)
        strategy, monitor_format = "rrmemory", ""
        members: list[MemberSpec] = []
        for key, value in options:
            if key == "strategy":
                strategy = value
            elif key == "monitor-format":
                monitor_format = value
            elif key == "member":
                members.append(_member(value))
        out.append(QueueSpec(section.name, strategy, members, monitor_format))
    return out


def _parse(
    path: Path, base: Path, sections: list[ConfigSection], depth: int, resolve: Resolve
) -> None:
    if depth > 10:
        raise ValueError(f"#include nested too deep at {path}")
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("#"):
            directive, _, arg = line.partition(" ")
            target = Path(arg.strip().strip('"'))
            target = resolve(target if target.is_absolute() else base / target)
            if directive == "#include" and not target.exists():
                raise ConfigIncludeError(f"{path}: #include {target} not found")
            if directive in ("#include", "#tryinclude") and target.exists():
                _parse(target, base, sections, depth + 1, resolve)
            continue
        if line.startswith("["):
            name, _, rest = line[1:].partition("]")
            flags = [f.strip() for f in rest.strip().strip("()").split(",") if f.strip()]
            parents = [f for f in flags if f not in ("!", "+")]
            sections.append(ConfigSection(name, "!" in flags, parents, append="+" in flags))
            continue
        if not sections:
            continue
        key, sep, value = line.partition("=")
        if sep:
            sections[-1].options.append((key.strip(), value.lstrip(">").strip()))


def _resolved(section: ConfigSection, by_name: dict[str, ConfigSection]) -> list[tuple[str, str]]:
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
