"""The step engine: given a flow, the call's state and the last input, say the next action.

The same engine drives the offline simulator and the FastAGI execution, so both take the same
path for the same inputs by construction. It never does I/O: it yields actions (play this,
ask for digits, look this up, finish there) and is resumed with what happened.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ccbridge.domain.calendar import WEEKDAYS_ONLY, WorkingCalendar
from ccbridge.domain.dialing import OutboundRights
from ccbridge.domain.ivr.model import (
    DIAL_NUMBER_RE,
    SCALE_KEYS,
    CallbackNode,
    CollectNode,
    ConditionNode,
    Flow,
    HangupNode,
    HttpLookupNode,
    LanguageNode,
    MenuNode,
    Node,
    Op,
    PlayNode,
    Prompt,
    QueueNode,
    RouteKind,
    Rule,
    Scale,
    SetNode,
    SurveyNode,
    TimeSwitchNode,
    TransferNode,
    VoicemailNode,
)
from ccbridge.domain.ivr.schedule import Period, decide

_TEMPLATE = re.compile(r"\{([a-z][a-z0-9_]{0,31})\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_VARIABLE_LENGTH = 256
TRANSFER_NOT_ALLOWED = "transfer_not_allowed"
"""The reason a call ends in the fallback when the tenant may not dial the number now."""


# -- actions the engine asks for ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """Play a prompt without taking input."""

    node: str
    prompt: str


@dataclass(frozen=True, slots=True)
class Ask:
    """Play a prompt and collect up to ``max_digits`` DTMF digits (``#`` ends early)."""

    node: str
    prompt: str
    timeout_ms: int
    max_digits: int


@dataclass(frozen=True, slots=True)
class Export:
    """Set a channel variable the dialplan or the reports read (e.g. ``CCB_CALLBACK``)."""

    node: str
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """Ask the tenant's CRM (HTTP GET ``url`` with ``query``) within ``timeout_ms``."""

    node: str
    url: str
    query: Mapping[str, str]
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class Finish:
    """Leave the IVR: to a queue (skill group), a number, voicemail or a hang-up."""

    node: str
    route: RouteKind
    target: str
    reason: str


Action = Play | Ask | Export | Lookup | Finish


# -- events the engine is resumed with ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    """The action completed (a prompt played, a variable set)."""


@dataclass(frozen=True, slots=True)
class Digits:
    """The caller's digits for an :class:`Ask` (``""`` with ``timed_out`` for no input)."""

    value: str
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    """The CRM's answer: fields of its JSON object as strings, or ``ok=False``."""

    ok: bool
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HungUp:
    """The caller went away."""


Event = Done | Digits | LookupAnswer | HungUp


@dataclass(frozen=True, slots=True)
class Step:
    """One node visit for the call log: what the caller gave and what it led to."""

    node: str
    type: str
    input: str | None
    outcome: str

    def as_dict(self) -> dict[str, str | None]:
        """Return the step as stored and reported."""
        return {"node": self.node, "type": self.type, "input": self.input, "outcome": self.outcome}


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the engine knows about the call before it starts."""

    now: datetime
    caller: str = ""
    did: str = ""
    tier: str = ""
    timezone: str | None = None
    dial: OutboundRights | None = None
    """The tenant's outbound rights at call time; ``None`` checks the number's form only."""
    calendar: WorkingCalendar = WEEKDAYS_ONLY
    """The platform's working days around the call, for ``workdays`` hours (none: Mon–Fri)."""


def dtmf_reply(typed: str, max_digits: int) -> Digits:
    """What GET DATA returns for keys typed by the caller (``#`` ends, else max or timeout)."""
    if typed.endswith("#"):
        return Digits(typed[:-1][:max_digits])
    if typed and len(typed) >= max_digits:
        return Digits(typed[:max_digits])
    return Digits(typed, timed_out=True)


class _CallerGone(Exception):
    """Raised inside the engine when the caller hangs up mid-flow."""


class FlowRun:
    """One call's walk through a flow: ``start()`` then ``resume(event)`` until a Finish."""

    def __init__(self, flow: Flow, context: CallContext, start_at: str | None = None) -> None:
        self.flow = flow
        self.context = context
        self.start_at = start_at or flow.start
        """Where the walk begins: the flow's start, or a node an agent handed the caller to."""
        self.variables: dict[str, str] = {
            "caller": context.caller,
            "did": context.did,
            "tier": context.tier,
            "language": flow.language,
        }
        self.path: list[str] = []
        self.steps: list[Step] = []
        self.result: Finish | None = None
        self._visits: Counter[str] = Counter()
        self._taken = 0
        self._gen = self._run()

    @property
    def current(self) -> str:
        """The node the call is at (its drop-off node if the caller hangs up now)."""
        return self.path[-1] if self.path else self.start_at

    def start(self) -> Action:
        """Return the first action."""
        return self._emit(next(self._gen))

    def resume(self, event: Event) -> Action:
        """Feed what happened to the last action; return the next one."""
        if self.result is not None:
            raise RuntimeError("the flow has finished")
        return self._emit(self._gen.send(event))

    def _emit(self, action: Action) -> Action:
        if isinstance(action, Finish):
            self.result = action
        return action

    # -- the walk ------------------------------------------------------------------------------

    def _run(self) -> Generator[Action, Event, None]:
        flow = self.flow
        node_id = self.start_at
        try:
            while True:
                if self._taken >= flow.max_steps:
                    self._log(node_id, "budget", None, "step_budget")
                    yield self._fallback(node_id, "step_budget")
                    return
                node = flow.nodes.get(node_id)
                if node is None:
                    yield self._fallback(node_id, "missing_node")
                    return
                self._visits[node_id] += 1
                self._taken += 1
                if node.max_visits is not None and self._visits[node_id] > node.max_visits:
                    self._log(node_id, node.type.value, None, "visit_limit")
                    node_id = node.on_limit or ""
                    continue
                self.path.append(node_id)
                outcome = yield from self._node(node)
                if isinstance(outcome, Finish):
                    yield outcome
                    return
                node_id = outcome
        except _CallerGone:
            self._log(self.current, "hangup", None, "caller_hung_up")
            yield Finish(self.current, RouteKind.HANGUP, "", "caller_hung_up")

    def _fallback(self, node_id: str, reason: str) -> Finish:
        fb = self.flow.fallback
        if fb.kind is RouteKind.TRANSFER and self._dial_refusal(fb.target) is not None:
            self._log(node_id, "fallback", None, "transfer_not_allowed")
            return Finish(node_id, RouteKind.HANGUP, "", reason)
        return Finish(node_id, fb.kind, fb.target, reason)

    def _dial_refusal(self, number: str) -> str | None:
        """Say why the call may not be transferred out to ``number`` now (form, then rights)."""
        if not DIAL_NUMBER_RE.fullmatch(number):
            return "bad_number"
        dial = self.context.dial
        refused = dial.refusal(number) if dial is not None else None
        return None if refused is None else refused.code.value.lower()

    def _log(self, node: str, kind: str, given: str | None, outcome: str) -> None:
        self.steps.append(Step(node, kind, given, outcome))

    def _node(self, node: Node) -> Generator[Action, Event, str | Finish]:
        instant = _INSTANT.get(type(node))
        if instant is not None:
            return instant(self, node)
        return (yield from _INTERACTIVE[type(node)](self, node))

    def _do(self, action: Action) -> Generator[Action, Event, Event]:
        event = yield action
        if isinstance(event, HungUp):
            raise _CallerGone
        return event

    def _prompt(self, prompt: Prompt) -> str:
        return prompt.resolve(self.variables["language"])

    def _ask(
        self, node: Node, prompt: Prompt, timeout_ms: int, max_digits: int
    ) -> Generator[Action, Event, Digits]:
        event = yield from self._do(Ask(node.id, self._prompt(prompt), timeout_ms, max_digits))
        return event if isinstance(event, Digits) else Digits("", timed_out=True)

    def render(self, template: str) -> str:
        """Replace ``{name}`` with the variable's value (unknown names become "")."""
        return _TEMPLATE.sub(lambda m: self.variables.get(m[1], ""), template)

    def _set(self, name: str, value: str) -> None:
        self.variables[name] = value[:MAX_VARIABLE_LENGTH]

    # -- node types ----------------------------------------------------------------------------

    def _play(self, node: PlayNode) -> Generator[Action, Event, str | Finish]:
        yield from self._do(Play(node.id, self._prompt(node.prompt)))
        self._log(node.id, "play", None, "played")
        return node.next

    def _menu(self, node: MenuNode) -> Generator[Action, Event, str | Finish]:
        for _attempt in range(node.retries + 1):
            digits = yield from self._ask(node, node.prompt, node.timeout_ms, 1)
            key = digits.value[:1]
            option = node.options.get(key) if key else None
            if option is not None:
                self._log(node.id, "menu", key, f"option:{option.label or option.next}")
                return option.next
            self._log(node.id, "menu", key or None, "invalid" if key else "no_input")
            if key and node.invalid_prompt is not None:
                yield from self._do(Play(node.id, self._prompt(node.invalid_prompt)))
        return node.on_fail

    def _collect(self, node: CollectNode) -> Generator[Action, Event, str | Finish]:
        for _attempt in range(node.retries + 1):
            digits = yield from self._ask(node, node.prompt, node.timeout_ms, node.max_digits)
            value = digits.value
            if value.isdigit() and node.min_digits <= len(value) <= node.max_digits:
                self._set(node.variable, value)
                self._log(node.id, "collect", value, "collected")
                return node.next
            self._log(node.id, "collect", value or None, "invalid" if value else "no_input")
            if value and node.invalid_prompt is not None:
                yield from self._do(Play(node.id, self._prompt(node.invalid_prompt)))
        return node.on_fail

    def _set_node(self, node: SetNode) -> str:
        self._set(node.variable, self.render(node.value))
        self._log(node.id, "set", None, f"{node.variable}={self.variables[node.variable]}")
        return node.next

    def _condition(self, node: ConditionNode) -> str:
        for i, rule in enumerate(node.rules):
            if _holds(rule, self.variables.get(rule.variable, "")):
                self._log(node.id, "condition", None, f"rule:{i}")
                return rule.next
        self._log(node.id, "condition", None, "default")
        return node.default

    def _time_switch(self, node: TimeSwitchNode) -> str:
        context = self.context
        period, holiday = decide(node, context.now, context.timezone, context.calendar)
        if holiday is not None:
            self._log(node.id, "time_switch", None, f"holiday:{holiday.name}")
            return holiday.next
        self._log(node.id, "time_switch", None, period.value)
        return node.open if period is Period.OPEN else node.closed

    def _language(self, node: LanguageNode) -> Generator[Action, Event, str | Finish]:
        digits = yield from self._ask(node, node.prompt, node.timeout_ms, 1)
        chosen = node.options.get(digits.value[:1])
        if chosen is not None:
            self._set("language", chosen)
        self._log(node.id, "language", digits.value or None, self.variables["language"])
        return node.next

    def _lookup(self, node: HttpLookupNode) -> Generator[Action, Event, str | Finish]:
        query = {key: self.render(value) for key, value in node.query.items()}
        event = yield from self._do(Lookup(node.id, node.url, query, node.timeout_ms))
        if not isinstance(event, LookupAnswer) or not event.ok:
            self._log(node.id, "http_lookup", None, "error")
            return node.on_error
        values = {var: event.fields.get(name, "") for var, name in node.assign.items()}
        if any(_CONTROL.search(v) or len(v) > MAX_VARIABLE_LENGTH for v in values.values()):
            self._log(node.id, "http_lookup", None, "rejected")
            return node.on_error
        for var, value in values.items():
            self._set(var, value)
        self._log(node.id, "http_lookup", None, "ok")
        return node.next

    def _end(
        self, node: Node, prompt: Prompt | None, route: RouteKind, target: str
    ) -> Generator[Action, Event, str | Finish]:
        if prompt is not None:
            yield from self._do(Play(node.id, self._prompt(prompt)))
        self._log(node.id, node.type.value, None, f"{route.value}:{target}" if target else route)
        return Finish(node.id, route, target, "flow")

    def _queue(self, node: QueueNode) -> Generator[Action, Event, str | Finish]:
        return (yield from self._end(node, node.prompt, RouteKind.QUEUE, node.skill_group))

    def _transfer(self, node: TransferNode) -> Generator[Action, Event, str | Finish]:
        number = self.render(node.number)
        refused = self._dial_refusal(number)
        if refused == "bad_number":
            self._log(node.id, "transfer", None, refused)
            return self._fallback(node.id, "bad_transfer_number")
        if refused is not None:  # a well-formed number: the log shows which one was refused
            self._log(node.id, "transfer", number, refused)
            return self._fallback(node.id, TRANSFER_NOT_ALLOWED)
        return (yield from self._end(node, node.prompt, RouteKind.TRANSFER, number))

    def _voicemail(self, node: VoicemailNode) -> Generator[Action, Event, str | Finish]:
        return (yield from self._end(node, node.prompt, RouteKind.VOICEMAIL, node.mailbox))

    def _hangup(self, node: HangupNode) -> Generator[Action, Event, str | Finish]:
        return (yield from self._end(node, node.prompt, RouteKind.HANGUP, ""))

    def _callback(self, node: CallbackNode) -> Generator[Action, Event, str | Finish]:
        number = self.variables.get(node.number_variable, "")
        if DIAL_NUMBER_RE.fullmatch(number):
            yield from self._do(Export(node.id, "CCB_CALLBACK", number))
            outcome = "requested"
        else:
            outcome = "no_number"
        if node.prompt is not None:
            yield from self._do(Play(node.id, self._prompt(node.prompt)))
        self._log(node.id, "callback", None, outcome)
        return node.next

    def _survey(self, node: SurveyNode) -> Generator[Action, Event, str | Finish]:
        keys = SCALE_KEYS[node.scale]
        max_digits = 2 if node.scale is Scale.SCORE10 else 1
        for _attempt in range(node.retries + 1):
            digits = yield from self._ask(node, node.prompt, node.timeout_ms, max_digits)
            answer = keys.get(digits.value)
            if answer is not None:
                self._set(f"survey_{node.question}", answer)
                self._log(node.id, "survey", digits.value, f"{node.question}={answer}")
                return _branch(node, answer)
            given = digits.value or None
            self._log(node.id, "survey", given, "invalid" if given else "no_input")
            if given and node.invalid_prompt is not None:
                yield from self._do(Play(node.id, self._prompt(node.invalid_prompt)))
        return node.on_fail


def _branch(node: SurveyNode, answer: str) -> str:
    if answer in node.branches:
        return node.branches[answer]
    if node.scale is Scale.SCORE10:
        score = int(answer)
        for key, target in node.branches.items():
            low, sep, high = key.partition("-")
            if sep and low.isdigit() and high.isdigit() and int(low) <= score <= int(high):
                return target
    return node.next


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _holds(rule: Rule, actual: str) -> bool:
    """Evaluate one condition rule against the variable's current value."""
    value = rule.value
    if rule.op is Op.EMPTY:
        return actual == ""
    if rule.op is Op.NOT_EMPTY:
        return actual != ""
    if rule.op is Op.IN:
        return actual in (value if isinstance(value, tuple) else (value,))
    text = value if isinstance(value, str) else ",".join(value)
    if rule.op is Op.EQ:
        return actual == text
    if rule.op is Op.NE:
        return actual != text
    if rule.op is Op.PREFIX:
        return actual.startswith(text)
    left, right = _number(actual), _number(text)
    if left is None or right is None:
        return False
    return left > right if rule.op is Op.GT else left < right


_INSTANT: dict[type[Node], Callable[[FlowRun, Any], str]] = {
    SetNode: FlowRun._set_node,
    ConditionNode: FlowRun._condition,
    TimeSwitchNode: FlowRun._time_switch,
}
"""Node types decided without the caller or the network."""

_INTERACTIVE: dict[type[Node], Callable[[FlowRun, Any], Generator[Action, Event, str | Finish]]] = {
    PlayNode: FlowRun._play,
    MenuNode: FlowRun._menu,
    CollectNode: FlowRun._collect,
    LanguageNode: FlowRun._language,
    HttpLookupNode: FlowRun._lookup,
    QueueNode: FlowRun._queue,
    TransferNode: FlowRun._transfer,
    VoicemailNode: FlowRun._voicemail,
    HangupNode: FlowRun._hangup,
    CallbackNode: FlowRun._callback,
    SurveyNode: FlowRun._survey,
}
