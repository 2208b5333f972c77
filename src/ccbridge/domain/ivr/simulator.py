"""Offline simulator: run a flow with scripted digits, time and caller; no PBX, no network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ccbridge.domain.ivr.engine import (
    Action,
    Ask,
    CallContext,
    Done,
    Event,
    Finish,
    FlowRun,
    HungUp,
    Lookup,
    LookupAnswer,
    Step,
    dtmf_reply,
)
from ccbridge.domain.ivr.model import Flow


@dataclass(frozen=True, slots=True)
class Simulation:
    """What a simulated call did: the node path, each action, each step and how it ended."""

    path: list[str]
    actions: list[Action]
    steps: list[Step]
    result: Finish
    variables: dict[str, str] = field(default_factory=dict)


def parse_digits(text: str) -> list[str]:
    """Split ``"1,2#,,5"`` into the keys typed at each prompt (``""`` = no input)."""
    return [part.strip() for part in text.split(",")] if text else []


def simulate(
    flow: Flow,
    context: CallContext,
    digits: Sequence[str] = (),
    *,
    lookups: Mapping[str, Mapping[str, str]] | None = None,
    hangup_after_inputs: int | None = None,
) -> Simulation:
    """Play the call: each Ask takes the next entry of ``digits`` (none left = timeout).

    ``lookups`` answers HTTP lookup nodes by node id (a missing one fails, taking the node's
    error branch); ``hangup_after_inputs`` hangs up at that Ask instead of answering it.
    """
    run = FlowRun(flow, context)
    actions: list[Action] = []
    pending = list(digits)
    asked = 0
    action = run.start()
    while True:
        actions.append(action)
        if isinstance(action, Finish):
            return Simulation(run.path, actions, run.steps, action, dict(run.variables))
        event: Event
        if isinstance(action, Ask):
            if hangup_after_inputs is not None and asked >= hangup_after_inputs:
                event = HungUp()
            else:
                typed = pending.pop(0) if pending else ""
                event = dtmf_reply(typed, action.max_digits)
            asked += 1
        elif isinstance(action, Lookup):
            answer = (lookups or {}).get(action.node)
            event = LookupAnswer(answer is not None, dict(answer or {}))
        else:
            event = Done()
        action = run.resume(event)
