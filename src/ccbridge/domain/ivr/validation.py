"""Graph rules of a parsed flow; every fault is reported with the JSON path that holds it."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from ccbridge.domain.agents.policy import RefusalCode
from ccbridge.domain.dialing import OutboundRights
from ccbridge.domain.ivr.model import (
    DIAL_NUMBER_RE,
    DTMF_KEYS,
    INPUT_TYPES,
    SCALE_KEYS,
    TERMINAL_TYPES,
    Flow,
    LanguageNode,
    MenuNode,
    Node,
    QueueNode,
    RouteKind,
    Scale,
    SurveyNode,
    TransferNode,
)

_SCORE_RANGE = re.compile(r"^(\d{1,2})-(\d{1,2})$")


@dataclass(frozen=True, slots=True)
class FlowError:
    """One fault: where (``$.nodes.main_menu.options.9.next``), a stable code, and why."""

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return the error as the API and CLI print it."""
        return {"path": self.path, "code": self.code, "message": self.message}


def node_path(node_id: str, field: str = "") -> str:
    """Return the JSON path of a node or of one of its fields."""
    return f"$.nodes.{node_id}" + (f".{field}" if field else "")


def validate_flow(flow: Flow, known_prompts: Collection[str] | None = None) -> list[FlowError]:
    """Return every graph fault of ``flow``; ``known_prompts`` enables the missing-prompt rule."""
    return validate_graph(flow, frozenset(), known_prompts)


def validate_graph(
    flow: Flow, broken: Collection[str], known_prompts: Collection[str] | None = None
) -> list[FlowError]:
    """Check ``flow``; ids in ``broken`` exist but failed to parse (no dangling errors for them)."""
    errors: list[FlowError] = []
    exists = set(flow.nodes) | set(broken)
    if flow.start not in exists:
        errors.append(FlowError("$.start", "dangling_transition", f"no node {flow.start!r}"))
    for node in flow.nodes.values():
        errors.extend(_node_errors(flow, node, exists, known_prompts))
    if flow.start in nodes_ok(flow) and not broken:  # a broken node hides its edges
        reachable = _reachable(flow, flow.start)
        for node_id in flow.nodes:
            if node_id not in reachable:
                errors.append(
                    FlowError(
                        node_path(node_id),
                        "unreachable_node",
                        f"node {node_id!r} cannot be reached from start {flow.start!r}",
                    )
                )
        errors.extend(_loop_errors(flow, reachable))
    if flow.language not in flow.languages:
        errors.append(
            FlowError("$.language", "unknown_language", f"{flow.language!r} is not in languages")
        )
    fallback = flow.fallback
    if fallback.kind is RouteKind.TRANSFER and not DIAL_NUMBER_RE.fullmatch(fallback.target):
        errors.append(
            FlowError("$.fallback.target", "bad_transfer_number", "a transfer needs digits to dial")
        )
    return errors


def tenant_faults(
    flow: Flow, skill_groups: Collection[str], outbound: OutboundRights
) -> list[FlowError]:
    """Faults only the tenant's state shows: a queue it lacks, a number it may not dial now.

    A templated number (``{variable}``) is known only at call time; it still needs a seat kind
    that may transfer out, and the runner checks the number itself on the call.
    """
    errors: list[FlowError] = []
    routes: list[tuple[str, RouteKind, str]] = [
        ("$.fallback.target", flow.fallback.kind, flow.fallback.target)
    ]
    for node in flow.nodes.values():
        if isinstance(node, QueueNode):
            routes.append((node_path(node.id, "skill_group"), RouteKind.QUEUE, node.skill_group))
        elif isinstance(node, TransferNode):
            routes.append((node_path(node.id, "number"), RouteKind.TRANSFER, node.number))
    for path, route, target in routes:
        if route is RouteKind.QUEUE and target not in skill_groups:
            errors.append(
                FlowError(path, "unknown_skill_group", f"the tenant has no skill group {target!r}")
            )
        elif route is RouteKind.TRANSFER:
            known = DIAL_NUMBER_RE.fullmatch(target) is not None
            refused = outbound.refusal(target) if known else outbound.seat_refusal()
            if refused is not None:
                errors.append(FlowError(path, _TRANSFER_CODES[refused.code], refused.message))
    return errors


_TRANSFER_CODES = {
    RefusalCode.CAPABILITY_NOT_LEASED: "transfer_not_leased",
    RefusalCode.NUMBER_NOT_ALLOWED: "number_not_allowed",
}
"""Flow fault codes for the outbound refusals (``Refused.code``)."""


def nodes_ok(flow: Flow) -> set[str]:
    """Return the ids of nodes that parsed."""
    return set(flow.nodes)


def _node_errors(
    flow: Flow, node: Node, exists: set[str], known_prompts: Collection[str] | None
) -> Iterator[FlowError]:
    for field, target in node.transitions():
        if target not in exists:
            yield FlowError(node_path(node.id, field), "dangling_transition", f"no node {target!r}")
    if (node.max_visits is None) != (node.on_limit is None):
        yield FlowError(
            node_path(node.id, "on_limit" if node.on_limit is None else "max_visits"),
            "visit_limit_incomplete",
            "max_visits and on_limit go together",
        )
    for field, prompt in node.prompts():
        for language, pid in prompt.by_language.items():
            where = node_path(node.id, f"{field}.{language}" if language else field)
            if language and language not in flow.languages:
                yield FlowError(where, "unknown_language", f"{language!r} is not in languages")
            stock = pid.startswith("sys:")
            if known_prompts is not None and pid not in known_prompts and not stock:
                yield FlowError(where, "missing_prompt", f"prompt {pid!r} has not been uploaded")
    if isinstance(node, MenuNode | LanguageNode):
        for key in node.options:
            if len(key) != 1 or key not in DTMF_KEYS:
                yield FlowError(
                    node_path(node.id, f"options.{key}"),
                    "bad_dtmf_key",
                    f"{key!r} is not one DTMF key (0-9, *, #)",
                )
    if isinstance(node, LanguageNode):
        for key, language in node.options.items():
            if language not in flow.languages:
                yield FlowError(
                    node_path(node.id, f"options.{key}"),
                    "unknown_language",
                    f"{language!r} is not in languages",
                )
    if isinstance(node, SurveyNode):
        for key in node.branches:
            if not _answer_key_ok(node.scale, key):
                yield FlowError(
                    node_path(node.id, f"branches.{key}"),
                    "bad_answer",
                    f"{key!r} is not an answer of scale {node.scale.value}",
                )


def _answer_key_ok(scale: Scale, key: str) -> bool:
    if key in SCALE_KEYS[scale].values():
        return True
    match = _SCORE_RANGE.fullmatch(key)
    if scale is not Scale.SCORE10 or match is None:
        return False
    return 1 <= int(match[1]) <= int(match[2]) <= 10


def _successors(flow: Flow, node_id: str) -> list[str]:
    node = flow.nodes.get(node_id)
    if node is None:
        return []
    return [target for _, target in node.transitions() if target in flow.nodes]


def _reachable(flow: Flow, start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in _successors(flow, stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def strongly_connected(flow: Flow, among: Collection[str]) -> list[list[str]]:
    """Return the cycles' node sets (Tarjan, iterative): components with a loop in them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(among):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(_successors(flow, root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node_id, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(_successors(flow, child))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node_id] = min(low[node_id], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
            if low[node_id] == index[node_id]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node_id:
                        break
                if len(component) > 1 or node_id in _successors(flow, node_id):
                    out.append(sorted(component))
    return out


def _loop_errors(flow: Flow, reachable: set[str]) -> Iterator[FlowError]:
    """A loop needs a way out, and either caller input or a visit limit in it.

    Without a way out the call can never end; without input or a visit limit it spins through
    the step budget in microseconds.
    """
    for component in strongly_connected(flow, reachable):
        members = set(component)
        nodes = [flow.nodes[m] for m in component]
        limited = any(n.max_visits is not None for n in nodes)
        exits = any(
            target not in members for n in nodes for target in _successors(flow, n.id)
        ) or any(n.type in TERMINAL_TYPES for n in nodes)
        names = ", ".join(component)
        if not exits and not limited:
            yield FlowError(
                node_path(component[0]),
                "loop_without_exit",
                f"the loop {names} never leads out; add an exit or max_visits/on_limit",
            )
        elif not limited and not any(n.type in INPUT_TYPES for n in nodes):
            yield FlowError(
                node_path(component[0]),
                "loop_without_visit_limit",
                f"the loop {names} takes no caller input; set max_visits/on_limit on one node",
            )
