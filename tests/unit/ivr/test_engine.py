"""The pure engine: time switch, step budget, visit limit, lookups and survey branching."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest

from ccbridge.domain.calendar import CalendarYear, merge_years
from ccbridge.domain.ivr.engine import CallContext
from ccbridge.domain.ivr.simulator import simulate
from ccbridge.ivr_format.parse import parse_flow


def flow(nodes: dict[str, Any], start: str = "t", **extra: Any) -> Any:
    parsed = parse_flow({"name": "t", "start": start, "nodes": nodes, **extra})
    assert parsed.errors == []
    return parsed.flow


def at(text: str) -> CallContext:
    return CallContext(now=datetime.fromisoformat(text), caller="13800138000")


SWITCH = {
    "open": "o",
    "closed": "c",
    "o": {"type": "queue", "skill_group": "open"},
    "c": {"type": "hangup"},
    "h": {"type": "hangup", "prompt": "holiday"},
}


def switch(**node: Any) -> Any:
    nodes = {
        "t": {"type": "time_switch", "open": "o", "closed": "c", **node},
        "o": SWITCH["o"],
        "c": SWITCH["c"],
    }
    if "holidays" in node:
        nodes["h"] = SWITCH["h"]
    return flow(nodes)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-12-06T09:00+08:00", "o"),  # Sunday counts: 7 days a week
        ("2026-12-06T08:59+08:00", "c"),
        ("2026-12-06T17:59+08:00", "o"),
        ("2026-12-06T18:00+08:00", "c"),
        ("2026-12-06T01:30+00:00", "o"),  # 09:30 in Shanghai
        ("2026-10-02T10:00+08:00", "h"),  # holiday greeting
    ],
)
def test_service_hours_in_tenant_zone(when: str, expected: str) -> None:
    f = switch(
        hours=[{"days": ["all"], "from": "09:00", "to": "18:00"}],
        holidays=[{"name": "国庆", "from": "2026-10-01", "to": "2026-10-07", "next": "h"}],
    )
    assert simulate(f, at(when)).path[-1] == expected


def test_seven_by_twenty_four_and_seasons() -> None:
    always = switch(always_open=True)
    assert simulate(always, at("2026-12-06T03:00+08:00")).path[-1] == "o"
    seasonal = switch(
        hours=[{"days": ["workdays"], "from": "09:00", "to": "18:00"}],
        seasons=[{"from": "12-01", "to": "02-28", "hours": [{"from": "10:00", "to": "16:00"}]}],
    )
    assert simulate(seasonal, at("2026-12-07T09:30+08:00")).path[-1] == "c"  # winter: from 10
    assert simulate(seasonal, at("2027-01-09T11:00+08:00")).path[-1] == "o"  # Saturday, winter
    assert simulate(seasonal, at("2026-06-06T11:00+08:00")).path[-1] == "c"  # Saturday, summer
    assert simulate(seasonal, at("2026-06-08T09:30+08:00")).path[-1] == "o"


def test_workdays_hours_follow_the_working_day_calendar() -> None:
    workdays = switch(hours=[{"days": ["workdays"], "from": "09:00", "to": "18:00"}])
    golden_week = tuple(date(2026, 10, d) for d in range(1, 8))
    cn = merge_years([CalendarYear(2026, golden_week, (date(2026, 10, 10),))])

    def on(when: str, calendar: Any = None) -> str:
        context = at(when) if calendar is None else replace(at(when), calendar=calendar)
        return str(simulate(workdays, context).path[-1])

    assert on("2026-10-05T10:00+08:00") == "o"  # a Monday, with no calendar loaded
    assert on("2026-10-05T10:00+08:00", cn) == "c"  # National Day week
    assert on("2026-10-10T10:00+08:00") == "c"  # a Saturday
    assert on("2026-10-10T10:00+08:00", cn) == "o"  # worked instead (调休)
    assert on("2026-10-12T10:00+08:00", cn) == "o"


def test_step_budget_ends_in_the_fallback_with_a_reason() -> None:
    f = flow(
        {
            "m": {
                "type": "menu",
                "prompt": "m",
                "options": {"1": {"next": "m"}},
                "on_fail": "q",
                "retries": 0,
            },
            "q": {"type": "queue", "skill_group": "s"},
        },
        start="m",
        max_steps=5,
        fallback={"route": "queue", "target": "fallback"},
    )
    sim = simulate(f, at("2026-12-01T10:00+08:00"), ["1"] * 20)
    assert (sim.result.route.value, sim.result.target, sim.result.reason) == (
        "queue",
        "fallback",
        "step_budget",
    )
    assert sim.path == ["m"] * 5
    assert sim.steps[-1].outcome == "step_budget"


def test_visit_limit_takes_on_limit() -> None:
    f = flow(
        {
            "m": {"type": "menu", "prompt": "m", "options": {"9": {"next": "r"}}, "on_fail": "q"},
            "r": {"type": "play", "prompt": "again", "next": "m", "max_visits": 2, "on_limit": "q"},
            "q": {"type": "queue", "skill_group": "s"},
        },
        start="m",
    )
    sim = simulate(f, at("2026-12-01T10:00+08:00"), ["9"] * 10)
    assert sim.path == ["m", "r", "m", "r", "m", "q"]


def test_crm_values_with_line_breaks_take_the_error_branch() -> None:
    nodes = {
        "l": {
            "type": "http_lookup",
            "url": "https://crm.example.com/c",
            "query": {"n": "{caller}"},
            "assign": {"tier": "level", "manager": "phone"},
            "next": "x",
            "on_error": "e",
        },
        "x": {"type": "transfer", "number": "{manager}"},
        "e": {"type": "queue", "skill_group": "s"},
    }
    f = flow(nodes, start="l")
    ok = simulate(
        f, at("2026-12-01T10:00+08:00"), lookups={"l": {"level": "vip", "phone": "13911112222"}}
    )
    assert (ok.result.route.value, ok.result.target) == ("transfer", "13911112222")
    assert ok.actions[0].query == {"n": "13800138000"}  # type: ignore[union-attr]
    bad = simulate(
        f,
        at("2026-12-01T10:00+08:00"),
        lookups={"l": {"level": "vip", "phone": "1\r\nEXEC System rm"}},
    )
    assert bad.path == ["l", "e"]
    assert bad.steps[0].outcome == "rejected"
    odd = simulate(f, at("2026-12-01T10:00+08:00"), lookups={"l": {"level": "x", "phone": "abc"}})
    assert odd.result.reason == "bad_transfer_number"
    down = simulate(f, at("2026-12-01T10:00+08:00"))
    assert down.path == ["l", "e"]


def test_survey_scores_and_ranges() -> None:
    f = flow(
        {
            "s": {
                "type": "survey",
                "question": "score",
                "scale": "score10",
                "prompt": "p",
                "branches": {"1-5": "low", "10": "top"},
                "next": "mid",
                "on_fail": "none",
            },
            "low": {"type": "hangup"},
            "top": {"type": "hangup"},
            "mid": {"type": "hangup"},
            "none": {"type": "hangup"},
        },
        start="s",
    )
    now = at("2026-12-01T10:00+08:00")
    assert simulate(f, now, ["3#"]).path[-1] == "low"
    assert simulate(f, now, ["10"]).path[-1] == "top"
    assert simulate(f, now, ["7"]).path[-1] == "mid"  # timeout after one key still answers 7
    assert simulate(f, now, ["11", "0#"]).path[-1] == "none"
    assert simulate(f, now, ["10"]).variables["survey_score"] == "10"
