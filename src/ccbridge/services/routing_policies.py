"""Routing policies over the API, and their application to each inbound call.

A tenant admin stores one policy per entry skill group; :class:`CallRouter` applies it when a
call is routed to that group (from an inbound number or an IVR flow): it gathers the call's
facts (VIP list or CRM answer, the owner agent from the call history and their seat) and lets
the pure :func:`ccbridge.domain.acd.routing.decide` choose.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog

from ccbridge.domain.access import Principal
from ccbridge.domain.acd.routing import (
    CallFacts,
    MaxWaitAction,
    MaxWaitRule,
    OverflowRule,
    PolicyError,
    RoutingDecision,
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
from ccbridge.domain.agents.state import AgentState
from ccbridge.errors import CcbridgeError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.egress import ConfigurationChecker
from ccbridge.services.ivr_ports import CrmLookup
from ccbridge.services.routing_cache import SnapshotCache
from ccbridge.services.routing_ports import CallHistory, PolicyRecord, RoutingPolicyRepo
from ccbridge.services.seat_ports import SeatSessionRepo, SkillGroupRepo

log = structlog.get_logger(__name__)


class PolicyRefusedError(CcbridgeError):
    """Raised for a policy that cannot be applied as written (422, naming the field)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"


def policy_from_document(group: str, doc: Mapping[str, Any]) -> RoutingPolicy:
    """The domain policy of a stored document (the API's JSON shape)."""
    vip = doc.get("vip")
    crm = (vip or {}).get("crm") or {}
    sticky, overflow, max_wait = doc.get("sticky"), doc.get("overflow"), doc.get("max_wait")
    return RoutingPolicy(
        group=group,
        split=tuple(SplitShare(s["group"], int(s["weight"])) for s in doc.get("split") or ()),
        languages=dict(doc.get("languages") or {}),
        vip=None
        if vip is None
        else VipRule(
            priority=int(vip["priority"]),
            callers=frozenset(vip.get("callers") or ()),
            crm_url=crm.get("url"),
            crm_field=crm.get("field", "vip"),
            crm_values=frozenset(v.lower() for v in crm.get("values", ("1", "true", "yes", "vip"))),
            crm_timeout_ms=int(crm.get("timeout_ms", 800)),
        ),
        sticky=None
        if sticky is None
        else StickyRule(int(sticky["ring_seconds"]), int(sticky.get("lookback_days", 30))),
        overflow=None
        if overflow is None
        else OverflowRule(int(overflow["after_seconds"]), overflow["group"]),
        max_wait=None
        if max_wait is None
        else MaxWaitRule(
            int(max_wait["seconds"]), MaxWaitAction(max_wait["action"]), max_wait.get("mailbox", "")
        ),
    )


class RoutingPolicyService:
    """Store, read and delete policies; every group they name must be the tenant's."""

    def __init__(
        self,
        repo: RoutingPolicyRepo,
        groups: SkillGroupRepo,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        on_change: Callable[[], None],
        crm_targets: ConfigurationChecker | None = None,
    ) -> None:
        self._repo = repo
        self._groups = groups
        self._audit = audit
        self._now = now
        self._on_change = on_change
        self._crm_targets = crm_targets

    async def put(
        self, who: Principal, tenant_id: str, group: str, document: dict[str, Any]
    ) -> PolicyRecord:
        """Create or replace the group's policy (422 naming the field when it cannot apply)."""
        try:
            policy = check_policy(policy_from_document(group, document))
        except PolicyError as exc:
            raise PolicyRefusedError(str(exc), field=f"body.{exc.field}") from exc
        for name in sorted(policy.groups()):
            if await self._groups.get(tenant_id, name) is None:
                where = "path.group" if name == group else "body"
                raise PolicyRefusedError(
                    f"tenant {tenant_id} has no skill group {name}", field=where
                )
        if policy.vip is not None and policy.vip.crm_url is not None:
            await self._check_crm(tenant_id, policy.vip.crm_url)
        record = await self._repo.put(tenant_id, group, document, self._now(), who.actor)
        await self._audit.record(
            who,
            tenant_id,
            "routing_policy.put",
            "routing_policy",
            group,
            {"version": record.version, "policy": document},
        )
        self._on_change()
        return record

    async def get(self, tenant_id: str, group: str) -> PolicyRecord:
        """The group's policy (404 when it has none)."""
        found = await self._repo.get(tenant_id, group)
        if found is None:
            raise NotFoundError(f"skill group {group} has no routing policy")
        return found

    async def list(self, tenant_id: str) -> builtins.list[PolicyRecord]:
        """The tenant's policies by group."""
        return await self._repo.list(tenant_id)

    async def delete(self, who: Principal, tenant_id: str, group: str) -> None:
        """Remove the group's policy: its calls go to the group plainly again."""
        if not await self._repo.delete(tenant_id, group):
            raise NotFoundError(f"skill group {group} has no routing policy")
        await self._audit.record(who, tenant_id, "routing_policy.delete", "routing_policy", group)
        self._on_change()

    async def _check_crm(self, tenant_id: str, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolicyRefusedError("vip.crm.url must be an http(s) URL", field="body.vip.crm.url")
        if self._crm_targets is None:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise PolicyRefusedError("the URL has a bad port", field="body.vip.crm.url") from None
        refused = await self._crm_targets.refusal(tenant_id, parts.hostname, port)
        if refused is not None:
            raise PolicyRefusedError(refused, field="body.vip.crm.url")


_Book = dict[tuple[str, str], tuple[int, RoutingPolicy]]


class CallRouter:
    """Apply a tenant's routing policy to a call routed to one of its skill groups.

    Splits keep their round-robin state in this process (the one FastAGI owner, ADR 0001);
    a changed policy starts its split afresh.
    """

    def __init__(
        self,
        repo: RoutingPolicyRepo,
        history: CallHistory,
        seats: SeatSessionRepo,
        now: Callable[[], datetime],
        *,
        crm: CrmLookup | None = None,
        ttl: float = 30.0,
    ) -> None:
        self._cache: SnapshotCache[_Book] = SnapshotCache(self._load, ttl=ttl)
        self._repo = repo
        self._history = history
        self._seats = seats
        self._now = now
        self._crm = crm
        self._splits: dict[tuple[str, str], tuple[int, WeightedSplit]] = {}

    async def _load(self) -> _Book:
        book: _Book = {}
        for record in await self._repo.list(None):
            try:
                policy = check_policy(policy_from_document(record.skill_group, record.document))
            except (PolicyError, KeyError, TypeError, ValueError):
                log.error(
                    "routing_policy_unusable", tenant=record.tenant_id, group=record.skill_group
                )
                continue
            book[(record.tenant_id, record.skill_group)] = (record.version, policy)
        return book

    def invalidate(self) -> None:
        """A policy changed: the next call reads the store again."""
        self._cache.invalidate()

    async def route(
        self,
        tenant_id: str,
        group: str,
        caller: str,
        language: Callable[[], Awaitable[str]] | None = None,
    ) -> RoutingDecision | None:
        """The decision for a call to *group*, or ``None`` when the group has no policy.

        *language* is asked only when the policy has language groups (it costs an AGI command).
        """
        entry = (await self._cache.get()).get((tenant_id, group))
        if entry is None:
            return None
        version, policy = entry
        spoken = await language() if policy.languages and language is not None else ""
        # A call the language sends does not take a turn of the split: the split's shares
        # hold among the calls it routes.
        pick = None if spoken in policy.languages else self._split(tenant_id, version, policy)
        return await self._decide(tenant_id, policy, caller, spoken, pick)

    async def _decide(
        self, tenant_id: str, policy: RoutingPolicy, caller: str, language: str, pick: str | None
    ) -> RoutingDecision:
        facts = CallFacts(caller=caller, language=language)
        if policy.vip is not None:
            facts = CallFacts(
                caller, language, vip=await self._is_vip(tenant_id, policy.vip, caller)
            )
        if policy.sticky is not None and caller:
            owner = await self._owner(tenant_id, caller, policy.sticky)
            if owner is not None:
                facts = CallFacts(caller, language, facts.vip, owner[0], owner[1])
        return decide(policy, facts, pick)

    def _split(self, tenant_id: str, version: int, policy: RoutingPolicy) -> str | None:
        if not policy.split:
            return None
        key = (tenant_id, policy.group)
        held = self._splits.get(key)
        if held is None or held[0] != version:
            held = (version, WeightedSplit(policy.split))
            self._splits[key] = held
        return held[1].pick()

    async def _is_vip(self, tenant_id: str, rule: VipRule, caller: str) -> bool:
        if is_vip_caller(rule, caller):
            return True
        if rule.crm_url is None or self._crm is None or not caller:
            return False
        answer = await self._crm.lookup(
            tenant_id, rule.crm_url, {"caller": caller}, rule.crm_timeout_ms
        )
        return answer.ok and crm_says_vip(rule, answer.fields)

    async def _owner(self, tenant_id: str, caller: str, rule: StickyRule) -> tuple[str, str] | None:
        """The owner agent and their phone, when they are signed in and ready now."""
        since = self._now() - timedelta(days=rule.lookback_days)
        try:
            agent = await self._history.last_agent(tenant_id, caller, since)
            if agent is None:
                return None
            seat = await self._seats.get_open(tenant_id, agent)
        except Exception:
            log.exception("sticky_owner_unreadable", tenant=tenant_id)
            return None
        if seat is None or seat.status.state is not AgentState.READY:
            return None
        return agent, seat.interface
