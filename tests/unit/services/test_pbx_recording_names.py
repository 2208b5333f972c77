"""FastAGI's recording name: from the tenant's policy, read at most once per TTL."""

from __future__ import annotations

from datetime import UTC, datetime

from ccbridge.domain.recordings.model import RecordingPolicy
from ccbridge.services.pbx_recording_names import PbxRecordingNames

DAY = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


class Policies:
    def __init__(self) -> None:
        self.reads = 0
        self.auto_record = True
        self.broken = False

    async def policy(self, tenant: str) -> RecordingPolicy:
        self.reads += 1
        if self.broken:
            raise ConnectionError("database away")
        return RecordingPolicy(tenant, auto_record=self.auto_record)


async def test_the_policy_is_read_once_per_ttl_and_off_names_nothing() -> None:
    policies, clock = Policies(), [100.0]
    names = PbxRecordingNames(
        policies, "/srv/rec", lambda: DAY, ttl=5.0, monotonic=lambda: clock[0]
    )
    assert await names.monitor_filename("t1", "1.1") == "/srv/rec/t1/2026/12/03/1.1"
    policies.auto_record = False
    assert await names.monitor_filename("t1", "1.2") == "/srv/rec/t1/2026/12/03/1.2"  # cached
    assert policies.reads == 1
    clock[0] += 5.0
    assert await names.monitor_filename("t1", "1.3") is None  # re-read: off
    assert policies.reads == 2


async def test_an_unreadable_policy_or_a_bad_id_names_nothing() -> None:
    policies = Policies()
    names = PbxRecordingNames(policies, "/srv/rec", lambda: DAY)
    assert await names.monitor_filename("t1", "../etc/passwd") is None
    policies.broken = True
    assert await names.monitor_filename("t2", "1.1") is None


class GroupPolicies:
    """t1 records only its support group; t2 records nothing."""

    async def policy(self, tenant: str) -> RecordingPolicy:
        if tenant == "t2":
            return RecordingPolicy(tenant, auto_record=False)
        return RecordingPolicy(tenant, auto_record_groups=("t1-support",))


async def test_whether_a_group_records_follows_the_policy_of_the_queues() -> None:
    names = PbxRecordingNames(GroupPolicies(), "/srv/rec", lambda: DAY)
    assert await names.records("t1", "t1-support")
    assert not await names.records("t1", "t1-sales")
    assert not await names.records("t2", "t2-service")
    broken = Policies()
    broken.broken = True
    assert not await PbxRecordingNames(broken, "/srv/rec", lambda: DAY).records("t1", "t1-a")
