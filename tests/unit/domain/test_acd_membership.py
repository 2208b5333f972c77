"""plan_repairs: the reconciler's diff between desired (DB) and actual (QueueStatus) members."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccbridge.domain.acd.membership import (
    AddMember,
    DriftKind,
    QueueMemberSpec,
    RemoveMember,
    Repair,
    SetPaused,
    SetPenalty,
    penalty_for_level,
    plan_repairs,
    queue_name,
)

MANAGED = {"t1-sales", "t1-support"}


def spec(
    queue: str = "t1-sales",
    iface: str = "PJSIP/1001",
    *,
    name: str = "1001 张伟",
    penalty: int = 0,
    paused: bool = False,
    reason: str = "",
) -> QueueMemberSpec:
    return QueueMemberSpec(queue, iface, name, penalty, paused, reason)


# --- queue names -----------------------------------------------------------------------------


def test_queue_name_is_tenant_prefixed() -> None:
    assert queue_name("t1", "sales") == "t1-sales"
    assert queue_name("Tenant_2", "vip-support") == "Tenant_2-vip-support"


@pytest.mark.parametrize(
    ("tenant", "group"),
    [
        ("", "sales"),
        ("t1", ""),
        ("t 1", "sales"),
        ("t1", "sales]"),
        ("t1", "sa\nles"),
        ("t1", "销售"),
        ("t1", "a.b"),
        ("../t1", "x"),
        ("t1", "x" * 100),
    ],
)
def test_queue_name_rejects_anything_else(tenant: str, group: str) -> None:
    with pytest.raises(ValueError, match=r"must match|longer than"):
        queue_name(tenant, group)


def test_penalty_from_skill_level() -> None:
    assert penalty_for_level(10) == 0
    assert penalty_for_level(1) == 9
    with pytest.raises(ValueError, match="skill level"):
        penalty_for_level(0)
    with pytest.raises(ValueError, match="skill level"):
        penalty_for_level(11)


def test_spec_normalises_and_validates() -> None:
    assert spec(paused=False, reason="小休").reason == ""
    assert spec(paused=True, reason="小休").reason == "小休"
    with pytest.raises(ValueError, match="penalty"):
        spec(penalty=-1)
    with pytest.raises(ValueError, match="interface"):
        spec(iface="")


# --- plan_repairs cases ----------------------------------------------------------------------


def test_nothing_to_do() -> None:
    members = [spec(), spec("t1-support", paused=True, reason="lunch", penalty=3)]
    assert plan_repairs(members, list(reversed(members)), MANAGED) == []


def test_missing_member_is_added() -> None:
    want = spec(paused=True, reason="小休 break", penalty=2)
    [repair] = plan_repairs([want], [], MANAGED)
    assert repair == AddMember(want)
    assert repair.kind is DriftKind.MISSING
    assert (repair.queue, repair.interface) == ("t1-sales", "PJSIP/1001")


def test_phantom_in_managed_queue_is_removed() -> None:
    [repair] = plan_repairs([], [spec()], MANAGED)
    assert repair == RemoveMember("t1-sales", "PJSIP/1001")
    assert repair.kind is DriftKind.PHANTOM


def test_phantom_in_unmanaged_queue_is_left_alone() -> None:
    assert plan_repairs([], [spec("admin-queue")], MANAGED) == []


def test_desired_in_unmanaged_queue_is_ignored() -> None:
    assert plan_repairs([spec("admin-queue")], [], MANAGED) == []


def test_wrong_pause_state() -> None:
    [repair] = plan_repairs([spec(paused=False)], [spec(paused=True, reason="x")], MANAGED)
    assert repair == SetPaused("t1-sales", "PJSIP/1001", False, "")
    assert repair.kind is DriftKind.WRONG_PAUSE
    [repair] = plan_repairs([spec(paused=True, reason="小休")], [spec()], MANAGED)
    assert repair == SetPaused("t1-sales", "PJSIP/1001", True, "小休")


def test_wrong_reason_is_a_pause_drift() -> None:
    [repair] = plan_repairs(
        [spec(paused=True, reason="training")], [spec(paused=True, reason="lunch")], MANAGED
    )
    assert repair == SetPaused("t1-sales", "PJSIP/1001", True, "training")


def test_wrong_penalty_comes_before_the_pause_fix() -> None:
    repairs = plan_repairs([spec(penalty=2)], [spec(penalty=5, paused=True, reason="x")], MANAGED)
    assert repairs == [
        SetPenalty("t1-sales", "PJSIP/1001", 2),
        SetPaused("t1-sales", "PJSIP/1001", False, ""),
    ]
    assert repairs[0].kind is DriftKind.WRONG_PENALTY


def test_member_name_is_not_a_drift() -> None:
    assert plan_repairs([spec(name="new")], [spec(name="old")], MANAGED) == []


def test_order_is_deterministic() -> None:
    desired = [spec("t1-support", "PJSIP/1002"), spec("t1-sales", "PJSIP/1003"), spec()]
    actual = [spec("t1-sales", "PJSIP/1009"), spec("t1-support", "PJSIP/1001")]
    plan = plan_repairs(desired, actual, MANAGED)
    assert plan == plan_repairs(list(reversed(desired)), list(reversed(actual)), MANAGED)
    assert [(r.queue, r.interface) for r in plan] == [
        ("t1-sales", "PJSIP/1001"),
        ("t1-sales", "PJSIP/1003"),
        ("t1-sales", "PJSIP/1009"),
        ("t1-support", "PJSIP/1001"),
        ("t1-support", "PJSIP/1002"),
    ]


def test_duplicate_desired_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        plan_repairs([spec(), spec(penalty=1)], [], MANAGED)


# --- property: applying the plan converges ---------------------------------------------------

QUEUES = ["t1-sales", "t1-support", "admin-queue"]
IFACES = [f"PJSIP/10{i:02d}" for i in range(8)]


def apply(actual: list[QueueMemberSpec], plan: list[Repair]) -> dict[tuple[str, str], tuple]:
    """Apply repairs the way Asterisk would; return (penalty, paused, reason) per member."""
    state = {m.key: (m.penalty, m.paused, m.reason) for m in actual}
    for r in plan:
        key = (r.queue, r.interface)
        match r:
            case AddMember(spec=s):
                assert key not in state
                state[key] = (s.penalty, s.paused, s.reason)
            case RemoveMember():
                del state[key]
            case SetPaused(paused=p, reason=why):
                state[key] = (state[key][0], p, why if p else "")
            case SetPenalty(penalty=pen):
                state[key] = (pen, *state[key][1:])
    return state


@st.composite
def members(draw: st.DrawFn) -> list[QueueMemberSpec]:
    keys = draw(st.lists(st.tuples(st.sampled_from(QUEUES), st.sampled_from(IFACES)), unique=True))
    out = []
    for q, i in keys:
        paused = draw(st.booleans())
        out.append(
            QueueMemberSpec(
                q,
                i,
                draw(st.sampled_from(["a", "b"])),
                draw(st.integers(0, 3)),
                paused,
                draw(st.sampled_from(["", "lunch", "小休 break"])),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(desired=members(), actual=members())
def test_applying_the_plan_yields_desired_on_managed_queues(
    desired: list[QueueMemberSpec], actual: list[QueueMemberSpec]
) -> None:
    plan = plan_repairs(desired, actual, MANAGED)
    after = apply(actual, plan)
    managed_after = {k: v for k, v in after.items() if k[0] in MANAGED}
    want = {m.key: (m.penalty, m.paused, m.reason) for m in desired if m.queue in MANAGED}
    assert managed_after == want
    untouched = {m.key: (m.penalty, m.paused, m.reason) for m in actual if m.queue not in MANAGED}
    assert {k: v for k, v in after.items() if k[0] not in MANAGED} == untouched
    assert (
        plan_repairs(
            desired, [QueueMemberSpec(k[0], k[1], "x", *v) for k, v in after.items()], MANAGED
        )
        == []
    )
