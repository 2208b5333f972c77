"""Run a tenant's active IVR flow on a FastAGI session, one AGI command per engine action.

The pure engine decides; this adapter only translates: Play → ``STREAM FILE``, Ask →
``GET DATA``, Export → ``SET VARIABLE``, Lookup → the CRM port, Finish → ``CCB_ROUTE`` and its
target (``CCB_QUEUE``, ``CCB_TRANSFER``, ``CCB_VOICEMAIL``) for the dialplan to act on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

import structlog

from ccbridge.asterisk.agi.errors import AgiHangup
from ccbridge.asterisk.agi.session import AgiSession
from ccbridge.domain.acd.membership import queue_name
from ccbridge.domain.ivr.engine import (
    TRANSFER_NOT_ALLOWED,
    Action,
    Ask,
    CallContext,
    Digits,
    Done,
    Event,
    Export,
    Finish,
    FlowRun,
    HungUp,
    Lookup,
    LookupAnswer,
    Play,
)
from ccbridge.domain.ivr.model import RouteKind
from ccbridge.services.ivr_ports import (
    ActiveFlow,
    ActiveFlowSource,
    CallLogSink,
    CrmLookup,
    IvrCallRecord,
    TenantFactsSource,
)

log = structlog.get_logger(__name__)

ROUTE_VARIABLE = "CCB_ROUTE"
ToGroup = Callable[[AgiSession, str, str, str], Awaitable[None]]
"""Queues the call on a tenant's skill group as its routing policy says:
``(session, tenant, group, the caller's language in the flow)``."""
_TARGET_VARIABLE = {
    RouteKind.QUEUE: "CCB_QUEUE",
    RouteKind.TRANSFER: "CCB_TRANSFER",
    RouteKind.VOICEMAIL: "CCB_VOICEMAIL",
}


class _NoCrm:
    """Used when no CRM client is wired: every lookup takes the node's error branch."""

    async def lookup(
        self,
        tenant_id: str,  # noqa: ARG002
        url: str,  # noqa: ARG002
        query: object,  # noqa: ARG002
        timeout_ms: int,  # noqa: ARG002
    ) -> LookupAnswer:
        return LookupAnswer(False)


class IvrRunner:
    """Play the active flow of a call's tenant; log its path and outcome when it ends."""

    def __init__(
        self,
        flows: ActiveFlowSource,
        calls: CallLogSink,
        now: Callable[[], datetime],
        *,
        crm: CrmLookup | None = None,
        tenants: TenantFactsSource | None = None,
        prompts_root: str = "ccbridge",
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        self._flows = flows
        self._tenants = tenants
        self._calls = calls
        self._now = now
        self._crm: CrmLookup = crm or _NoCrm()
        self._root = prompts_root.rstrip("/")
        self._on_step = on_step

    async def run(
        self,
        session: AgiSession,
        tenant_id: str,
        did: str,
        start_at: str | None = None,
        *,
        flow_id: str | None = None,
        to_group: ToGroup | None = None,
    ) -> bool:
        """Run the tenant's flow for ``did`` (or the flow *flow_id*), from node *start_at* when
        an agent handed the caller back; ``False`` when there is none active. A queue ending
        goes through *to_group* (the group's routing policy)."""
        active = await self._flows.flow_for(tenant_id, did, flow_id)
        if active is None:
            return False
        started = self._now()
        context = CallContext(
            now=started, caller=session.callerid, did=did, timezone=active.timezone
        )
        if self._tenants is not None:  # the zone and outbound rights in force now, not at publish
            facts = await self._tenants.facts(tenant_id, started)
            context = replace(
                context,
                timezone=context.timezone or facts.timezone,
                dial=facts.outbound,
                calendar=facts.calendar,
            )
        run = FlowRun(active.flow, context, start_at)
        clock = time.perf_counter_ns
        on_step = self._on_step
        action: Action = run.start()
        while not isinstance(action, Finish):
            t0 = clock()
            event = await self._perform(session, active, action)
            action = run.resume(event)
            if on_step is not None:
                on_step(clock() - t0)
        if action.reason == TRANSFER_NOT_ALLOWED:
            refused = next((s for s in reversed(run.steps) if s.type == "transfer"), None)
            log.warning(
                "ivr_transfer_refused",
                tenant=tenant_id,
                flow=active.flow_id,
                revision=active.revision,
                node=action.node,
                number=refused.input if refused else None,
                refusal=refused.outcome if refused else None,
                fallback=action.route.value,
            )
        if action.reason != "caller_hung_up":
            try:
                language = str(run.variables.get("language") or "")
                await self._finish(session, active, action, to_group, language)
            except AgiHangup:
                action = Finish(action.node, RouteKind.HANGUP, "", "caller_hung_up")
        self._calls.record(
            IvrCallRecord(
                tenant_id=tenant_id,
                flow_id=active.flow_id,
                revision=active.revision,
                uniqueid=session.uniqueid,
                caller=session.callerid,
                started_at=started,
                ended_at=self._now(),
                path=list(run.path),
                steps=[s.as_dict() for s in run.steps],
                route=action.route.value,
                target=action.target,
                reason=action.reason,
                drop_off_node=action.node if action.reason == "caller_hung_up" else None,
            )
        )
        return True

    def prompt_file(self, active: ActiveFlow, prompt_id: str) -> str:
        """Return what ``STREAM FILE`` plays for a prompt id (a stock sound or a tenant file)."""
        if prompt_id.startswith("sys:"):
            return prompt_id.removeprefix("sys:")
        stored = active.prompt_files.get(prompt_id)
        return stored or f"{self._root}/{active.tenant_id}/{prompt_id}"

    async def _perform(self, session: AgiSession, active: ActiveFlow, action: Action) -> Event:
        try:
            if isinstance(action, Play):
                await session.stream_file(self.prompt_file(active, action.prompt))
                return Done()
            if isinstance(action, Ask):
                digits = await session.get_data(
                    self.prompt_file(active, action.prompt), action.timeout_ms, action.max_digits
                )
                return Digits(digits)
            if isinstance(action, Export):
                await session.set_variable(action.name, action.value)
                return Done()
            if isinstance(action, Lookup):
                return await self._crm.lookup(
                    active.tenant_id, action.url, action.query, action.timeout_ms
                )
        except AgiHangup:
            return HungUp()
        raise TypeError(f"unknown IVR action {action!r}")

    async def _finish(
        self,
        session: AgiSession,
        active: ActiveFlow,
        action: Finish,
        to_group: ToGroup | None = None,
        language: str = "",
    ) -> None:
        """Tell the dialplan where the call goes; a bad queue name falls back to hang-up."""
        route, target = action.route, action.target
        if route is RouteKind.QUEUE and to_group is not None:
            try:
                queue_name(active.tenant_id, target)
            except ValueError:
                log.warning("ivr_bad_queue", tenant=active.tenant_id, skill_group=target)
                await session.set_variable(ROUTE_VARIABLE, RouteKind.HANGUP.value)
                return
            await to_group(session, active.tenant_id, target, language)
            await session.set_variable(ROUTE_VARIABLE, route.value)
            return
        if route is RouteKind.QUEUE:
            try:
                target = queue_name(active.tenant_id, target)
            except ValueError:
                log.warning("ivr_bad_queue", tenant=active.tenant_id, skill_group=target)
                route, target = RouteKind.HANGUP, ""
        variable = _TARGET_VARIABLE.get(route)
        if variable is not None:
            await session.set_variable(variable, target)
        await session.set_variable(ROUTE_VARIABLE, route.value)
