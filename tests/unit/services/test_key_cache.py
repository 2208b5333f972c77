"""The API-key cache: TTL, LRU bound, invalidation by key and by tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccbridge.domain.access import Principal, Role
from ccbridge.services.key_cache import KeyCache, credential_digest

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def _who(tenant: str) -> Principal:
    return Principal(actor="key:k", role=Role.CRM, tenant_id=tenant)


def test_an_entry_lives_for_its_ttl_only() -> None:
    cache = KeyCache(ttl=timedelta(seconds=30))
    d = credential_digest("ccb_a_secret")
    cache.put(d, "a", _who("t1"), T0)
    assert cache.get(d, T0 + timedelta(seconds=29)) == _who("t1")
    assert cache.get(d, T0 + timedelta(seconds=30)) is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = KeyCache(size=2)
    a, b, c = (credential_digest(x) for x in "abc")
    cache.put(a, "a", _who("t1"), T0)
    cache.put(b, "b", _who("t1"), T0)
    assert cache.get(a, T0) is not None  # a is now the most recent
    cache.put(c, "c", _who("t1"), T0)
    assert cache.get(b, T0) is None
    assert cache.get(a, T0) is not None
    assert cache.get(c, T0) is not None


def test_drop_by_key_and_by_tenant() -> None:
    cache = KeyCache()
    a, b, c = (credential_digest(x) for x in "abc")
    cache.put(a, "a", _who("t1"), T0)
    cache.put(b, "b", _who("t1"), T0)
    cache.put(c, "c", _who("t2"), T0)
    cache.drop_key("a")
    assert cache.get(a, T0) is None
    cache.drop_tenant("t1")
    assert cache.get(b, T0) is None
    assert cache.get(c, T0) is not None


def test_zero_ttl_disables_it() -> None:
    cache = KeyCache(ttl=timedelta(0))
    d = credential_digest("x")
    cache.put(d, "x", _who("t1"), T0)
    assert cache.get(d, T0) is None


def test_an_entry_is_due_for_refresh_in_the_last_third_of_its_ttl() -> None:
    cache = KeyCache(ttl=timedelta(seconds=30))
    d = credential_digest("ccb_a_secret")
    assert not cache.due_for_refresh(d, T0)  # nothing cached
    cache.put(d, "a", _who("t1"), T0)
    assert not cache.due_for_refresh(d, T0 + timedelta(seconds=19))
    assert cache.due_for_refresh(d, T0 + timedelta(seconds=20))
    assert cache.due_for_refresh(d, T0 + timedelta(seconds=29))
    assert not cache.due_for_refresh(d, T0 + timedelta(seconds=30))  # expired: a miss
    cache.put(d, "a", _who("t1"), T0 + timedelta(seconds=25))  # refreshed
    assert not cache.due_for_refresh(d, T0 + timedelta(seconds=30))
    assert cache.get(d, T0 + timedelta(seconds=50)) == _who("t1")
    cache.drop(d)
    assert cache.get(d, T0 + timedelta(seconds=26)) is None
