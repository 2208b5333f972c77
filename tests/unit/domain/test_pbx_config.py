"""Comparing what ccbridge expects on the PBX with what QueueStatus reported."""

from __future__ import annotations

from ccbridge.domain.acd.pbx_config import PbxInventory, absent_members, compare

SEEN = PbxInventory(
    frozenset({"t1-sales", "admin-own"}),
    frozenset({("t1-sales", "PJSIP/2001")}),
)


def test_missing_queues_are_named_and_extra_queues_are_not_ours() -> None:
    report = compare(["t1-support", "t1-sales", "t1-support"], [], SEEN)
    assert report.missing_queues == ("t1-support",)
    assert report.expected_queues == 2
    assert not report.ok
    assert report.summary() == "the PBX does not report queue(s) t1-support"


def test_a_member_counts_as_missing_only_when_it_was_missing_before() -> None:
    members = [("t1-sales", "PJSIP/2001"), ("t1-sales", "PJSIP/2002")]
    first = compare(["t1-sales"], members, SEEN)
    assert first.ok  # 2002 may have signed in a moment ago
    baseline = absent_members(members, SEEN)
    assert baseline == {("t1-sales", "PJSIP/2002")}
    second = compare(["t1-sales"], members, SEEN, previously_missing=baseline)
    assert second.missing_members == (("t1-sales", "PJSIP/2002"),)
    assert "t1-sales/PJSIP/2002" in second.summary()


def test_members_of_a_missing_queue_are_reported_through_the_queue() -> None:
    members = [("t1-vip", "PJSIP/2001")]
    report = compare(["t1-vip"], members, SEEN, previously_missing=members)
    assert report.missing_queues == ("t1-vip",)
    assert report.missing_members == ()


def test_nothing_missing_is_ok() -> None:
    report = compare(["t1-sales"], [("t1-sales", "PJSIP/2001")], SEEN)
    assert report.ok
    assert report.summary() == "the PBX has all 1 queue(s) ccbridge owns"
