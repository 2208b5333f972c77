"""The IVR flow as the engine sees it: a graph of typed nodes, already parsed (pure, stdlib only).

A flow's document (JSON/YAML) is parsed by the ``ivr_format`` adapter into these frozen
dataclasses; editor layout never reaches here. Prompts are referenced by id only (``welcome_zh``,
or ``sys:beep`` for an Asterisk stock sound), never by path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from typing import ClassVar

PROMPT_ID_RE = re.compile(r"^(?:sys:)?[a-z0-9][a-z0-9_-]{0,63}$")
"""A prompt id: lower-case slug; ``sys:`` names an Asterisk stock sound. No dots, no slashes."""
NODE_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
VARIABLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DTMF_KEYS = frozenset("0123456789*#")
DIAL_NUMBER_RE = re.compile(r"^\+?[0-9]{2,32}$")

PROMPT_FIELDS = ("prompt", "invalid_prompt")
"""The fields that hold prompts, in every node type that has them."""

MAX_NODES = 500
MAX_STEPS = 500
DEFAULT_STEPS = 200


class NodeType(StrEnum):
    """Every node type a flow may use."""

    PLAY = "play"
    MENU = "menu"
    COLLECT = "collect"
    SET = "set"
    CONDITION = "condition"
    TIME_SWITCH = "time_switch"
    LANGUAGE = "language"
    HTTP_LOOKUP = "http_lookup"
    QUEUE = "queue"
    TRANSFER = "transfer"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    SURVEY = "survey"
    HANGUP = "hangup"


TERMINAL_TYPES = frozenset({NodeType.QUEUE, NodeType.TRANSFER, NodeType.VOICEMAIL, NodeType.HANGUP})
INPUT_TYPES = frozenset({NodeType.MENU, NodeType.COLLECT, NodeType.LANGUAGE, NodeType.SURVEY})


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt id per language; ``""`` is the one to play when no language matches."""

    by_language: Mapping[str, str]

    def resolve(self, language: str) -> str:
        """Return the prompt id for ``language`` (else the default, else the first given)."""
        found = self.by_language.get(language) or self.by_language.get("")
        return found or next(iter(self.by_language.values()))

    def ids(self) -> list[str]:
        """Every prompt id this prompt may play."""
        return list(self.by_language.values())


@dataclass(frozen=True, slots=True)
class Node:
    """Fields every node has: its id, type and an optional visit limit with its exit."""

    id: str
    max_visits: int | None = field(default=None, kw_only=True)
    on_limit: str | None = field(default=None, kw_only=True)
    KIND: ClassVar[NodeType]
    """Each node class fixes its type here."""

    @property
    def type(self) -> NodeType:
        """The node's type."""
        return self.KIND

    def transitions(self) -> list[tuple[str, str]]:
        """Return ``(field path, target node id)`` for every outgoing edge."""
        edges = self._edges()
        if self.on_limit is not None:
            edges.append(("on_limit", self.on_limit))
        return edges

    def _edges(self) -> list[tuple[str, str]]:
        return []

    def prompts(self) -> list[tuple[str, Prompt]]:
        """Return ``(field path, prompt)`` for every prompt the node may play."""
        found = ((name, getattr(self, name, None)) for name in PROMPT_FIELDS)
        return [(name, prompt) for name, prompt in found if isinstance(prompt, Prompt)]


@dataclass(frozen=True, slots=True)
class PlayNode(Node):
    """Play a prompt, then go on."""

    KIND = NodeType.PLAY

    prompt: Prompt
    next: str

    def _edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


@dataclass(frozen=True, slots=True)
class MenuOption:
    """Where one menu key leads; the label names the choice in reports."""

    next: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class MenuNode(Node):
    """Play a prompt and branch on one DTMF key; retry on no input or a wrong key."""

    KIND = NodeType.MENU

    prompt: Prompt
    options: Mapping[str, MenuOption]
    on_fail: str
    timeout_ms: int = 5000
    retries: int = 2
    invalid_prompt: Prompt | None = None

    def _edges(self) -> list[tuple[str, str]]:
        out = [(f"options.{key}.next", opt.next) for key, opt in self.options.items()]
        return [*out, ("on_fail", self.on_fail)]


@dataclass(frozen=True, slots=True)
class CollectNode(Node):
    """Collect a digit string (``#`` ends it) into a variable, checking its length."""

    KIND = NodeType.COLLECT

    prompt: Prompt
    variable: str
    next: str
    on_fail: str
    min_digits: int = 1
    max_digits: int = 20
    timeout_ms: int = 5000
    retries: int = 2
    invalid_prompt: Prompt | None = None

    def _edges(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_fail", self.on_fail)]


@dataclass(frozen=True, slots=True)
class SetNode(Node):
    """Set a flow variable (``{name}`` in the value is replaced by that variable)."""

    KIND = NodeType.SET

    variable: str
    value: str
    next: str

    def _edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class Op(StrEnum):
    """Comparison of a condition rule."""

    EQ = "eq"
    NE = "ne"
    IN = "in"
    PREFIX = "prefix"
    GT = "gt"
    LT = "lt"
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"


@dataclass(frozen=True, slots=True)
class Rule:
    """One branch of a condition: ``variable op value`` → ``next``."""

    variable: str
    op: Op
    value: str | tuple[str, ...]
    next: str


@dataclass(frozen=True, slots=True)
class ConditionNode(Node):
    """Take the first rule that holds (on a variable, ``caller`` or ``tier``), else default."""

    KIND = NodeType.CONDITION

    rules: tuple[Rule, ...]
    default: str

    def _edges(self) -> list[tuple[str, str]]:
        out = [(f"rules.{i}.next", r.next) for i, r in enumerate(self.rules)]
        return [*out, ("default", self.default)]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class OpenHours:
    """Open from ``start`` to ``end`` (local time) on the given weekdays (0 = Monday).

    ``workdays`` adds the working-day calendar's working days: Monday to Friday minus public
    holidays, plus make-up working days (调休).
    """

    days: frozenset[int]
    start: time
    end: time
    workdays: bool = False


@dataclass(frozen=True, slots=True)
class Season:
    """Hours that replace the usual ones between two month-days (``(6, 1)``–``(8, 31)``)."""

    start: tuple[int, int]
    end: tuple[int, int]
    hours: tuple[OpenHours, ...]


@dataclass(frozen=True, slots=True)
class Holiday:
    """A holiday date range (inclusive) that takes its own branch, e.g. a holiday greeting."""

    name: str
    start: date
    end: date
    next: str


@dataclass(frozen=True, slots=True)
class TimeSwitchNode(Node):
    """Branch on the tenant-local time: holiday, open or closed."""

    KIND = NodeType.TIME_SWITCH

    hours: tuple[OpenHours, ...]
    open: str
    closed: str
    always_open: bool = False
    seasons: tuple[Season, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    timezone: str | None = None

    def _edges(self) -> list[tuple[str, str]]:
        out = [(f"holidays.{i}.next", h.next) for i, h in enumerate(self.holidays)]
        return [*out, ("open", self.open), ("closed", self.closed)]


@dataclass(frozen=True, slots=True)
class LanguageNode(Node):
    """Let the caller pick a language with one key; no or a wrong key keeps the default."""

    KIND = NodeType.LANGUAGE

    prompt: Prompt
    options: Mapping[str, str]
    next: str
    timeout_ms: int = 4000

    def _edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


@dataclass(frozen=True, slots=True)
class HttpLookupNode(Node):
    """Ask the tenant's CRM (GET with query parameters) and copy answer fields to variables."""

    KIND = NodeType.HTTP_LOOKUP

    url: str
    query: Mapping[str, str]
    assign: Mapping[str, str]
    next: str
    on_error: str
    timeout_ms: int = 2000

    def _edges(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_error", self.on_error)]


@dataclass(frozen=True, slots=True)
class QueueNode(Node):
    """End the IVR in a skill group's queue."""

    KIND = NodeType.QUEUE

    skill_group: str
    prompt: Prompt | None = None


@dataclass(frozen=True, slots=True)
class TransferNode(Node):
    """End the IVR by dialling a number (``{variable}`` allowed; checked again at run time)."""

    KIND = NodeType.TRANSFER

    number: str
    prompt: Prompt | None = None


@dataclass(frozen=True, slots=True)
class VoicemailNode(Node):
    """End the IVR in a voicemail box."""

    KIND = NodeType.VOICEMAIL

    mailbox: str
    prompt: Prompt | None = None


@dataclass(frozen=True, slots=True)
class CallbackNode(Node):
    """Record a call-back request for the caller's number (or a collected one), then go on."""

    KIND = NodeType.CALLBACK

    next: str
    number_variable: str = "caller"
    prompt: Prompt | None = None

    def _edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class Scale(StrEnum):
    """Answer scales of the contract's return-visit survey (回访)."""

    YES_NO = "yes_no"
    ATTITUDE3 = "attitude3"
    SCORE10 = "score10"


SCALE_KEYS: dict[Scale, dict[str, str]] = {
    Scale.YES_NO: {"1": "yes", "2": "no"},
    Scale.ATTITUDE3: {"1": "satisfied", "2": "neutral", "3": "unsatisfied"},
    Scale.SCORE10: {str(n): str(n) for n in range(1, 11)},
}
"""Keys the caller presses → the recorded answer."""


@dataclass(frozen=True, slots=True)
class SurveyNode(Node):
    """Ask one survey question, record the answer and branch on it (else ``next``).

    Branch keys are answers (``yes``, ``satisfied``, ``7``) or, for scores, ranges ``1-5``.
    """

    KIND = NodeType.SURVEY

    question: str
    scale: Scale
    prompt: Prompt
    next: str
    on_fail: str
    branches: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = 5000
    retries: int = 1
    invalid_prompt: Prompt | None = None

    def _edges(self) -> list[tuple[str, str]]:
        out = [(f"branches.{key}", target) for key, target in self.branches.items()]
        return [*out, ("next", self.next), ("on_fail", self.on_fail)]


@dataclass(frozen=True, slots=True)
class HangupNode(Node):
    """Play an optional goodbye, then hang up."""

    KIND = NodeType.HANGUP

    prompt: Prompt | None = None


class RouteKind(StrEnum):
    """How an IVR call leaves ccbridge; the dialplan acts on ``CCB_ROUTE``."""

    QUEUE = "queue"
    TRANSFER = "transfer"
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a call goes when the flow cannot go on (step budget, broken node)."""

    kind: RouteKind = RouteKind.HANGUP
    target: str = ""


@dataclass(frozen=True, slots=True)
class Flow:
    """A parsed flow: nodes by id, the start node, languages and the per-call step budget."""

    name: str
    start: str
    nodes: Mapping[str, Node]
    language: str = "zh"
    languages: tuple[str, ...] = ("zh",)
    max_steps: int = DEFAULT_STEPS
    fallback: Fallback = Fallback()
    dids: tuple[str, ...] = ()

    def prompt_ids(self) -> set[str]:
        """Every prompt id the flow may play."""
        return {pid for node in self.nodes.values() for _, p in node.prompts() for pid in p.ids()}
