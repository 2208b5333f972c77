"""The six floor rules, their thresholds per tenant and how a tenant's overrides are checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FloorRule(StrEnum):
    """A rule of the floor whose breach alerts the supervisor."""

    NOT_READY_TOO_LONG = "not_ready_too_long"
    BREAK_TOO_LONG = "break_too_long"
    TOO_MANY_ON_BREAK = "too_many_on_break"
    BREAK_COUNT_EXCEEDED = "break_count_exceeded"
    CALLS_WAITING_OVER = "calls_waiting_over"
    SERVICE_LEVEL_UNDER = "service_level_under"


class Severity(StrEnum):
    """How urgent an alert is."""

    WARNING = "warning"
    CRITICAL = "critical"


UNITS: dict[FloorRule, str] = {
    FloorRule.NOT_READY_TOO_LONG: "seconds",
    FloorRule.BREAK_TOO_LONG: "seconds",
    FloorRule.TOO_MANY_ON_BREAK: "agents",
    FloorRule.BREAK_COUNT_EXCEEDED: "breaks",
    FloorRule.CALLS_WAITING_OVER: "calls",
    FloorRule.SERVICE_LEVEL_UNDER: "percent",
}
"""What a rule's threshold and an alert's value count."""

OPTIONS: dict[str, tuple[int, int]] = {
    "amber_band_pct": (0, 100),
    "service_level_min_offered": (0, 100_000),
}
"""The whole-number options beside the rules, with their accepted range (inclusive)."""

BOUNDS: dict[str, tuple[int, int]] = {
    "seconds": (1, 86_400),
    "agents": (0, 10_000),
    "breaks": (0, 10_000),
    "calls": (0, 10_000),
    "percent": (0, 100),
}
"""Accepted thresholds per unit (inclusive)."""


class FloorRulesError(ValueError):
    """A tenant's rules cannot be accepted; ``field`` names the wrong value."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One rule as a tenant runs it."""

    enabled: bool
    threshold: int
    severity: Severity


@dataclass(frozen=True, slots=True)
class FloorRules:
    """Every rule of one tenant plus the amber band of the service-level light."""

    rules: Mapping[FloorRule, RuleConfig] = field(default_factory=dict)
    amber_band_pct: int = 10
    """Below the target by at most this many points the light is amber, further down red."""
    service_level_min_offered: int = 10
    """``service_level_under`` judges a group only once this many calls were offered today
    (one unanswered first call is 0 %, which says nothing yet)."""

    def rule(self, name: FloorRule) -> RuleConfig:
        """The rule's settings (a rule never configured is off)."""
        return self.rules.get(name, RuleConfig(False, 0, Severity.WARNING))

    def active(self, name: FloorRule) -> RuleConfig | None:
        """The rule's settings when it is on, else ``None``."""
        config = self.rule(name)
        return config if config.enabled else None

    @property
    def target_pct(self) -> int:
        """The service-level target: the threshold of ``service_level_under``."""
        return self.rule(FloorRule.SERVICE_LEVEL_UNDER).threshold


def platform_defaults(
    *,
    not_ready_seconds: int = 900,
    break_seconds: int = 600,
    on_break: int = 3,
    breaks_per_day: int = 3,
    calls_waiting: int = 5,
    service_level_pct: int = 80,
    amber_band_pct: int = 10,
    service_level_min_offered: int = 10,
) -> FloorRules:
    """The rules every tenant starts with (contract: 示忙 15 min SEAT-07, 小休 10 min, 3 a day,
    3 at once SEAT-08; the queue figures are not in the sources)."""
    warn, crit = Severity.WARNING, Severity.CRITICAL
    return FloorRules(
        {
            FloorRule.NOT_READY_TOO_LONG: RuleConfig(True, not_ready_seconds, warn),
            FloorRule.BREAK_TOO_LONG: RuleConfig(True, break_seconds, warn),
            FloorRule.TOO_MANY_ON_BREAK: RuleConfig(True, on_break, warn),
            FloorRule.BREAK_COUNT_EXCEEDED: RuleConfig(True, breaks_per_day, warn),
            FloorRule.CALLS_WAITING_OVER: RuleConfig(True, calls_waiting, crit),
            FloorRule.SERVICE_LEVEL_UNDER: RuleConfig(True, service_level_pct, crit),
        },
        amber_band_pct,
        service_level_min_offered,
    )


def _rule_config(name: FloorRule, raw: object, where: str) -> RuleConfig:
    """Check one rule object ``{"enabled", "threshold", "severity"}``."""
    if not isinstance(raw, Mapping):
        raise FloorRulesError("a rule is an object with enabled, threshold, severity", where)
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        raise FloorRulesError("enabled must be true or false", f"{where}.enabled")
    threshold = raw.get("threshold")
    low, high = BOUNDS[UNITS[name]]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int)
        or not (low <= threshold <= high)
    ):
        raise FloorRulesError(
            f"threshold is a whole number of {UNITS[name]} from {low} to {high}",
            f"{where}.threshold",
        )
    severity = raw.get("severity")
    if severity not in tuple(Severity):
        raise FloorRulesError("severity is 'warning' or 'critical'", f"{where}.severity")
    return RuleConfig(enabled, threshold, Severity(str(severity)))


def with_overrides(defaults: FloorRules, overrides: Mapping[str, Any]) -> FloorRules:
    """The platform defaults with a tenant's stored or requested overrides applied.

    *overrides* is ``{"rules": {name: {...}}, "amber_band_pct": n,
    "service_level_min_offered": n}``, every key optional; anything wrong raises
    :class:`FloorRulesError` naming the field.
    """
    rules = dict(defaults.rules)
    given = overrides.get("rules", {})
    if not isinstance(given, Mapping):
        raise FloorRulesError("rules is an object keyed by rule name", "rules")
    for key, raw in given.items():
        where = f"rules.{key}"
        if key not in tuple(FloorRule):
            raise FloorRulesError(f"unknown rule {key!r}; known: {', '.join(FloorRule)}", where)
        rules[FloorRule(key)] = _rule_config(FloorRule(key), raw, where)
    options = {name: getattr(defaults, name) for name in OPTIONS}
    for name, (low, high) in OPTIONS.items():
        value = overrides.get(name, options[name])
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FloorRulesError(f"{name} is a whole number from {low} to {high}", name)
        options[name] = value
    return FloorRules(rules, **options)


def overrides_of(rules: FloorRules, given: Mapping[str, Any]) -> dict[str, Any]:
    """What a tenant's row stores: the rules and options *given* (a request's overrides), with
    the values *rules* (checked) has for them; everything else keeps following the defaults."""
    names = given.get("rules") or {}
    return {
        "rules": {
            name.value: {
                "enabled": cfg.enabled,
                "threshold": cfg.threshold,
                "severity": cfg.severity.value,
            }
            for name, cfg in rules.rules.items()
            if name.value in names
        },
        **{name: getattr(rules, name) for name in OPTIONS if name in given},
    }


def light(value_pct: float | None, rules: FloorRules) -> str:
    """The service-level light: ``none`` (nothing offered), ``green``, ``amber`` or ``red``."""
    if value_pct is None:
        return "none"
    target = rules.target_pct
    if value_pct >= target:
        return "green"
    if value_pct >= target - rules.amber_band_pct:
        return "amber"
    return "red"
