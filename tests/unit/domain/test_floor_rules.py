"""Floor rules: the contract's defaults, a tenant's overrides checked field by field, the light."""

from __future__ import annotations

from typing import Any

import pytest

from ccbridge.domain.floor.rules import (
    FloorRule,
    FloorRulesError,
    RuleConfig,
    Severity,
    light,
    overrides_of,
    platform_defaults,
    with_overrides,
)

DEFAULTS = platform_defaults()


def test_defaults_follow_the_contract() -> None:
    assert DEFAULTS.rule(FloorRule.NOT_READY_TOO_LONG) == RuleConfig(True, 900, Severity.WARNING)
    assert DEFAULTS.rule(FloorRule.BREAK_TOO_LONG).threshold == 600
    assert DEFAULTS.rule(FloorRule.TOO_MANY_ON_BREAK).threshold == 3
    assert DEFAULTS.rule(FloorRule.BREAK_COUNT_EXCEEDED).threshold == 3
    assert DEFAULTS.rule(FloorRule.CALLS_WAITING_OVER).severity is Severity.CRITICAL
    assert DEFAULTS.target_pct == 80
    assert set(DEFAULTS.rules) == set(FloorRule)


def test_an_override_replaces_one_rule_and_keeps_the_others() -> None:
    rules = with_overrides(
        DEFAULTS,
        {
            "rules": {"break_too_long": {"enabled": True, "threshold": 60, "severity": "critical"}},
            "amber_band_pct": 5,
        },
    )
    assert rules.rule(FloorRule.BREAK_TOO_LONG) == RuleConfig(True, 60, Severity.CRITICAL)
    assert rules.rule(FloorRule.NOT_READY_TOO_LONG) == DEFAULTS.rule(FloorRule.NOT_READY_TOO_LONG)
    assert rules.amber_band_pct == 5
    assert rules.service_level_min_offered == 10
    stored = overrides_of(rules, {"rules": {"break_too_long": {}}, "amber_band_pct": 5})
    assert stored == {
        "rules": {"break_too_long": {"enabled": True, "threshold": 60, "severity": "critical"}},
        "amber_band_pct": 5,
    }
    assert with_overrides(DEFAULTS, stored) == rules


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rules": {"lunch_too_long": {}}}, "rules.lunch_too_long"),
        ({"rules": {"break_too_long": 5}}, "rules.break_too_long"),
        (
            {
                "rules": {
                    "break_too_long": {"enabled": "yes", "threshold": 1, "severity": "warning"}
                }
            },
            "rules.break_too_long.enabled",
        ),
        (
            {"rules": {"break_too_long": {"enabled": True, "threshold": 0, "severity": "warning"}}},
            "rules.break_too_long.threshold",
        ),
        (
            {
                "rules": {
                    "service_level_under": {
                        "enabled": True,
                        "threshold": 101,
                        "severity": "warning",
                    }
                }
            },
            "rules.service_level_under.threshold",
        ),
        (
            {"rules": {"calls_waiting_over": {"enabled": True, "threshold": 2, "severity": "x"}}},
            "rules.calls_waiting_over.severity",
        ),
        ({"amber_band_pct": -1}, "amber_band_pct"),
        ({"service_level_min_offered": "5"}, "service_level_min_offered"),
        ({"rules": []}, "rules"),
    ],
)
def test_a_wrong_value_names_its_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(FloorRulesError) as caught:
        with_overrides(DEFAULTS, overrides)
    assert caught.value.field == field


def test_a_count_rule_may_be_zero_but_a_time_rule_not() -> None:
    zero = {"enabled": True, "threshold": 0, "severity": "warning"}
    rules = with_overrides(DEFAULTS, {"rules": {"calls_waiting_over": zero}})
    assert rules.rule(FloorRule.CALLS_WAITING_OVER).threshold == 0
    with pytest.raises(FloorRulesError):
        with_overrides(DEFAULTS, {"rules": {"not_ready_too_long": zero}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "none"),
        (80.0, "green"),
        (95.5, "green"),
        (79.9, "amber"),
        (70.0, "amber"),
        (69.9, "red"),
        (0.0, "red"),
    ],
)
def test_the_service_level_light(value: float | None, expected: str) -> None:
    assert light(value, DEFAULTS) == expected


def test_a_switched_off_rule_is_not_active() -> None:
    off = {"enabled": False, "threshold": 5, "severity": "warning"}
    rules = with_overrides(DEFAULTS, {"rules": {"calls_waiting_over": off}})
    assert rules.active(FloorRule.CALLS_WAITING_OVER) is None
    assert rules.active(FloorRule.BREAK_TOO_LONG) is not None
