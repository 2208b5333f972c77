"""Routing policies: how the calls routed to one skill group are spread, prioritised and ended.

A tenant admin attaches a policy to a skill group (the *entry group*). When a call is routed to
that group (by its inbound number, or by an IVR flow's queue node), the policy decides:

- **language**: the caller's language (picked in an IVR, or the channel's language) maps to a
  group; this wins over the split;
- **split**: a weighted percentage split between groups (e.g. 70 % outsourced, 30 % in-house),
  by smooth weighted round robin: deterministic, and exact to one call over any run of calls;
- **VIP**: a caller on the VIP list, or one the tenant's CRM says is a VIP, joins the queue with
  a higher priority (``QUEUE_PRIO``);
- **sticky**: a repeat caller's owner agent (the last who answered them) rings first, for a
  fallback time, before the group;
- **overflow**: after a wait in the first group the caller moves to another group;
- **maximum wait**: after it, the caller goes to voicemail or leaves a call-back request.

Pure: no I/O, no clock; the FastAGI adapter gathers the facts and acts on the decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ccbridge.domain.acd.membership import NAME_PATTERN

DEFAULT_QUEUE_SECONDS = 300
"""How long a caller waits in a queue without a maximum wait (the shipped dialplan's value)."""
MAX_SPLIT_GROUPS = 10
MAX_LANGUAGES = 20
MAX_VIP_CALLERS = 10_000
MAX_WAIT_SECONDS = 3600
MAX_PRIORITY = 100
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")
"""A language tag as channels carry it: ``zh``, ``en``, ``en_GB``, ``yue``."""
MAILBOX_RE = re.compile(r"^[0-9A-Za-z_-]{1,32}(@[0-9A-Za-z_-]{1,32})?$")
CALLER_RE = re.compile(r"^\+?[0-9]{3,20}$")


class PolicyError(ValueError):
    """Raised when a policy cannot be applied as written; ``field`` names the wrong part."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class MaxWaitAction(StrEnum):
    """What happens to a caller who waited the maximum time."""

    VOICEMAIL = "voicemail"
    CALLBACK = "callback"


@dataclass(frozen=True, slots=True)
class SplitShare:
    """One group's share of the split (weights are relative: 70 and 30 is 70 %/30 %)."""

    group: str
    weight: int


@dataclass(frozen=True, slots=True)
class VipRule:
    """Who is a VIP (a number on the list, or the CRM's answer) and their queue priority."""

    priority: int
    callers: frozenset[str] = frozenset()
    crm_url: str | None = None
    """Asked with ``?caller=<number>``; a VIP when ``crm_field`` is one of ``crm_values``."""
    crm_field: str = "vip"
    crm_values: frozenset[str] = frozenset({"1", "true", "yes", "vip"})
    crm_timeout_ms: int = 800


@dataclass(frozen=True, slots=True)
class StickyRule:
    """Ring a repeat caller's owner agent first for ``ring_seconds`` (then the group)."""

    ring_seconds: int
    lookback_days: int = 30
    """Only an agent who answered the caller within this many days owns them."""


@dataclass(frozen=True, slots=True)
class OverflowRule:
    """After ``after_seconds`` in the first group, the caller moves to ``group``."""

    after_seconds: int
    group: str


@dataclass(frozen=True, slots=True)
class MaxWaitRule:
    """After ``seconds`` waiting in queues, voicemail (``mailbox``) or a call-back request."""

    seconds: int
    action: MaxWaitAction
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """The policy of one entry group; every rule is optional."""

    group: str
    split: tuple[SplitShare, ...] = ()
    languages: Mapping[str, str] = field(default_factory=dict)
    vip: VipRule | None = None
    sticky: StickyRule | None = None
    overflow: OverflowRule | None = None
    max_wait: MaxWaitRule | None = None

    def groups(self) -> frozenset[str]:
        """Every skill group the policy can send a call to (each must exist)."""
        named = {self.group, *(s.group for s in self.split), *self.languages.values()}
        if self.overflow is not None:
            named.add(self.overflow.group)
        return frozenset(named)


def _group(value: str, where: str) -> None:
    if not NAME_PATTERN.fullmatch(value) or len(value) > 64:
        raise PolicyError("a skill group id is 1-64 letters, digits, '_' or '-'", where)


def check_policy(policy: RoutingPolicy) -> RoutingPolicy:
    """Return *policy* if it can be applied, else raise :class:`PolicyError` naming the field."""
    _group(policy.group, "group")
    _check_split(policy.split)
    if len(policy.languages) > MAX_LANGUAGES:
        raise PolicyError(f"at most {MAX_LANGUAGES} languages", "languages")
    for language, group in policy.languages.items():
        if not LANGUAGE_RE.fullmatch(language):
            raise PolicyError(f"not a language tag: {language[:16]!r}", f"languages.{language}")
        _group(group, f"languages.{language}")
    if policy.vip is not None:
        _check_vip(policy.vip)
    if policy.sticky is not None and not (
        5 <= policy.sticky.ring_seconds <= 120 and 1 <= policy.sticky.lookback_days <= 365
    ):
        raise PolicyError("sticky: ring_seconds 5-120, lookback_days 1-365", "sticky")
    total = policy.max_wait.seconds if policy.max_wait else DEFAULT_QUEUE_SECONDS
    if policy.overflow is not None:
        _group(policy.overflow.group, "overflow.group")
        if not 5 <= policy.overflow.after_seconds < total:
            raise PolicyError(
                f"overflow.after_seconds must be 5 or more and below the maximum wait ({total})",
                "overflow.after_seconds",
            )
    if policy.max_wait is not None:
        _check_max_wait(policy.max_wait)
    return policy


def _check_split(split: Sequence[SplitShare]) -> None:
    if len(split) > MAX_SPLIT_GROUPS:
        raise PolicyError(f"at most {MAX_SPLIT_GROUPS} groups in a split", "split")
    seen: set[str] = set()
    for i, share in enumerate(split):
        _group(share.group, f"split.{i}.group")
        if share.group in seen:
            raise PolicyError(f"{share.group} is in the split twice", f"split.{i}.group")
        seen.add(share.group)
        if not 1 <= share.weight <= 1000:
            raise PolicyError("a weight is 1-1000", f"split.{i}.weight")


def _check_vip(vip: VipRule) -> None:
    if not 1 <= vip.priority <= MAX_PRIORITY:
        raise PolicyError(f"vip.priority is 1-{MAX_PRIORITY}", "vip.priority")
    if len(vip.callers) > MAX_VIP_CALLERS:
        raise PolicyError(f"at most {MAX_VIP_CALLERS} VIP numbers", "vip.callers")
    bad = next((c for c in sorted(vip.callers) if not CALLER_RE.fullmatch(c)), None)
    if bad is not None:
        raise PolicyError(f"not a caller number: {bad[:24]!r}", "vip.callers")
    if vip.crm_url is None and not vip.callers:
        raise PolicyError("a VIP rule needs callers or a crm_url", "vip")
    if not 100 <= vip.crm_timeout_ms <= 3000:
        raise PolicyError("vip.crm_timeout_ms is 100-3000", "vip.crm_timeout_ms")


def _check_max_wait(rule: MaxWaitRule) -> None:
    if not 10 <= rule.seconds <= MAX_WAIT_SECONDS:
        raise PolicyError(f"max_wait.seconds is 10-{MAX_WAIT_SECONDS}", "max_wait.seconds")
    if rule.action is MaxWaitAction.VOICEMAIL and not MAILBOX_RE.fullmatch(rule.mailbox):
        raise PolicyError("voicemail needs a mailbox (box or box@context)", "max_wait.mailbox")
    if rule.action is MaxWaitAction.CALLBACK and rule.mailbox:
        raise PolicyError("a call-back takes no mailbox", "max_wait.mailbox")


class WeightedSplit:
    """Smooth weighted round robin (nginx's): each pick adds every weight to its group's
    credit and takes the richest group, which pays the total back.

    Over any ``n`` picks each group gets its share to within one call, and the picks are
    interleaved (70/30 gives ``A A B A A B A A B A``-like runs, never 70 A's then 30 B's).
    """

    def __init__(self, shares: Sequence[SplitShare]) -> None:
        if not shares:
            raise ValueError("a split needs at least one group")
        self._shares = tuple(shares)
        self._total = sum(s.weight for s in shares)
        self._credit = [0] * len(shares)

    def pick(self) -> str:
        """The group of the next call."""
        best = 0
        for i, share in enumerate(self._shares):
            self._credit[i] += share.weight
            if self._credit[i] > self._credit[best]:
                best = i
        self._credit[best] -= self._total
        return self._shares[best].group


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What is known about the call when it is routed to the entry group."""

    caller: str
    language: str = ""
    vip: bool = False
    owner_agent: str | None = None
    owner_interface: str | None = None
    """The owner agent's phone while they are signed in (else no sticky leg)."""


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """What the dialplan does with the call (each field becomes a ``CCB_*`` channel variable)."""

    group: str
    queue_seconds: int
    priority: int = 0
    sticky_agent: str | None = None
    sticky_interface: str | None = None
    sticky_seconds: int = 0
    overflow_group: str | None = None
    overflow_seconds: int = 0
    on_max_wait: MaxWaitAction | None = None
    mailbox: str = ""
    reason: str = "default"
    """Why this group: ``language``, ``split`` or ``default`` (the entry group itself)."""


def is_vip_caller(rule: VipRule, caller: str) -> bool:
    """Say whether the caller is on the VIP list (``+86…`` and the national form both match)."""
    if caller in rule.callers:
        return True
    national = caller.removeprefix("+86") if caller.startswith("+86") else None
    return national is not None and national in rule.callers


def crm_says_vip(rule: VipRule, fields: Mapping[str, str]) -> bool:
    """Say whether the CRM's answer marks a VIP (the field's value, case-insensitive)."""
    return fields.get(rule.crm_field, "").strip().lower() in rule.crm_values


def decide(policy: RoutingPolicy, facts: CallFacts, split_pick: str | None) -> RoutingDecision:
    """Route one call: the group (language, else the split's pick, else the entry group), its
    queue priority, the sticky leg, the overflow and what happens at the maximum wait."""
    if facts.language and facts.language in policy.languages:
        group, reason = policy.languages[facts.language], "language"
    elif split_pick is not None:
        group, reason = split_pick, "split"
    else:
        group, reason = policy.group, "default"
    total = policy.max_wait.seconds if policy.max_wait else DEFAULT_QUEUE_SECONDS
    queue_seconds, overflow_group, overflow_seconds = total, None, 0
    if policy.overflow is not None and policy.overflow.group != group:
        queue_seconds = policy.overflow.after_seconds
        overflow_group = policy.overflow.group
        overflow_seconds = total - queue_seconds
    sticky = policy.sticky is not None and facts.owner_interface is not None
    return RoutingDecision(
        group=group,
        queue_seconds=queue_seconds,
        priority=policy.vip.priority if policy.vip is not None and facts.vip else 0,
        sticky_agent=facts.owner_agent if sticky else None,
        sticky_interface=facts.owner_interface if sticky else None,
        sticky_seconds=policy.sticky.ring_seconds if sticky and policy.sticky else 0,
        overflow_group=overflow_group,
        overflow_seconds=overflow_seconds,
        on_max_wait=policy.max_wait.action if policy.max_wait else None,
        mailbox=policy.max_wait.mailbox if policy.max_wait else "",
        reason=reason,
    )
