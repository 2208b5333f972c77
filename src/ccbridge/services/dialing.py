"""Dial policies (where a tenant's calls may be dialled out to) and the tenant facts IVR flows
are checked against: time zone, skill groups and outbound rights in force."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ccbridge.domain.access import AccessDeniedError, Principal, tenant_not_found
from ccbridge.domain.calendar import DEFAULT_TIMEZONE, WEEKDAYS_ONLY
from ccbridge.domain.dialing import DialPolicy, OutboundRights
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import WorkingDaysSource
from ccbridge.services.ivr_ports import TenantFacts
from ccbridge.services.ports import AccessUnitOfWork
from ccbridge.services.seat_ports import (
    MAX_PAGE,
    DialPolicyRecord,
    DialPolicyRepo,
    LeaseRepo,
    SkillGroupRepo,
)
from ccbridge.services.seats import lease_in_force


class DialPolicyService:
    """Read a tenant's dial policy (the default until set); the platform admin sets it."""

    def __init__(
        self,
        policies: DialPolicyRepo,
        uow: Callable[[], AccessUnitOfWork],
        audit: AuditRecorder,
        now: Callable[[], datetime],
    ) -> None:
        self._policies = policies
        self._uow = uow
        self._audit = audit
        self._now = now

    async def get(self, tenant_id: str) -> DialPolicyRecord:
        """Return the tenant's policy, or the default (``updated_at`` None); 404: no tenant."""
        async with self._uow() as uow:
            if await uow.tenants.get(tenant_id) is None:
                raise tenant_not_found(tenant_id)
        return await self._policies.get(tenant_id) or DialPolicyRecord(tenant_id, DialPolicy())

    async def set(self, who: Principal, tenant_id: str, policy: DialPolicy) -> DialPolicyRecord:
        """Replace the policy (platform admin: it guards against toll fraud, SEC-01); audited."""
        if not who.is_platform:
            raise AccessDeniedError("only the platform admin may change a dial policy")
        before = await self.get(tenant_id)
        record = DialPolicyRecord(tenant_id, policy, self._now(), who.actor)
        await self._policies.put(record)
        await self._audit.record(
            who,
            tenant_id,
            "dial_policy.update",
            "dial_policy",
            tenant_id,
            {
                "allow": list(policy.allow),
                "deny": list(policy.deny),
                "before": {"allow": list(before.policy.allow), "deny": list(before.policy.deny)},
            },
        )
        return record


class TenantFactsReader:
    """``TenantFactsSource`` over the stores: tenant zone, skill groups, lease, dial policy and
    the working-day calendar."""

    def __init__(
        self,
        uow: Callable[[], AccessUnitOfWork],
        groups: SkillGroupRepo,
        leases: LeaseRepo,
        policies: DialPolicyRepo,
        calendar: WorkingDaysSource | None = None,
    ) -> None:
        self._uow = uow
        self._groups = groups
        self._leases = leases
        self._policies = policies
        self._calendar = calendar

    async def facts(self, tenant_id: str, at: datetime) -> TenantFacts:
        """Return the tenant's time zone, skill groups, outbound rights in force at ``at``, and the
        working days around it (a day either side covers every zone's local date)."""
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
        names: list[str] = []
        while True:
            page = await self._groups.list(tenant_id, names[-1] if names else None, MAX_PAGE)
            names.extend(g.name for g in page)
            if len(page) < MAX_PAGE:
                break
        lease = await lease_in_force(self._leases, tenant_id, at)
        stored = await self._policies.get(tenant_id)
        day = at.date()
        one = timedelta(days=1)
        calendar = (
            await self._calendar.calendar(day - one, day + one) if self._calendar else WEEKDAYS_ONLY
        )
        return TenantFacts(
            timezone=tenant.timezone if tenant is not None else DEFAULT_TIMEZONE,
            skill_groups=frozenset(names),
            outbound=OutboundRights(
                stored.policy if stored is not None else DialPolicy(),
                dict(lease.seats) if lease is not None else {},
            ),
            calendar=calendar,
        )
