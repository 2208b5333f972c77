"""A short-lived cache of authenticated API keys, so a request does not cost a transaction.

Keyed by the SHA-256 of the whole presented key (the plaintext is never kept). Only good keys
are cached. Revoking a key or changing a tenant in this process drops its entries at once;
other processes (a CLI, another API worker) see the change after at most ``ttl``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from ccbridge.domain.access import Principal

DEFAULT_TTL = timedelta(seconds=30)
DEFAULT_SIZE = 10_000
REFRESH_AFTER = 2 / 3
"""Share of the time to live after which a request refreshes its key in the background:
a busy key is re-read before it expires, so no request waits for that read."""


@dataclass(frozen=True, slots=True)
class _Entry:
    key_id: str
    principal: Principal
    expires_at: datetime
    refresh_at: datetime


def credential_digest(plaintext: str) -> bytes:
    """The cache key of a presented credential (never the plaintext itself)."""
    return hashlib.sha256(plaintext.encode()).digest()


class KeyCache:
    """A bounded LRU of good API keys with a time to live; ``ttl`` zero disables it."""

    def __init__(self, *, ttl: timedelta = DEFAULT_TTL, size: int = DEFAULT_SIZE) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def get(self, digest: bytes, now: datetime) -> Principal | None:
        """The cached principal of *digest*, or ``None`` when absent or expired."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry.principal

    def put(self, digest: bytes, key_id: str, principal: Principal, now: datetime) -> None:
        """Remember a key that just authenticated (the oldest entry goes when full)."""
        if self._ttl <= timedelta(0) or self._size <= 0:
            return
        self._entries[digest] = _Entry(
            key_id, principal, now + self._ttl, now + self._ttl * REFRESH_AFTER
        )
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def due_for_refresh(self, digest: bytes, now: datetime) -> bool:
        """Whether *digest*'s entry is still good but old enough to be re-read now."""
        entry = self._entries.get(digest)
        return entry is not None and entry.refresh_at <= now < entry.expires_at

    def drop(self, digest: bytes) -> None:
        """Forget one presented key (a re-read found it revoked or gone)."""
        self._entries.pop(digest, None)

    def drop_key(self, key_id: str) -> None:
        """Forget a key (revoked)."""
        for digest in [d for d, e in self._entries.items() if e.key_id == key_id]:
            del self._entries[digest]

    def drop_tenant(self, tenant_id: str) -> None:
        """Forget every key of a tenant (its status changed)."""
        for digest in [d for d, e in self._entries.items() if e.principal.tenant_id == tenant_id]:
            del self._entries[digest]

    def __len__(self) -> int:
        """How many keys are cached."""
        return len(self._entries)
