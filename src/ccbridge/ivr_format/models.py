"""The IVR flow document (JSON or YAML) as pydantic models; ``schema.json`` is generated here.

Each node model converts itself to the pure domain node (``to_domain``). Graph rules (dangling
transitions, loops, …) live in the domain; these models check shape, types and lengths.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from ccbridge.domain.ivr import model as m

NodeId = Annotated[str, StringConstraints(max_length=64)]
Lang = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]
Variable = Annotated[str, StringConstraints(pattern=m.VARIABLE_RE.pattern)]
PromptId = Annotated[str, StringConstraints(pattern=m.PROMPT_ID_RE.pattern)]
PromptSpec = PromptId | dict[Lang, PromptId]
Text = Annotated[str, StringConstraints(max_length=256)]
Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
MonthDay = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
Dtmf = Annotated[str, StringConstraints(max_length=8)]
Timeout = Annotated[int, Field(ge=500, le=60000)]
Retries = Annotated[int, Field(ge=0, le=5)]
Did = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{1,32}$")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "all", "workdays"]


def _check_prompt(value: object) -> object:
    """Refuse a prompt given as a path before pattern checks blur the message."""
    items = value.values() if isinstance(value, dict) else [value]
    for item in items:
        if isinstance(item, str) and not m.PROMPT_ID_RE.fullmatch(item):
            raise PydanticCustomError(
                "bad_prompt_id",
                "prompts are referenced by id (lower-case a-z, 0-9, _ and -; sys: for stock "
                "sounds), never by file path: {value}",
                {"value": item[:80]},
            )
    return value


def _prompt(spec: str | dict[str, str] | None) -> m.Prompt | None:
    if spec is None:
        return None
    return m.Prompt({"": spec} if isinstance(spec, str) else dict(spec))


def _required_prompt(spec: str | dict[str, str]) -> m.Prompt:
    prompt = _prompt(spec)
    assert prompt is not None
    return prompt


class _Node(BaseModel):
    """Fields every node type accepts."""

    model_config = ConfigDict(extra="forbid")

    label: Text = ""
    """Shown in the editor and in reports; no effect on the call."""
    max_visits: Annotated[int, Field(ge=1, le=100)] | None = None
    on_limit: NodeId | None = None

    @field_validator(*m.PROMPT_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _prompt_is_an_id(cls, value: object) -> object:
        return _check_prompt(value)

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node (each node type overrides this)."""
        raise NotImplementedError

    def _common(self) -> dict[str, Any]:
        return {"max_visits": self.max_visits, "on_limit": self.on_limit}


class PlayModel(_Node):
    """Play a prompt, then go to ``next``."""

    type: Literal["play"]
    prompt: PromptSpec
    next: NodeId

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.PlayNode(node_id, _required_prompt(self.prompt), self.next, **self._common())


class MenuOptionModel(BaseModel):
    """One key of a menu."""

    model_config = ConfigDict(extra="forbid")

    next: NodeId
    label: Text = ""


class MenuModel(_Node):
    """One DTMF key chooses an option; no input or a wrong key retries, then ``on_fail``."""

    type: Literal["menu"]
    prompt: PromptSpec
    options: Annotated[dict[Dtmf, MenuOptionModel], Field(min_length=1, max_length=12)]
    on_fail: NodeId
    timeout_ms: Timeout = 5000
    retries: Retries = 2
    invalid_prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.MenuNode(
            node_id,
            _required_prompt(self.prompt),
            {k: m.MenuOption(o.next, o.label) for k, o in self.options.items()},
            self.on_fail,
            self.timeout_ms,
            self.retries,
            _prompt(self.invalid_prompt),
            **self._common(),
        )


class CollectModel(_Node):
    """Collect ``min_digits``–``max_digits`` digits (``#`` ends) into ``variable``."""

    type: Literal["collect"]
    prompt: PromptSpec
    variable: Variable
    next: NodeId
    on_fail: NodeId
    min_digits: Annotated[int, Field(ge=1, le=32)] = 1
    max_digits: Annotated[int, Field(ge=1, le=32)] = 20
    timeout_ms: Timeout = 5000
    retries: Retries = 2
    invalid_prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.CollectNode(
            node_id,
            _required_prompt(self.prompt),
            self.variable,
            self.next,
            self.on_fail,
            self.min_digits,
            max(self.min_digits, self.max_digits),
            self.timeout_ms,
            self.retries,
            _prompt(self.invalid_prompt),
            **self._common(),
        )


class SetModel(_Node):
    """Set a flow variable; ``{name}`` in ``value`` is replaced by that variable."""

    type: Literal["set"]
    variable: Variable
    value: Text
    next: NodeId

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.SetNode(node_id, self.variable, self.value, self.next, **self._common())


class RuleModel(BaseModel):
    """``variable op value`` → ``next``; caller, did, tier and language are built in."""

    model_config = ConfigDict(extra="forbid")

    variable: Variable
    op: Literal["eq", "ne", "in", "prefix", "gt", "lt", "empty", "not_empty"]
    value: Text | Annotated[list[Text], Field(max_length=100)] = ""
    next: NodeId


class ConditionModel(_Node):
    """The first rule that holds decides; else ``default``."""

    type: Literal["condition"]
    rules: Annotated[list[RuleModel], Field(min_length=1, max_length=50)]
    default: NodeId

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        rules = tuple(
            m.Rule(
                r.variable,
                m.Op(r.op),
                r.value if isinstance(r.value, str) else tuple(r.value),
                r.next,
            )
            for r in self.rules
        )
        return m.ConditionNode(node_id, rules, self.default, **self._common())


class HoursModel(BaseModel):
    """Open from ``from`` to ``to`` on ``days`` (``all``, ``workdays`` or weekday names)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    days: Annotated[list[Day], Field(min_length=1, max_length=7)] = ["all"]
    start: Clock = Field(alias="from")
    end: Clock = Field(alias="to")

    def to_domain(self) -> m.OpenHours:
        """Return the domain rule."""
        days: set[int] = set()
        for day in self.days:
            if day == "all":
                days.update(range(7))
            elif day != "workdays":  # the calendar's working days, decided on the date
                days.add(m.WEEKDAYS.index(day))
        return m.OpenHours(
            frozenset(days),
            time.fromisoformat(self.start),
            time.fromisoformat(self.end),
            workdays="workdays" in self.days,
        )


class SeasonModel(BaseModel):
    """Hours used between two month-days instead of the usual ones (e.g. summer)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: MonthDay = Field(alias="from")
    end: MonthDay = Field(alias="to")
    hours: Annotated[list[HoursModel], Field(max_length=14)]

    def to_domain(self) -> m.Season:
        """Return the domain season."""
        sm, sd = (int(x) for x in self.start.split("-"))
        em, ed = (int(x) for x in self.end.split("-"))
        return m.Season((sm, sd), (em, ed), tuple(h.to_domain() for h in self.hours))


class HolidayModel(BaseModel):
    """A date range (inclusive) that takes its own branch, e.g. a holiday greeting."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Text
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    next: NodeId


class TimeSwitchModel(_Node):
    """Holiday, open or closed, in the tenant's time zone (or ``timezone``)."""

    type: Literal["time_switch"]
    always_open: bool = False
    """7×24 service."""
    hours: Annotated[list[HoursModel], Field(max_length=14)] = []
    seasons: Annotated[list[SeasonModel], Field(max_length=12)] = []
    holidays: Annotated[list[HolidayModel], Field(max_length=100)] = []
    timezone: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]+(/[A-Za-z_+-]+){0,2}$")] | None
    ) = None
    open: NodeId
    closed: NodeId

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.TimeSwitchNode(
            node_id,
            tuple(h.to_domain() for h in self.hours),
            self.open,
            self.closed,
            self.always_open,
            tuple(s.to_domain() for s in self.seasons),
            tuple(m.Holiday(h.name, h.start, h.end, h.next) for h in self.holidays),
            self.timezone,
            **self._common(),
        )


class LanguageModel(_Node):
    """One key picks the language of later prompts (``{"1": "zh", "2": "en"}``)."""

    type: Literal["language"]
    prompt: PromptSpec
    options: Annotated[dict[Dtmf, Lang], Field(min_length=1, max_length=12)]
    next: NodeId
    timeout_ms: Timeout = 4000

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.LanguageNode(
            node_id,
            _required_prompt(self.prompt),
            dict(self.options),
            self.next,
            self.timeout_ms,
            **self._common(),
        )


class HttpLookupModel(_Node):
    """GET the tenant's CRM with query parameters; copy JSON fields into variables."""

    type: Literal["http_lookup"]
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2000}$")]
    query: Annotated[dict[Variable, Text], Field(max_length=20)] = {}
    assign: Annotated[dict[Variable, Text], Field(max_length=20)] = {}
    """``variable: field`` of the CRM's JSON object."""
    next: NodeId
    on_error: NodeId
    timeout_ms: Annotated[int, Field(ge=100, le=10000)] = 2000

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.HttpLookupNode(
            node_id,
            self.url,
            dict(self.query),
            dict(self.assign),
            self.next,
            self.on_error,
            self.timeout_ms,
            **self._common(),
        )


class QueueModel(_Node):
    """End in a skill group's queue (the dialplan runs ``Queue(${CCB_QUEUE})``)."""

    type: Literal["queue"]
    skill_group: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.QueueNode(node_id, self.skill_group, _prompt(self.prompt), **self._common())


class TransferModel(_Node):
    """End by dialling a number (digits, or ``{variable}`` checked at run time)."""

    type: Literal["transfer"]
    number: Annotated[
        str, StringConstraints(pattern=r"^(\+?[0-9]{2,32}|\{[a-z][a-z0-9_]{0,31}\})$")
    ]
    prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.TransferNode(node_id, self.number, _prompt(self.prompt), **self._common())


class VoicemailModel(_Node):
    """End in a voicemail box."""

    type: Literal["voicemail"]
    mailbox: Annotated[
        str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,32}(@[0-9A-Za-z_-]{1,32})?$")
    ]
    prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.VoicemailNode(node_id, self.mailbox, _prompt(self.prompt), **self._common())


class CallbackModel(_Node):
    """Record a call-back request (``CCB_CALLBACK``) for the caller or a collected number."""

    type: Literal["callback"]
    number_variable: Variable = "caller"
    prompt: PromptSpec | None = None
    next: NodeId

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.CallbackNode(
            node_id, self.next, self.number_variable, _prompt(self.prompt), **self._common()
        )


class SurveyModel(_Node):
    """One survey question: yes/no (1/2), attitude (1/2/3) or score 1–10; branch on answers."""

    type: Literal["survey"]
    question: Variable
    scale: Literal["yes_no", "attitude3", "score10"]
    prompt: PromptSpec
    branches: Annotated[dict[Text, NodeId], Field(max_length=12)] = {}
    next: NodeId
    on_fail: NodeId
    timeout_ms: Timeout = 5000
    retries: Retries = 1
    invalid_prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.SurveyNode(
            node_id,
            self.question,
            m.Scale(self.scale),
            _required_prompt(self.prompt),
            self.next,
            self.on_fail,
            dict(self.branches),
            self.timeout_ms,
            self.retries,
            _prompt(self.invalid_prompt),
            **self._common(),
        )


class HangupModel(_Node):
    """Play an optional goodbye and hang up."""

    type: Literal["hangup"]
    prompt: PromptSpec | None = None

    def to_domain(self, node_id: str) -> m.Node:
        """Return the domain node."""
        return m.HangupNode(node_id, _prompt(self.prompt), **self._common())


NODE_MODELS: dict[str, type[_Node]] = {
    "play": PlayModel,
    "menu": MenuModel,
    "collect": CollectModel,
    "set": SetModel,
    "condition": ConditionModel,
    "time_switch": TimeSwitchModel,
    "language": LanguageModel,
    "http_lookup": HttpLookupModel,
    "queue": QueueModel,
    "transfer": TransferModel,
    "voicemail": VoicemailModel,
    "callback": CallbackModel,
    "survey": SurveyModel,
    "hangup": HangupModel,
}

AnyNode = Annotated[
    PlayModel
    | MenuModel
    | CollectModel
    | SetModel
    | ConditionModel
    | TimeSwitchModel
    | LanguageModel
    | HttpLookupModel
    | QueueModel
    | TransferModel
    | VoicemailModel
    | CallbackModel
    | SurveyModel
    | HangupModel,
    Field(discriminator="type"),
]


class FallbackModel(BaseModel):
    """Where a call goes when the flow cannot go on (step budget spent, bad number)."""

    model_config = ConfigDict(extra="forbid")

    route: Literal["queue", "transfer", "voicemail", "hangup"] = "hangup"
    target: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_@+-]{0,40}$")] = ""


class FlowShell(BaseModel):
    """Everything but the nodes (each node is checked on its own, so every fault is found)."""

    model_config = ConfigDict(extra="forbid", title="ccbridge IVR flow")

    format: Literal["ccbridge-ivr/1"] = "ccbridge-ivr/1"
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    start: NodeId
    language: Lang = "zh"
    languages: Annotated[list[Lang], Field(min_length=1, max_length=8)] = ["zh"]
    max_steps: Annotated[int, Field(ge=1, le=m.MAX_STEPS)] = m.DEFAULT_STEPS
    """Step budget per call; when spent the call takes ``fallback`` (logged as step_budget)."""
    fallback: FallbackModel = FallbackModel()
    dids: Annotated[list[Did], Field(max_length=50)] = []
    """Dialled numbers this flow answers; empty = every DID of the tenant without its own flow."""
    nodes: dict[str, Any]
    layout: dict[str, Any] = {}
    """Editor data (node positions, colours); never read by the engine, diffed apart."""


class FlowDocument(FlowShell):
    """The full document; its JSON Schema is ``ivr_flows/schema.json``."""

    nodes: Annotated[dict[NodeId, AnyNode], Field(max_length=m.MAX_NODES)]
