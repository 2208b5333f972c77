"""The inbound FastAGI route, driven over TCP by the fake Asterisk's AGI client."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.ami.normalize import STICKY_FILE_VAR
from ccbridge.asterisk.inbound_route import (
    SCRIPT,
    InboundRoute,
    InboundRouteHandler,
    apply_decision,
)
from ccbridge.domain.access import TenantStatus
from ccbridge.domain.acd.routing import RoutingDecision
from ccbridge.domain.inbound_numbers import InboundNumber, NumberKind, NumberTarget, TargetType
from ccbridge.domain.recordings.model import RecordingPolicy
from ccbridge.domain.recordings.pbx_names import MONITOR_FORMAT
from ccbridge.services.pbx_recording_names import PbxRecordingNames
from ccbridge.services.tenant_status import TenantStatusCache
from ccbridge.testing.fake_agi import AgiCall, FakeAgiClient
from ccbridge.testing.fake_pbx import SHIPPED_CHANNELVARS

ROUTES = {"4008001234": InboundRoute("t1", "t1-sales")}


async def _server(handler: InboundRouteHandler) -> FastAgiServer:
    router = AgiRouter()
    router.add_route(SCRIPT, handler)
    server = FastAgiServer(AgiServerConfig(port=0), router)
    await server.start()
    return server


@pytest.fixture
async def routed() -> AsyncIterator[tuple[FastAgiServer, InboundRouteHandler]]:
    handler = InboundRouteHandler(ROUTES, fallback=None)
    server = await _server(handler)
    yield server, handler
    await server.stop()


async def _call(server: FastAgiServer, dnid: str) -> dict[str, str]:
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    result = await FakeAgiClient(url, AgiCall(dnid=dnid, extension=dnid)).run()
    return result.variables_set if not result.hung_up else {"hung_up": "yes"}


async def test_known_did_sets_tenant_did_and_queue(
    routed: tuple[FastAgiServer, InboundRouteHandler],
) -> None:
    server, _ = routed
    assert await _call(server, "4008001234") == {
        "CCB_TENANT": "t1",
        "CCB_DID": "4008001234",
        "CCB_QUEUE": "t1-sales",
    }


async def test_unknown_did_without_fallback_hangs_up_and_counts(
    routed: tuple[FastAgiServer, InboundRouteHandler],
) -> None:
    server, handler = routed
    assert await _call(server, "4009999999") == {"hung_up": "yes"}
    assert handler.unrouted == 1


async def test_hostile_dnid_never_reaches_a_command() -> None:
    handler = InboundRouteHandler(ROUTES, fallback=InboundRoute("t1", "t1-support"))
    server = await _server(handler)
    try:
        # CVE-2010-0685 style: an extension that would add a call leg if passed on raw.
        got = await _call(server, "100&DAHDI/g1/4165551212")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t1", "CCB_QUEUE": "t1-support"}


async def test_unknown_dnid_falls_back_to_the_extension(
    routed: tuple[FastAgiServer, InboundRouteHandler],
) -> None:
    # Seen on a real Asterisk 22.10.1: Local channels and some trunks send agi_dnid: unknown.
    server, _ = routed
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    result = await FakeAgiClient(url, AgiCall(dnid="unknown", extension="4008001234")).run()
    assert result.variables_set["CCB_QUEUE"] == "t1-sales"
    assert result.variables_set["CCB_DID"] == "4008001234"


async def test_numbers_of_a_tenant_that_is_not_active_are_unrouted() -> None:
    """A suspended or terminated tenant's number gets what an unknown number gets: the
    fallback route, or a hang-up; the status is read once per tenant, not once per call."""
    status = {"t1": TenantStatus.SUSPENDED, "t2": TenantStatus.ACTIVE}
    reads: list[str] = []

    async def read(tenant: str) -> TenantStatus | None:
        reads.append(tenant)
        return status.get(tenant)

    cache = TenantStatusCache(read, monotonic=lambda: 0.0)
    routes = {**ROUTES, "4008005678": InboundRoute("t2", "t2-sales")}
    no_fallback = InboundRouteHandler(routes, fallback=None, tenant_closed=cache.is_closed)
    server = await _server(no_fallback)
    try:
        assert await _call(server, "4008001234") == {"hung_up": "yes"}
        assert await _call(server, "4008001234") == {"hung_up": "yes"}
        assert no_fallback.unrouted == 2
        assert (await _call(server, "4008005678"))["CCB_QUEUE"] == "t2-sales"
        cache.changed("t1", TenantStatus.ACTIVE)  # reinstated: routed again at once
        assert (await _call(server, "4008001234"))["CCB_QUEUE"] == "t1-sales"
        cache.changed("t1", TenantStatus.TERMINATED)
        assert await _call(server, "4008001234") == {"hung_up": "yes"}
    finally:
        await server.stop()
    assert sorted(reads) == ["t1", "t2"]

    fallback = InboundRouteHandler(
        ROUTES, fallback=InboundRoute("t2", "t2-sales"), tenant_closed=cache.is_closed
    )
    server = await _server(fallback)
    try:
        got = await _call(server, "4008001234")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t2", "CCB_DID": "4008001234", "CCB_QUEUE": "t2-sales"}
    assert fallback.unrouted == 0

    unknown = InboundRouteHandler(
        {"4008009999": InboundRoute("t-not-in-db", "q")}, None, tenant_closed=cache.is_closed
    )
    server = await _server(unknown)
    try:  # a route to a tenant the database does not know still works, as before
        assert (await _call(server, "4008009999"))["CCB_QUEUE"] == "q"
    finally:
        await server.stop()


class _Numbers:
    """NumberLookup over a dict of assigned numbers."""

    def __init__(self, numbers: dict[str, InboundNumber]) -> None:
        self.numbers = numbers

    async def lookup(self, did: str) -> InboundNumber | None:
        return self.numbers.get(did)


class _BrokenPolicies:
    """GroupRouter whose policy store fails."""

    async def route(
        self, tenant_id: str, group: str, caller: str, language: object = None
    ) -> RoutingDecision | None:
        raise RuntimeError("policy store down")


def _number(did: str, target: NumberTarget | None) -> InboundNumber:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return InboundNumber(did, "t1", NumberKind.TOLL_FREE_400, target, "", at, "t", at, "t")


async def test_assigned_numbers_win_over_fixed_routes_and_a_broken_policy_still_queues() -> None:
    numbers = _Numbers({"4008001234": _number("4008001234", NumberTarget(TargetType.GROUP, "vip"))})
    handler = InboundRouteHandler(
        ROUTES, fallback=None, numbers=numbers, policies=_BrokenPolicies()
    )
    server = await _server(handler)
    try:
        with capture_logs() as logs:
            got = await _call(server, "4008001234")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t1", "CCB_DID": "4008001234", "CCB_QUEUE": "t1-vip"}
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["routing_policy_failed"]


async def test_a_number_without_target_and_without_flow_sets_no_queue() -> None:
    handler = InboundRouteHandler({}, None, numbers=_Numbers({"95555": _number("95555", None)}))
    server = await _server(handler)
    try:
        got = await _call(server, "95555")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t1", "CCB_DID": "95555"}  # the dialplan plays ss-noservice
    assert handler.unrouted == 1


def test_the_shipped_dialplan_acts_on_every_variable_a_decision_sets() -> None:
    conf = (Path(__file__).parents[3] / "asterisk" / "extensions-ccbridge.conf").read_text()
    route = conf[conf.index("[ccbridge-route]") :]
    set_by_decision = set(
        re.findall(r'set_variable\(\s*"(CCB_[A-Z_]+)"', inspect.getsource(apply_decision))
    )
    unused = {"CCB_GROUP", "CCB_X_ROUTING", "CCB_MAX_WAIT_SECONDS"}
    # CCB_GROUP and CCB_MAX_WAIT_SECONDS are read by the callback AGI; the others are extras.
    assert set_by_decision - unused
    for name in sorted(set_by_decision - unused):
        assert "${" + name + "}" in route, name
    assert "Gosub(ccbridge-route,s,1)" in conf


class _LanguagePolicies:
    """GroupRouter that routes by the caller's language, asking for it like a policy would."""

    async def route(
        self,
        tenant_id: str,
        group: str,
        caller: str,
        language: Callable[[], Awaitable[str]] | None = None,
    ) -> RoutingDecision | None:
        assert language is not None
        spoken = await language()
        return RoutingDecision(group=f"{group}_{spoken}", queue_seconds=300, reason="language")


async def test_the_language_is_the_picked_one_else_the_channels() -> None:
    numbers = _Numbers(
        {"4008001234": _number("4008001234", NumberTarget(TargetType.GROUP, "desk"))}
    )
    handler = InboundRouteHandler({}, None, numbers=numbers, policies=_LanguagePolicies())
    server = await _server(handler)
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    try:
        picked = AgiCall(dnid="4008001234", language="fr", variables={"CCB_LANGUAGE": "en"})
        channel = AgiCall(dnid="4008001234", language="fr")
        by_pick = (await FakeAgiClient(url, picked).run()).variables_set
        by_channel = (await FakeAgiClient(url, channel).run()).variables_set
    finally:
        await server.stop()
    assert (by_pick["CCB_QUEUE"], by_pick["CCB_X_ROUTING"]) == ("t1-desk_en", "language")
    assert by_channel["CCB_QUEUE"] == "t1-desk_fr"


class _DownNumbers:
    """NumberLookup whose store cannot be read (and nothing was read before)."""

    async def lookup(self, did: str) -> InboundNumber | None:
        raise OSError("database down")


async def test_numbers_that_cannot_be_read_leave_the_call_to_the_fallback_route() -> None:
    handler = InboundRouteHandler(
        {}, fallback=InboundRoute("t1", "t1-support"), numbers=_DownNumbers()
    )
    server = await _server(handler)
    try:
        got = await _call(server, "4008001234")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t1", "CCB_DID": "4008001234", "CCB_QUEUE": "t1-support"}


class _Policies:
    """Recording policies: t2 records nothing, every other tenant the default (all calls)."""

    async def policy(self, tenant: str) -> RecordingPolicy:
        return RecordingPolicy(tenant, auto_record=tenant != "t2")


async def test_the_route_names_the_pbx_side_recording_of_a_tenant_that_records() -> None:
    names = PbxRecordingNames(
        _Policies(), "/srv/recordings", lambda: datetime(2026, 12, 3, 23, 59, tzinfo=UTC)
    )
    routes = {**ROUTES, "4008005678": InboundRoute("t2", "t2-service")}
    handler = InboundRouteHandler(routes, fallback=None, recording=names)
    server = await _server(handler)
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    try:
        call = AgiCall(dnid="4008001234", uniqueid="1768000000.13", linkedid="1768000000.12")
        recorded = await FakeAgiClient(url, call).run()
        off = await FakeAgiClient(url, AgiCall(dnid="4008005678")).run()
    finally:
        await server.stop()
    # app_queue appends ".wav" (the queue's monitor-format); the call id is the Linkedid.
    assert recorded.variables_set == {
        "CCB_TENANT": "t1",
        "CCB_DID": "4008001234",
        "MONITOR_FILENAME": "/srv/recordings/t1/2026/12/03/1768000000.12",
        "CCB_QUEUE": "t1-sales",
    }
    assert "GET VARIABLE CHANNEL(linkedid)" in recorded.commands
    assert "MONITOR_FILENAME" not in off.variables_set  # policy off: nothing is named
    assert off.variables_set["CCB_QUEUE"] == "t2-service"


def _context(conf: str, name: str) -> str:
    body = conf[conf.index(f"\n[{name}]") + 1 :]
    return body[: body.index("\n[")] if "\n[" in body else body


def test_the_shipped_dialplan_starts_a_new_take_before_a_recorded_caller_queues_again() -> None:
    conf = (Path(__file__).parents[3] / "asterisk" / "extensions-ccbridge.conf").read_text()
    take = _context(conf, "ccbridge-record-take")
    assert "StopMixMonitor()" in take
    assert "Gosub(ccbridge-record-name,s,1(${CCB_RECORDING_BASE}))" in take
    assert "Set(MONITOR_FILENAME=${GOSUB_RETVAL})" in take
    # The first take not on disk, in the names ccbridge indexes, in the queues' format.
    name = _context(conf, "ccbridge-record-name")
    assert f"${{STAT(e,${{name}}.{MONITOR_FORMAT})}}" in name
    assert "Set(LOCAL(name)=${ARG1}-q${take})" in name
    for context in ("[ccbridge-queue]", "[ccbridge-ivr-return]"):
        body = conf[conf.index("\n" + context) + 1 :]
        body = body[: body.index("\n[")] if "\n[" in body else body
        assert body.index("Gosub(ccbridge-record-take,s,1)") < body.index("Queue("), context


class _StickyRouting:
    """Routes every call to the group with its owner agent rung first."""

    async def route(
        self,
        tenant_id: str,
        group: str,
        caller: str,
        language: Callable[[], Awaitable[str]] | None = None,
    ) -> RoutingDecision:
        return RoutingDecision(
            group=group,
            queue_seconds=300,
            sticky_agent="1101",
            sticky_interface="PJSIP/1101",
            sticky_seconds=15,
            reason="sticky",
        )


class _SupportOnly:
    """t1's policy records only its support group."""

    async def policy(self, tenant: str) -> RecordingPolicy:
        return RecordingPolicy(tenant, auto_record_groups=("t1-support",))


async def test_a_sticky_ring_is_recorded_when_the_policy_records_its_group() -> None:
    names = PbxRecordingNames(_SupportOnly(), "/srv/recordings", lambda: datetime.now(UTC))
    groups = {
        "4008001234": InboundRoute("t1", group="support"),
        "4008001235": InboundRoute("t1", group="sales"),
    }
    handler = InboundRouteHandler(groups, fallback=None, policies=_StickyRouting(), recording=names)
    server = await _server(handler)
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    try:
        support = await FakeAgiClient(url, AgiCall(dnid="4008001234")).run()
        sales = await FakeAgiClient(url, AgiCall(dnid="4008001235")).run()
    finally:
        await server.stop()
    assert support.variables_set["CCB_STICKY_INTERFACE"] == "PJSIP/1101"
    assert support.variables_set["CCB_STICKY_RECORD"] == "yes"
    assert support.variables_set["MONITOR_FILENAME"].startswith("/srv/recordings/t1/")
    # The tenant records (a file is named), but not this group: the owner's answer is not.
    assert sales.variables_set["CCB_STICKY_INTERFACE"] == "PJSIP/1101"
    assert "CCB_STICKY_RECORD" not in sales.variables_set
    assert "MONITOR_FILENAME" in sales.variables_set


def test_the_shipped_sticky_ring_records_the_owners_leg_on_its_answer() -> None:
    conf = (Path(__file__).parents[3] / "asterisk" / "extensions-ccbridge.conf").read_text()
    route = _context(conf, "ccbridge-route")
    inherit = 'Set(__CCB_STICKY_FILE=${IF($["${CCB_STICKY_RECORD}" = "yes"]?${MONITOR_FILENAME})})'
    dial = (
        "Dial(${CCB_STICKY_INTERFACE},${FILTER(0-9,${CCB_STICKY_SECONDS})},"
        "U(ccbridge-record-answer))"
    )
    assert route.index(inherit) < route.index(dial)
    assert "Set(__CCB_STICKY_FILE=)" in route[route.index(dial) :]  # not answered: cleared
    answer = _context(conf, "ccbridge-record-answer")
    assert "Gosub(ccbridge-record-name,s,1(${CCB_STICKY_FILE}))" in answer
    assert f"MixMonitor(${{GOSUB_RETVAL}}.{MONITOR_FORMAT},b)" in answer
    # The owner's phone dialled back after a hand-back to the IVR follows the same rule.
    assert "Dial(${CCB_RETURN_TO},30,U(ccbridge-record-answer))" in _context(
        conf, "ccbridge-ivr-return"
    )
    # The live path needs the leg's CCB_STICKY_FILE on its events to start nothing itself.
    manager = (Path(__file__).parents[3] / "asterisk" / "manager.d" / "ccbridge.conf").read_text()
    channelvars = re.search(r"^channelvars = (.+)$", manager, re.M)
    assert channelvars is not None
    assert channelvars.group(1).split(",") == list(SHIPPED_CHANNELVARS)
    assert STICKY_FILE_VAR in SHIPPED_CHANNELVARS
