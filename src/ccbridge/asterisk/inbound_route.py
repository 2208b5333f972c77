"""FastAGI entry point for inbound calls: tag the call and choose its skill group.

The dialplan runs ``AGI(agi://ccbridge:4573/inbound)`` and then ``Gosub(ccbridge-route,s,1)``,
which queues the call on ``${CCB_QUEUE}``. Which tenant a dialled number reaches, and whether
it goes to an IVR flow or a skill group, comes from the inbound numbers a platform admin
assigned over the API (a cached table, reloaded on every change: no restart). When the number
goes to a flow (or has no target and the tenant has a flow for it), the flow runs and ends by
setting ``CCB_ROUTE`` (queue, transfer, voicemail or hangup) with its target.

A call routed to a skill group with a routing policy gets the policy's decision as channel
variables (``CCB_PRIORITY``, ``CCB_STICKY_*``, ``CCB_OVERFLOW_*``, ``CCB_MAX_WAIT``…) that the
shipped dialplan acts on (docs/routing.md).

When the tenant's policy records calls, the route also names the file app_queue records the
call to when a member answers (``MONITOR_FILENAME``, ADR 0025): the recording then no longer
depends on the AMI link being up. A sticky ring whose group the policy records gets
``CCB_STICKY_RECORD=yes``: the dialplan then records the owner's answer into the same name.

A number of a suspended or terminated tenant is treated as unrouted (the fallback route, else
hang up). The tenant's status comes from a cache, so a call rarely waits on the database.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from ccbridge.asterisk.agi.session import AgiSession
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.domain.acd.membership import queue_name
from ccbridge.domain.acd.routing import RoutingDecision
from ccbridge.domain.inbound_numbers import InboundNumber, TargetType

log = structlog.get_logger(__name__)

SCRIPT = "inbound"
_DID = re.compile(r"^\+?[0-9]{1,32}$")


def did_of(env: Mapping[str, str]) -> str:
    """Return the first of ``agi_dnid``, ``agi_extension`` that is a plain number, else "".

    Asterisk sends ``agi_dnid: unknown`` when the channel has no DNID (Local channels, some
    trunks), so a non-numeric DNID must fall through to the extension the dialplan ran.
    """
    for key in ("agi_dnid", "agi_extension"):
        value = env.get(key) or ""
        if _DID.match(value):
            return value
    return ""


@dataclass(frozen=True, slots=True)
class InboundRoute:
    """Where calls to one DID go: a fixed queue, or one of the tenant's groups or flows."""

    tenant: str
    queue: str = ""
    group: str | None = None
    flow: str | None = None

    @classmethod
    def of(cls, number: InboundNumber) -> InboundRoute:
        """The route of an assigned number (no target: the tenant's IVR flow for it, if any)."""
        target = number.target
        if target is None:
            return cls(number.tenant_id)
        if target.type is TargetType.GROUP:
            return cls(number.tenant_id, group=target.id)
        return cls(number.tenant_id, flow=target.id)


class NumberLookup(Protocol):
    """The assigned numbers (``services.inbound_numbers.NumberDirectory``)."""

    async def lookup(self, did: str) -> InboundNumber | None:
        """The number's assignment, or ``None`` when no tenant holds it."""
        ...


class GroupRouter(Protocol):
    """Routing policies (``services.routing_policies.CallRouter``)."""

    async def route(
        self,
        tenant_id: str,
        group: str,
        caller: str,
        language: Callable[[], Awaitable[str]] | None = None,
    ) -> RoutingDecision | None:
        """The policy's decision for a call to *group*, or ``None`` when it has no policy."""
        ...


async def apply_decision(session: AgiSession, tenant: str, decision: RoutingDecision) -> None:
    """Set the channel variables the dialplan's ``[ccbridge-route]`` acts on."""
    await session.set_variable("CCB_QUEUE", queue_name(tenant, decision.group))
    await session.set_variable("CCB_GROUP", decision.group)
    await session.set_variable("CCB_QUEUE_TIMEOUT", str(decision.queue_seconds))
    await session.set_variable("CCB_X_ROUTING", decision.reason)
    if decision.priority:
        await session.set_variable("CCB_PRIORITY", str(decision.priority))
    if decision.sticky_interface and decision.sticky_agent:
        await session.set_variable("CCB_STICKY_INTERFACE", decision.sticky_interface)
        await session.set_variable("CCB_STICKY_AGENT", decision.sticky_agent)
        await session.set_variable("CCB_STICKY_SECONDS", str(decision.sticky_seconds))
    if decision.overflow_group:
        await session.set_variable(
            "CCB_OVERFLOW_QUEUE", queue_name(tenant, decision.overflow_group)
        )
        await session.set_variable("CCB_OVERFLOW_TIMEOUT", str(decision.overflow_seconds))
    if decision.on_max_wait is not None:
        await session.set_variable("CCB_MAX_WAIT", decision.on_max_wait.value)
        await session.set_variable(
            "CCB_MAX_WAIT_SECONDS", str(decision.queue_seconds + decision.overflow_seconds)
        )
        if decision.mailbox:
            await session.set_variable("CCB_VOICEMAIL", decision.mailbox)


class RecordingNamer(Protocol):
    """Names a call's recording file (``services.pbx_recording_names.PbxRecordingNames``)."""

    async def monitor_filename(self, tenant: str, call_id: str) -> str | None:
        """``MONITOR_FILENAME`` for the call, or ``None`` when the tenant records nothing."""
        ...

    async def records(self, tenant: str, queue: str) -> bool:
        """Whether the tenant's policy records a call answered for *queue*."""
        ...


MONITOR_FILENAME = "MONITOR_FILENAME"
"""Read by app_queue from the caller's channel when a member answers (``.wav`` appended)."""
STICKY_RECORD = "CCB_STICKY_RECORD"
"""``yes``: the owner's answer on the sticky ring is recorded (the dialplan's
``[ccbridge-record-answer]``, into ``MONITOR_FILENAME``), as the group's queue would record a
member's answer: the sticky ring's ``monitor-format``."""


async def name_recording(session: AgiSession, namer: RecordingNamer, tenant: str) -> None:
    """Set ``MONITOR_FILENAME`` from the call's Linkedid (the call id); a failure names
    nothing, so ccbridge records over AMI on the answer as before."""
    try:
        linkedid = await session.get_variable("CHANNEL(linkedid)") or session.uniqueid
        name = await namer.monitor_filename(tenant, linkedid) if linkedid else None
        if name:
            await session.set_variable(MONITOR_FILENAME, name)
    except Exception:
        log.exception("recording_naming_failed", tenant=tenant)


class InboundRouteHandler:
    """Answer the AGI request: set ``CCB_TENANT``, ``CCB_DID`` and ``CCB_QUEUE`` on the channel.

    *routes* are fixed routes (tests and the real-PBX tier); *numbers*, the numbers assigned
    over the API, win over them.
    """

    def __init__(
        self,
        routes: Mapping[str, InboundRoute],
        fallback: InboundRoute | None,
        ivr: IvrRunner | None = None,
        tenant_closed: Callable[[str], Awaitable[bool]] | None = None,
        *,
        numbers: NumberLookup | None = None,
        policies: GroupRouter | None = None,
        recording: RecordingNamer | None = None,
    ) -> None:
        """*recording* names the PBX-side recording of every routed call (ADR 0025)."""
        self._recording = recording
        self._routes = dict(routes)
        self._fallback = fallback
        self._ivr = ivr
        self._tenant_closed = tenant_closed
        self._numbers = numbers
        self._policies = policies
        self.unrouted = 0

    async def __call__(self, session: AgiSession) -> None:
        """Tag the channel; an unknown DID, or one of a tenant that is not active, takes the
        fallback route or hangs up."""
        did = did_of(session.env)
        route = await self._live(await self._find(did), did)
        if route is None:
            route = await self._live(self._fallback, did)
        if route is None:
            self.unrouted += 1
            log.warning("inbound_unrouted", did=did, uniqueid=session.env.get("agi_uniqueid"))
            await session.hangup()
            return
        await session.set_variable("CCB_TENANT", route.tenant)
        if did:
            await session.set_variable("CCB_DID", did)
        if self._recording is not None:
            await name_recording(session, self._recording, route.tenant)
        if route.group is None and self._ivr is not None:
            ran = await self._ivr.run(
                session, route.tenant, did, flow_id=route.flow, to_group=self.to_group
            )
            if ran:
                return
        if route.group is not None:
            await self.to_group(session, route.tenant, route.group)
        elif route.queue:
            await session.set_variable("CCB_QUEUE", route.queue)
        else:
            self.unrouted += 1
            log.warning("inbound_no_target", did=did, tenant=route.tenant)

    async def to_group(
        self, session: AgiSession, tenant: str, group: str, language: str = ""
    ) -> None:
        """Queue the call on the tenant's *group*, as its routing policy (if any) says; the
        caller's *language* is the IVR flow's, else the channel's (asked when needed)."""
        decision = None
        if self._policies is not None:

            async def spoken() -> str:
                return language or await _language(session)

            try:
                decision = await self._policies.route(tenant, group, session.callerid, spoken)
            except Exception:  # a broken policy must not lose the call: queue it plainly
                log.exception("routing_policy_failed", tenant=tenant, group=group)
        if decision is None:
            await session.set_variable("CCB_QUEUE", queue_name(tenant, group))
            return
        await apply_decision(session, tenant, decision)
        if decision.sticky_interface and decision.sticky_agent:
            await self._record_sticky(session, tenant, queue_name(tenant, decision.group))

    async def _record_sticky(self, session: AgiSession, tenant: str, queue: str) -> None:
        """``CCB_STICKY_RECORD=yes`` when the policy records the owner's answer for *queue*;
        a policy that cannot be read says nothing (ccbridge then records over AMI)."""
        if self._recording is None:
            return
        try:
            if await self._recording.records(tenant, queue):
                await session.set_variable(STICKY_RECORD, "yes")
        except Exception:
            log.exception("sticky_recording_unknown", tenant=tenant, queue=queue)

    async def _find(self, did: str) -> InboundRoute | None:
        if self._numbers is not None and did:
            try:
                assigned = await self._numbers.lookup(did)
            except Exception:  # no table read yet and the store is down: the fallback route
                log.exception("inbound_numbers_unreadable", did=did)
                assigned = None
            if assigned is not None:
                return InboundRoute.of(assigned)
        return self._routes.get(did)

    async def _live(self, route: InboundRoute | None, did: str) -> InboundRoute | None:
        """*route* unless its tenant is suspended or terminated; a status that cannot be read
        lets the call through."""
        if route is None or self._tenant_closed is None:
            return route
        try:
            closed = await self._tenant_closed(route.tenant)
        except Exception:
            log.exception("inbound_tenant_status_unreadable", tenant=route.tenant, did=did)
            return route
        if closed:
            log.info("inbound_tenant_not_active", tenant=route.tenant, did=did)
            return None
        return route


async def _language(session: AgiSession) -> str:
    """The caller's language: ``CCB_LANGUAGE`` (an IVR menu or the trunk set it), else the
    channel's language."""
    picked = await session.get_variable("CCB_LANGUAGE")
    return (picked or session.env.get("agi_language") or "").strip()
