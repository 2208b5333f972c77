"""Rules that depend on the tenant: skill groups it has, numbers it may dial now (at publish,
as faults with JSON paths; at call time, as a fallback with a reason)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from ccbridge.domain.dialing import NO_OUTBOUND, DialPolicy, OutboundRights
from ccbridge.domain.ivr.engine import CallContext
from ccbridge.domain.ivr.simulator import simulate
from ccbridge.domain.ivr.validation import tenant_faults
from ccbridge.domain.leases.model import SeatKind
from ccbridge.ivr_format.parse import parse_flow

OUTBOUND = OutboundRights(DialPolicy(), {SeatKind.INBOUND_OUTBOUND: 2})
INBOUND_ONLY = OutboundRights(DialPolicy(), {SeatKind.INBOUND: 5})
CALL = CallContext(now=datetime.fromisoformat("2026-12-01T10:00+08:00"), caller="13800138000")


def flow(nodes: dict[str, Any], **extra: Any) -> Any:
    parsed = parse_flow({"name": "t", "start": "m", "nodes": nodes, **extra})
    assert parsed.errors == []
    return parsed.flow


MENU = {
    "type": "menu",
    "prompt": "sys:beep",
    "options": {"1": {"next": "sales"}, "2": {"next": "boss"}, "3": {"next": "abroad"}},
    "on_fail": "collect",
}
NODES: dict[str, Any] = {
    "m": MENU,
    "sales": {"type": "queue", "skill_group": "sales"},
    "boss": {"type": "transfer", "number": "13911112222"},
    "abroad": {"type": "transfer", "number": "00442079460000"},
    "collect": {
        "type": "collect",
        "prompt": "sys:beep",
        "variable": "to",
        "next": "dial",
        "on_fail": "sales",
    },
    "dial": {"type": "transfer", "number": "{to}"},
}


def codes(f: Any, groups: set[str], rights: OutboundRights) -> dict[str, str]:
    return {e.path: e.code for e in tenant_faults(f, groups, rights)}


def test_every_tenant_fault_is_named_by_its_json_path() -> None:
    f = flow(NODES, fallback={"route": "queue", "target": "service"})
    assert codes(f, {"sales"}, OUTBOUND) == {
        "$.fallback.target": "unknown_skill_group",
        "$.nodes.abroad.number": "number_not_allowed",
    }
    assert codes(f, set(), INBOUND_ONLY) == {
        "$.fallback.target": "unknown_skill_group",
        "$.nodes.sales.skill_group": "unknown_skill_group",
        "$.nodes.boss.number": "transfer_not_leased",
        "$.nodes.abroad.number": "transfer_not_leased",
        "$.nodes.dial.number": "transfer_not_leased",  # a {variable} still needs the seat kind
    }
    wide = replace(OUTBOUND, policy=DialPolicy(allow=("0", "1", "0044"), deny=("00",)))
    assert codes(f, {"sales", "service"}, wide) == {}


def test_a_transfer_fallback_is_checked_too() -> None:
    f = flow({"m": {"type": "hangup"}}, fallback={"route": "transfer", "target": "0033123456"})
    assert codes(f, set(), OUTBOUND) == {"$.fallback.target": "number_not_allowed"}
    bad = parse_flow(
        {
            "name": "t",
            "start": "m",
            "nodes": {"m": {"type": "hangup"}},
            "fallback": {"route": "transfer", "target": "boss"},
        }
    )
    assert [(e.path, e.code) for e in bad.errors] == [("$.fallback.target", "bad_transfer_number")]


def test_at_call_time_a_refused_transfer_takes_the_fallback_with_a_reason() -> None:
    f = flow(NODES, fallback={"route": "queue", "target": "sales"})
    ok = simulate(f, replace(CALL, dial=OUTBOUND), ["2"])
    assert (ok.result.route.value, ok.result.target, ok.result.reason) == (
        "transfer",
        "13911112222",
        "flow",
    )
    # the lease lost its outbound seats after publishing
    gone = simulate(f, replace(CALL, dial=INBOUND_ONLY), ["2"])
    assert (gone.result.route.value, gone.result.target) == ("queue", "sales")
    assert gone.result.reason == "transfer_not_allowed"
    assert gone.steps[-1].as_dict() == {
        "node": "boss",
        "type": "transfer",
        "input": "13911112222",
        "outcome": "capability_not_leased",
    }
    # a collected number is checked against the dial policy on the call
    typed = simulate(f, replace(CALL, dial=OUTBOUND), ["", "", "", "00861391#"])
    assert typed.result.reason == "transfer_not_allowed"
    assert typed.steps[-1].outcome == "number_not_allowed"
    # without rights (the offline simulator) only the number's form is checked
    assert simulate(f, CALL, ["3"]).result.route.value == "transfer"


def test_a_refused_transfer_fallback_hangs_up() -> None:
    f = flow(
        {"m": {"type": "transfer", "number": "{nobody}"}},
        fallback={"route": "transfer", "target": "13911112222"},
    )
    allowed = simulate(f, replace(CALL, dial=OUTBOUND))
    assert (allowed.result.route.value, allowed.result.reason) == (
        "transfer",
        "bad_transfer_number",
    )
    refused = simulate(f, replace(CALL, dial=NO_OUTBOUND))
    assert (refused.result.route.value, refused.result.target) == ("hangup", "")
    assert refused.result.reason == "bad_transfer_number"
    assert refused.steps[-1].outcome == "transfer_not_allowed"
