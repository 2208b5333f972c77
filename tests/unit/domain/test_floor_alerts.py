"""Floor alerts: each rule's breach, one alert per episode, cleared when the episode ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.floor.alerts import (
    Breach,
    FloorAlert,
    FloorFacts,
    GroupFact,
    SeatFact,
    breaches,
    cleared_event,
    opened,
    raised_event,
    settle,
)
from ccbridge.domain.floor.rules import FloorRule, Severity, platform_defaults, with_overrides
from ccbridge.domain.journal.types import EventType

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
RULES = platform_defaults()
S = AgentState


def seat(agent_no: str, state: AgentState, since: datetime = T0, breaks: int = 0) -> SeatFact:
    return SeatFact(agent_no, state, since, breaks)


def floor(*seats: SeatFact, groups: tuple[GroupFact, ...] = ()) -> FloorFacts:
    return FloorFacts(seats, groups, "2026-12-03")


def rules_of(found: list[Breach]) -> list[tuple[str, str | None, str | None]]:
    return [(b.rule.value, b.agent_no, b.skill_group) for b in found]


def test_not_ready_alerts_only_past_the_threshold() -> None:
    facts = floor(seat("1001", S.NOT_READY), seat("1002", S.READY))
    assert breaches(RULES, facts, T0 + timedelta(seconds=900)) == []
    [hit] = breaches(RULES, facts, T0 + timedelta(seconds=901))
    assert (hit.rule, hit.agent_no, hit.value, hit.threshold) == (
        FloorRule.NOT_READY_TOO_LONG,
        "1001",
        901.0,
        900,
    )
    assert hit.started_at == T0 + timedelta(seconds=900)
    assert hit.severity is Severity.WARNING
    assert "15 min" in hit.message


def test_break_too_long_uses_the_tenants_threshold() -> None:
    short = with_overrides(
        RULES,
        {"rules": {"break_too_long": {"enabled": True, "threshold": 60, "severity": "critical"}}},
    )
    facts = floor(seat("1001", S.BREAK))
    at = T0 + timedelta(seconds=61)
    assert breaches(RULES, facts, at) == []
    [hit] = breaches(short, facts, at)
    assert (hit.rule, hit.severity) == (FloorRule.BREAK_TOO_LONG, Severity.CRITICAL)


def test_too_many_on_break_and_break_count_exceeded() -> None:
    facts = floor(
        *(seat(f"10{i}", S.BREAK, breaks=1) for i in range(4)), seat("2000", S.READY, breaks=4)
    )
    found = breaches(RULES, facts, T0 + timedelta(seconds=10))
    assert rules_of(found) == [
        ("break_count_exceeded", "2000", None),
        ("too_many_on_break", None, None),
    ]
    assert found[1].value == 4.0


def test_queue_rules_per_skill_group() -> None:
    groups = (
        GroupFact("sales", calls_waiting=6, service_level_pct=79.5, offered_today=10),
        GroupFact("support", calls_waiting=5, service_level_pct=None),
        GroupFact("vip", calls_waiting=0, service_level_pct=0.0, offered_today=9),  # too few
    )
    found = breaches(RULES, floor(groups=groups), T0)
    assert rules_of(found) == [
        ("calls_waiting_over", None, "sales"),
        ("service_level_under", None, "sales"),
    ]
    assert found[1].value == 79.5


def test_a_switched_off_rule_never_breaks() -> None:
    off = with_overrides(
        RULES,
        {
            "rules": {
                "not_ready_too_long": {"enabled": False, "threshold": 1, "severity": "warning"}
            }
        },
    )
    assert breaches(off, floor(seat("1001", S.NOT_READY)), T0 + timedelta(hours=3)) == []


def _open(breach: Breach, n: int) -> FloorAlert:
    return opened(breach, f"a{n}", "t1", T0)


def test_settle_raises_once_per_episode_and_clears_when_it_ends() -> None:
    facts = floor(seat("1001", S.NOT_READY))
    first = breaches(RULES, facts, T0 + timedelta(minutes=16))
    step1 = settle([], first)
    assert (len(step1.raise_), step1.clear) == (1, [])
    alert = _open(step1.raise_[0], 1)
    later = breaches(RULES, facts, T0 + timedelta(minutes=40))
    assert settle([alert], later) == settle([alert], later)
    assert settle([alert], later).raise_ == []
    assert settle([alert], later).clear == []
    back = floor(seat("1001", S.READY, since=T0 + timedelta(minutes=41)))
    step3 = settle([alert], breaches(RULES, back, T0 + timedelta(minutes=42)))
    assert (step3.raise_, step3.clear) == ([], [alert])


def test_a_new_stay_in_the_state_is_a_new_episode() -> None:
    first = breaches(RULES, floor(seat("1001", S.NOT_READY)), T0 + timedelta(minutes=16))
    alert = _open(first[0], 1)
    again = seat("1001", S.NOT_READY, since=T0 + timedelta(minutes=20))
    second = breaches(RULES, floor(again), T0 + timedelta(minutes=36))
    outcome = settle([alert], second)
    assert outcome.clear == [alert]
    assert [b.started_at for b in outcome.raise_] == [T0 + timedelta(minutes=35)]


def test_the_break_count_episode_ends_with_the_day() -> None:
    today = breaches(RULES, floor(seat("1001", S.READY, breaks=4)), T0)
    alert = _open(today[0], 1)
    tomorrow = FloorFacts([seat("1001", S.READY, breaks=4)], [], "2026-12-04")
    outcome = settle([alert], breaches(RULES, tomorrow, T0 + timedelta(days=1)))
    assert outcome.clear == [alert]
    assert len(outcome.raise_) == 1


def test_events_carry_the_payload_and_are_keyed_by_the_alert() -> None:
    [breach] = breaches(RULES, floor(seat("1001", S.BREAK)), T0 + timedelta(seconds=660))
    alert = _open(breach, 7)
    raised = raised_event(alert)
    assert raised.type is EventType.FLOOR_ALERT
    assert raised.key == "floor:a7:raised"
    assert raised.data == {
        "id": "a7",
        "rule": "break_too_long",
        "severity": "warning",
        "agent_no": "1001",
        "skill_group": None,
        "value": 660,
        "threshold": 600,
        "started_at": "2026-12-03T01:10:00Z",
        "message": "Agent 1001 on break (小休) for 11 min, over the 10 min limit.",
        "extras": {},
    }
    done = cleared_event(replace(alert), T0 + timedelta(minutes=12))
    assert done.type is EventType.FLOOR_ALERT_CLEARED
    assert done.key == "floor:a7:cleared"
    assert done.data["cleared_at"] == "2026-12-03T01:12:00Z"
    assert done.data["id"] == "a7"


def test_a_threshold_under_a_minute_is_told_in_seconds() -> None:
    short = with_overrides(
        RULES,
        {"rules": {"break_too_long": {"enabled": True, "threshold": 5, "severity": "warning"}}},
    )
    [hit] = breaches(short, floor(seat("1001", S.BREAK)), T0 + timedelta(seconds=7))
    assert hit.message == "Agent 1001 on break (小休) for 7 s, over the 5 s limit."
    assert opened(hit, "a1", "t1", T0).payload()["value"] == 7
