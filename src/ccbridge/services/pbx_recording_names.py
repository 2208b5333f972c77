"""Which file app_queue records a call to, named by FastAGI when the call is routed (ADR 0025).

The PBX records a queue call itself when a member answers (``monitor-format`` on the queue,
``MONITOR_FILENAME`` on the caller), so the recording no longer depends on the AMI link.
FastAGI names the file for every call of a tenant whose policy records calls; whether the
queue that answers records is the queue's ``monitor-format``, rendered from the same policy
per skill group, so an overflow or a transfer into another group follows that group's rule.
The owner's answer on the sticky ring is no queue's: FastAGI says from the same rule whether
it is recorded (``CCB_STICKY_RECORD``), and the dialplan records the owner's leg.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from ccbridge.domain.recordings.model import BadRecordingNameError, RecordingPolicy
from ccbridge.domain.recordings.pbx_names import monitor_filename
from ccbridge.services.seat_ports import SkillGroupRecord

log = structlog.get_logger(__name__)


class PolicyReader(Protocol):
    """The tenants' recording policies (``RecordingStore.policy``)."""

    async def policy(self, tenant: str) -> RecordingPolicy:
        """The tenant's policy (defaults until one is stored)."""
        ...


POLICY_TTL_SECONDS = 5.0
"""How long a tenant's policy is reused: FastAGI asks on every call, and the queue's
``monitor-format`` (re-rendered on a change) decides anyway; naming a file is harmless."""


class PbxRecordingNames:
    """``MONITOR_FILENAME`` for a call: ``<root>/<tenant>/<yyyy>/<mm>/<dd>/<call-id>``."""

    def __init__(
        self,
        policies: PolicyReader,
        root: str,
        now: Callable[[], datetime],
        *,
        ttl: float = POLICY_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """*root* is the recordings folder as both ccbridge and the PBX see it (absolute)."""
        self._policies = policies
        self._root = root
        self._now = now
        self._ttl = ttl
        self._monotonic = monotonic
        self._policy: dict[str, tuple[RecordingPolicy, float]] = {}
        """Tenant → (its policy, until when it is reused)."""

    async def monitor_filename(self, tenant: str, call_id: str) -> str | None:
        """The file name, or ``None`` when the tenant records nothing (policy off) or the ids
        cannot name a file; a policy that cannot be read names nothing (ccbridge then records
        over AMI on the answer, as before)."""
        policy = await self._read(tenant)
        if policy is None or not policy.auto_record:
            return None
        try:
            return monitor_filename(self._root, tenant, call_id, self._now())
        except BadRecordingNameError:
            log.warning("recording_not_named", tenant=tenant, call_id=call_id)
            return None

    async def records(self, tenant: str, queue: str) -> bool:
        """Whether the policy records a call answered for *queue*: what the queue's
        ``monitor-format`` says for a member's answer, and ``CCB_STICKY_RECORD`` for the
        owner's answer on the sticky ring (``RecordingPolicy.records``, the same rule)."""
        policy = await self._read(tenant)
        return policy is not None and policy.records(queue)

    async def _read(self, tenant: str) -> RecordingPolicy | None:
        """The tenant's policy, read at most once per TTL; ``None`` when it cannot be read."""
        at = self._monotonic()
        cached = self._policy.get(tenant)
        if cached is not None and cached[1] > at:
            return cached[0]
        try:
            policy = await self._policies.policy(tenant)
        except Exception as exc:
            log.warning("recording_policy_unreadable", tenant=tenant, error=repr(exc))
            return None
        self._policy[tenant] = (policy, at + self._ttl)
        return policy


async def recorded_queues(policies: PolicyReader, groups: Sequence[SkillGroupRecord]) -> set[str]:
    """The queues whose answered calls the tenant's policy records (their ``monitor-format``)."""
    out: set[str] = set()
    for tenant in sorted({g.tenant_id for g in groups}):
        policy = await policies.policy(tenant)
        out |= {g.queue for g in groups if g.tenant_id == tenant and policy.records(g.queue)}
    return out
