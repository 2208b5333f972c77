"""The pure routing policy: the weighted split, and each rule's part in the decision."""

from __future__ import annotations

from collections import Counter

import pytest

from ccbridge.domain.acd.routing import (
    DEFAULT_QUEUE_SECONDS,
    CallFacts,
    MaxWaitAction,
    MaxWaitRule,
    OverflowRule,
    PolicyError,
    RoutingPolicy,
    SplitShare,
    StickyRule,
    VipRule,
    WeightedSplit,
    check_policy,
    crm_says_vip,
    decide,
    is_vip_caller,
)

SIMULATED_CALLS = 10_000
TOLERANCE = 0.02


@pytest.mark.parametrize(
    "weights",
    [
        {"outsourced": 70, "inhouse": 30},
        {"a": 50, "b": 30, "c": 20},
        {"a": 1, "b": 2},
        {"a": 997, "b": 3},
    ],
)
def test_split_over_10000_calls_lands_within_2_percent_of_the_weights(
    weights: dict[str, int],
) -> None:
    split = WeightedSplit([SplitShare(g, w) for g, w in weights.items()])
    got = Counter(split.pick() for _ in range(SIMULATED_CALLS))
    total = sum(weights.values())
    for group, weight in weights.items():
        share = got[group] / SIMULATED_CALLS
        assert abs(share - weight / total) <= TOLERANCE, (group, share)
        # Smooth weighted round robin is exact to one call over any run.
        assert abs(got[group] - SIMULATED_CALLS * weight / total) <= 1


def test_split_interleaves_instead_of_running_one_group_dry() -> None:
    split = WeightedSplit([SplitShare("out", 70), SplitShare("in", 30)])
    first_ten = [split.pick() for _ in range(10)]
    assert first_ten.count("out") == 7
    assert first_ten.count("in") == 3
    assert "in" in first_ten[:4]  # not seven "out" before the first "in"


def test_split_is_deterministic() -> None:
    shares = [SplitShare("a", 3), SplitShare("b", 2)]
    one, two = WeightedSplit(shares), WeightedSplit(shares)
    assert [one.pick() for _ in range(50)] == [two.pick() for _ in range(50)]


POLICY = RoutingPolicy(
    group="hotline",
    split=(SplitShare("outsourced", 70), SplitShare("inhouse", 30)),
    languages={"en": "english"},
    vip=VipRule(priority=10, callers=frozenset({"13800138000"})),
    sticky=StickyRule(ring_seconds=15),
    overflow=OverflowRule(after_seconds=60, group="backup"),
    max_wait=MaxWaitRule(seconds=240, action=MaxWaitAction.CALLBACK),
)


def test_language_wins_over_the_split() -> None:
    got = decide(POLICY, CallFacts("13900000000", language="en"), "outsourced")
    assert (got.group, got.reason) == ("english", "language")
    other = decide(POLICY, CallFacts("13900000000", language="fr"), "inhouse")
    assert (other.group, other.reason) == ("inhouse", "split")


def test_without_split_or_language_the_entry_group_takes_the_call() -> None:
    plain = RoutingPolicy(group="sales")
    got = decide(plain, CallFacts("13900000000"), None)
    assert (got.group, got.queue_seconds, got.reason) == ("sales", DEFAULT_QUEUE_SECONDS, "default")
    assert got.on_max_wait is None
    assert got.overflow_group is None
    assert got.priority == 0


def test_vip_gets_the_priority_and_others_none() -> None:
    assert decide(POLICY, CallFacts("1", vip=True), "inhouse").priority == 10
    assert decide(POLICY, CallFacts("1", vip=False), "inhouse").priority == 0


def test_vip_list_matches_the_national_and_e164_forms_and_crm_fields() -> None:
    rule = VipRule(priority=5, callers=frozenset({"13800138000"}))
    assert is_vip_caller(rule, "13800138000")
    assert is_vip_caller(rule, "+8613800138000")
    assert not is_vip_caller(rule, "13900000000")
    assert crm_says_vip(rule, {"vip": "True "})
    assert not crm_says_vip(rule, {"vip": "no"})
    assert not crm_says_vip(rule, {})


def test_sticky_rings_the_owner_only_when_their_phone_is_known() -> None:
    got = decide(POLICY, CallFacts("1", owner_agent="1101", owner_interface="PJSIP/1101"), "x")
    assert (got.sticky_agent, got.sticky_interface, got.sticky_seconds) == (
        "1101",
        "PJSIP/1101",
        15,
    )
    none = decide(POLICY, CallFacts("1", owner_agent="1101"), "x")
    assert none.sticky_interface is None
    assert none.sticky_seconds == 0


def test_overflow_and_max_wait_share_the_total_wait() -> None:
    got = decide(POLICY, CallFacts("1"), "outsourced")
    assert (got.queue_seconds, got.overflow_group, got.overflow_seconds) == (60, "backup", 180)
    assert got.on_max_wait is MaxWaitAction.CALLBACK
    # A call already routed to the overflow group does not overflow into itself.
    same = decide(POLICY, CallFacts("1"), "backup")
    assert (same.queue_seconds, same.overflow_group) == (240, None)


def test_voicemail_at_max_wait_carries_the_mailbox() -> None:
    policy = RoutingPolicy("sales", max_wait=MaxWaitRule(120, MaxWaitAction.VOICEMAIL, "100@t1"))
    got = decide(check_policy(policy), CallFacts("1"), None)
    assert (got.queue_seconds, got.on_max_wait, got.mailbox) == (
        120,
        MaxWaitAction.VOICEMAIL,
        "100@t1",
    )


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (RoutingPolicy("a b"), "group"),
        (RoutingPolicy("s", split=(SplitShare("x", 0),)), "split.0.weight"),
        (RoutingPolicy("s", split=(SplitShare("x", 1), SplitShare("x", 2))), "split.1.group"),
        (RoutingPolicy("s", languages={"English!": "x"}), "languages.English!"),
        (RoutingPolicy("s", vip=VipRule(priority=0, callers=frozenset({"123"}))), "vip.priority"),
        (RoutingPolicy("s", vip=VipRule(priority=1, callers=frozenset({"12a"}))), "vip.callers"),
        (RoutingPolicy("s", vip=VipRule(priority=1)), "vip"),
        (RoutingPolicy("s", sticky=StickyRule(ring_seconds=1)), "sticky"),
        (
            RoutingPolicy(
                "s",
                overflow=OverflowRule(120, "b"),
                max_wait=MaxWaitRule(100, MaxWaitAction.CALLBACK),
            ),
            "overflow.after_seconds",
        ),
        (
            RoutingPolicy("s", max_wait=MaxWaitRule(100, MaxWaitAction.VOICEMAIL)),
            "max_wait.mailbox",
        ),
        (RoutingPolicy("s", max_wait=MaxWaitRule(5, MaxWaitAction.CALLBACK)), "max_wait.seconds"),
    ],
)
def test_a_policy_that_cannot_apply_names_the_field(policy: RoutingPolicy, field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        check_policy(policy)
    assert caught.value.field == field


def test_groups_lists_every_group_a_call_can_reach() -> None:
    assert POLICY.groups() == {"hotline", "outsourced", "inhouse", "english", "backup"}
