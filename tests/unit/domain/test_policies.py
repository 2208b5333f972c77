"""Per-tenant seat rules: break limits, floor cap, not-ready alert, sign-in of agents."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ccbridge.domain.agents.policy import (
    Allowed,
    BreakPolicy,
    DailyCounter,
    Queued,
    RefusalCode,
    Refused,
    check_agent_sign_in,
    check_break,
)
from ccbridge.domain.calendar import local_date

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_contract_defaults() -> None:
    policy = BreakPolicy()
    assert (policy.max_per_day, policy.floor_cap) == (3, 3)
    assert not policy.queue_when_floor_full


@pytest.mark.parametrize("taken", [0, 1, 2])
def test_three_breaks_a_day_are_allowed(taken: int) -> None:
    assert check_break(BreakPolicy(), taken, 0) == Allowed()


def test_fourth_break_of_the_day_is_refused() -> None:
    refused = check_break(BreakPolicy(), 3, 0)
    assert refused == Refused(
        RefusalCode.BREAK_LIMIT_PER_DAY,
        "You have already taken 3 of 3 breaks today; "
        "further breaks need the shift lead's approval.",
    )


def test_fourth_agent_of_the_floor_is_refused() -> None:
    assert check_break(BreakPolicy(), 0, 2) == Allowed()
    refused = check_break(BreakPolicy(), 0, 3)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.FLOOR_BREAK_CAP
    assert "3 agents of your floor are already on break (limit 3)" in refused.message


def test_fourth_agent_is_queued_when_the_tenant_says_so() -> None:
    queued = check_break(BreakPolicy(queue_when_floor_full=True), 0, 3)
    assert isinstance(queued, Queued)
    assert "starts as soon as one of them is back" in queued.message


def test_daily_limit_wins_over_queueing() -> None:
    refused = check_break(BreakPolicy(queue_when_floor_full=True), 3, 3)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.BREAK_LIMIT_PER_DAY


def test_outbound_projects_have_no_daily_or_floor_limit() -> None:
    policy = BreakPolicy.outbound_project()
    assert check_break(policy, 10, 10) == Allowed()


def test_daily_counter_resets_at_tenant_local_midnight() -> None:
    today = local_date(NOW)
    counter = DailyCounter().incremented(today).incremented(today)
    assert counter.on(today) == 2
    # 16:00 UTC is midnight in Shanghai: a new day there.
    tomorrow = local_date(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    assert tomorrow == date(2026, 11, 24)
    assert counter.on(tomorrow) == 0
    assert counter.incremented(tomorrow) == DailyCounter(tomorrow, 1)


def test_uncertified_agent_cannot_sign_in() -> None:
    refused = check_agent_sign_in("1001", certified=False, already_signed_in=False)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.AGENT_NOT_CERTIFIED
    assert refused.message.startswith("Agent 1001 is not certified")


def test_one_active_sign_in_per_agent_number() -> None:
    refused = check_agent_sign_in("1001", certified=True, already_signed_in=True)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.ALREADY_SIGNED_IN
    assert check_agent_sign_in("1001", certified=True, already_signed_in=False) == Allowed()
