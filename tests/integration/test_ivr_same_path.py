"""Each example flow through the offline simulator and through the FastAGI server driven by the
fake PBX (a fake caller pressing keys): both must take the same path to the same end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.domain.ivr.engine import Ask, CallContext, Play
from ccbridge.domain.ivr.simulator import parse_digits, simulate
from ccbridge.testing.fake_agi import AgiCall
from ccbridge.testing.fake_ivr_caller import FakeIvrCaller
from tests.fakes.ivr import ListSink, StaticFlows, load_example

DID = "4008001234"
CASES = [
    # (example, digits, local time, caller, expected end)
    ("main_menu_bilingual.yaml", "1,1", "2026-12-01T10:00+08:00", "13800000001", "t1-sales"),
    ("main_menu_bilingual.yaml", "2,2", "2026-12-01T10:00+08:00", "13900000001", "t1-vip"),
    ("main_menu_bilingual.yaml", "1,2", "2026-12-01T10:00+08:00", "13800000001", "t1-service"),
    ("main_menu_bilingual.yaml", "2,9,9,3", "2026-12-01T17:59+08:00", "13800000001", "hangup"),
    ("main_menu_bilingual.yaml", "1,7,,", "2026-12-01T10:00+08:00", "13800000001", "t1-service"),
    (
        "main_menu_bilingual.yaml",
        "1,9,9,9,9",
        "2026-12-01T10:00+08:00",
        "13800000001",
        "t1-service",
    ),
    ("main_menu_bilingual.yaml", "", "2026-12-01T18:00+08:00", "13800000001", "voicemail"),
    ("main_menu_bilingual.yaml", "2,1", "2026-10-03T11:00+08:00", "13800000001", "t1-sales"),
    ("return_visit_survey.yaml", "1,1,1,2,9", "2026-12-01T10:00+08:00", "13800000001", "hangup"),
    (
        "return_visit_survey.yaml",
        "1,2,3,1,3#,1",
        "2026-12-01T10:00+08:00",
        "1380000",
        "t1-complaints",
    ),
    ("return_visit_survey.yaml", "1,1,4,2,1,10", "2026-12-01T10:00+08:00", "13800000001", "hangup"),
    ("return_visit_survey.yaml", "2", "2026-12-01T10:00+08:00", "13800000001", "hangup"),
    ("after_hours_voicemail.json", "", "2026-12-01T10:00+08:00", "13800000001", "t1-service"),
    ("after_hours_voicemail.json", "2", "2026-12-05T10:00+08:00", "13800000001", "hangup"),
    ("after_hours_voicemail.json", "", "2026-07-04T10:00+08:00", "13800000001", "t1-service"),
    ("after_hours_voicemail.json", "1", "2026-12-01T20:00+08:00", "13800000001", "voicemail"),
]


@pytest.fixture
async def pbx_side() -> AsyncIterator[tuple[FastAgiServer, ListSink, dict[str, object]]]:
    state: dict[str, object] = {}
    sink = ListSink()
    flows = StaticFlows({})
    state["flows"] = flows

    def now() -> datetime:
        value = state["now"]
        assert isinstance(value, datetime)
        return value

    runner = IvrRunner(flows, sink, now)
    router = AgiRouter()
    router.add_route(
        SCRIPT, InboundRouteHandler({DID: InboundRoute("t1", "t1-sales")}, None, runner)
    )
    server = FastAgiServer(AgiServerConfig(port=0), router)
    await server.start()
    try:
        yield server, sink, state
    finally:
        await server.stop()


def _end(variables: dict[str, str]) -> str:
    route = variables.get("CCB_ROUTE", "")
    return variables.get("CCB_QUEUE", "") if route == "queue" else route


@pytest.mark.parametrize(("example", "digits", "at", "caller", "expected"), CASES)
async def test_simulator_and_fastagi_take_the_same_path(
    pbx_side: tuple[FastAgiServer, ListSink, dict[str, object]],
    example: str,
    digits: str,
    at: str,
    caller: str,
    expected: str,
) -> None:
    server, sink, state = pbx_side
    flow = load_example(example)
    when = datetime.fromisoformat(at)
    state["now"] = when
    flows = state["flows"]
    assert isinstance(flows, StaticFlows)
    flows.flows["t1"] = flow

    sim = simulate(flow, CallContext(now=when, caller=caller, did=DID), parse_digits(digits))

    fake = FakeIvrCaller(
        f"agi://127.0.0.1:{server.port}/{SCRIPT}",
        AgiCall(callerid=caller, dnid=DID),
        dtmf=parse_digits(digits),
    )
    result = await fake.run()

    assert result.ended_normally
    (logged,) = sink.records
    assert logged.path == sim.path
    assert logged.steps == [s.as_dict() for s in sim.steps]
    assert (logged.route, logged.target, logged.reason) == (
        sim.result.route.value,
        sim.result.target,
        sim.result.reason,
    )
    played = [f"ccbridge/t1/{a.prompt}" for a in sim.actions if isinstance(a, Play | Ask)]
    assert fake.played == played
    assert _end(result.variables_set) == expected
    assert result.variables_set["CCB_TENANT"] == "t1"


async def test_caller_hangs_up_mid_menu_same_drop_off_node(
    pbx_side: tuple[FastAgiServer, ListSink, dict[str, object]],
) -> None:
    server, sink, state = pbx_side
    flow = load_example("main_menu_bilingual.yaml")
    when = datetime.fromisoformat("2026-12-01T10:00+08:00")
    state["now"] = when
    flows = state["flows"]
    assert isinstance(flows, StaticFlows)
    flows.flows["t1"] = flow
    sim = simulate(flow, CallContext(now=when, caller="1380"), ["1"], hangup_after_inputs=1)
    fake = FakeIvrCaller(
        f"agi://127.0.0.1:{server.port}/{SCRIPT}", AgiCall(dnid=DID), dtmf=["1"], hangup_at_input=2
    )
    result = await fake.run()
    (logged,) = sink.records
    assert logged.path == sim.path == ["hours", "choose_language", "main_menu"]
    assert logged.reason == sim.result.reason == "caller_hung_up"
    assert logged.drop_off_node == "main_menu"
    assert "CCB_ROUTE" not in result.variables_set


async def test_tenant_without_a_flow_keeps_the_did_queue(
    pbx_side: tuple[FastAgiServer, ListSink, dict[str, object]],
) -> None:
    server, sink, _state = pbx_side
    fake = FakeIvrCaller(f"agi://127.0.0.1:{server.port}/{SCRIPT}", AgiCall(dnid=DID))
    result = await fake.run()
    assert result.variables_set["CCB_QUEUE"] == "t1-sales"
    assert "CCB_ROUTE" not in result.variables_set
    assert sink.records == []
