"""Per-tenant recording policy: retention, automatic recording, the push-export target and its
nightly time; read and replaced over the API, audited, used at once by the running services.

The services read the policy from the store on every decision (answer → record?, purge
horizon, export schedule), so a change applies without a restart. The export password is
write-only: it is encrypted at rest by the store and never returned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import time
from typing import Any

import structlog

from ccbridge.domain.access import Principal
from ccbridge.domain.recordings.model import ExportTarget, RecordingPolicy
from ccbridge.domain.recordings.policy import policy_problems
from ccbridge.domain.time import Clock
from ccbridge.errors import CcbridgeError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.egress import ConfigurationChecker
from ccbridge.services.recording_ports import RecordingStore

log = structlog.get_logger(__name__)


class InvalidPolicyError(CcbridgeError):
    """A policy field breaks a rule (control characters in FTP text, unknown zone, …)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid recording policy"

    def __init__(self, problems: dict[str, str]) -> None:
        fields = ", ".join(sorted(problems))
        super().__init__(f"invalid value for {fields}", field=next(iter(sorted(problems))))
        self.problems = dict(problems)
        self.errors = [{"field": k, "message": v} for k, v in sorted(problems.items())]


@dataclass(frozen=True, slots=True)
class ExportTargetChange:
    """The export target as a client sends it; ``password=None`` keeps the stored one."""

    host: str
    port: int
    username: str
    password: str | None
    tls: bool
    directory: str
    ca_pem: str | None
    schedule_time: time | None


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A whole new policy (PUT semantics, except the write-only password)."""

    retention_months: int
    auto_record: bool
    auto_record_groups: tuple[str, ...] | None
    export: ExportTargetChange | None


def _public(policy: RecordingPolicy) -> dict[str, Any]:
    """What the audit log keeps of a policy: everything but the password."""
    t = policy.export_target
    return {
        "retention_months": policy.retention_months,
        "auto_record": policy.auto_record,
        "auto_record_groups": None
        if policy.auto_record_groups is None
        else list(policy.auto_record_groups),
        "export": None
        if t is None
        else {
            "host": t.host,
            "port": t.port,
            "username": t.username,
            "tls": t.tls,
            "directory": t.directory,
            "ca_pem": t.ca_pem is not None,
            "schedule_time": None
            if policy.export_time is None
            else policy.export_time.strftime("%H:%M"),
        },
    }


class RecordingPolicyService:
    """Read and replace a tenant's recording policy."""

    def __init__(
        self,
        store: RecordingStore,
        audit: AuditRecorder,
        clock: Clock,
        *,
        targets: ConfigurationChecker | None = None,
        on_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """*targets* checks the export host against the egress policy (422 when refused);
        *on_change* re-renders the PBX's queues after a change (their ``monitor-format``
        follows the policy, ADR 0025)."""
        self.on_change = on_change
        self._targets = targets
        self._store = store
        self._audit = audit
        self._clock = clock

    async def get(self, tenant: str) -> RecordingPolicy:
        """The tenant's policy (defaults until one is stored); an unknown tenant is 404."""
        if await self._store.tenant_timezone(tenant) is None:
            raise NotFoundError(f"tenant {tenant} not found")
        return await self._store.policy(tenant)

    async def replace(self, who: Principal, tenant: str, change: PolicyChange) -> RecordingPolicy:
        """Validate, store and audit a new policy; it applies from the next decision on."""
        current = await self.get(tenant)
        target = None
        if change.export is not None:
            e = change.export
            kept = current.export_target.password if current.export_target else ""
            target = ExportTarget(
                host=e.host,
                port=e.port,
                username=e.username,
                password=kept if e.password is None else e.password,
                tls=e.tls,
                directory=e.directory,
                ca_pem=e.ca_pem,
            )
        new = replace(
            current,
            retention_months=change.retention_months,
            auto_record=change.auto_record,
            auto_record_groups=change.auto_record_groups,
            export_target=target,
            export_time=change.export.schedule_time if change.export else None,
        )
        problems = policy_problems(new)
        if target is not None and "export.host" not in problems and self._targets is not None:
            refused = await self._targets.refusal(tenant, target.host, target.port)
            if refused is not None:
                problems["export.host"] = refused
        if problems:
            raise InvalidPolicyError(problems)
        await self._store.set_policy(new, self._clock.now())
        old_pw = current.export_target.password if current.export_target else ""
        detail = {
            "before": _public(current),
            "after": _public(new),
            "password_changed": (target.password if target else "") != old_pw,
        }
        await self._audit.record(
            who, tenant, "recording_policy.update", "recording_policy", tenant, detail
        )
        if self.on_change is not None and _records_differently(current, new):
            try:
                await self.on_change()
            except Exception as exc:  # stored and audited; the next AMI login publishes
                log.warning("recording_policy_pbx_sync_failed", tenant=tenant, error=repr(exc))
        return new


def _records_differently(old: RecordingPolicy, new: RecordingPolicy) -> bool:
    """Say whether the change touches what is recorded (the queues' ``monitor-format``)."""
    return (old.auto_record, old.auto_record_groups) != (new.auto_record, new.auto_record_groups)
