"""Which private networks a tenant's outbound connections may reach (platform-admin owned).

One allow-list per tenant, set only by a platform admin, plus a platform-wide list from the
settings; used by webhooks, the recording push export and IVR CRM lookups alike. The
address decision itself is ``domain.egress``; the adapters in ``ccbridge.egress`` apply it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ccbridge.domain.egress import EgressRefusedError, IpNetwork, parse_networks


class AllowListSource(Protocol):
    """Where a tenant's own allow-list is stored."""

    async def allow_list(self, tenant: str) -> Sequence[str]:
        """The tenant's allow-listed networks (CIDR strings), empty when none."""
        ...


class EgressPolicy:
    """The networks a tenant may reach although they are not public."""

    def __init__(self, source: AllowListSource, platform: Sequence[str] = ()) -> None:
        parse_networks(platform)  # a bad platform entry fails at start-up, not per connection
        self._source = source
        self._platform = tuple(platform)

    async def allow_list(self, tenant: str) -> tuple[str, ...]:
        """The tenant's list followed by the platform-wide one (strings, for the adapters)."""
        own = tuple(await self._source.allow_list(tenant))
        return own + tuple(p for p in self._platform if p not in own)

    async def networks(self, tenant: str) -> tuple[IpNetwork, ...]:
        """:meth:`allow_list` parsed (entries were validated when stored)."""
        return parse_networks(await self.allow_list(tenant))


class HostChecker(Protocol):
    """Resolves a host and applies the address policy (the egress adapter)."""

    async def check_host(self, host: str, port: int, allow: Sequence[str]) -> None:
        """Raise ``EgressRefusedError`` unless every address of *host* may be reached."""
        ...


class ConfigurationChecker:
    """Configuration-time check of a tenant-named host (connect time checks again)."""

    def __init__(self, policy: EgressPolicy, checker: HostChecker) -> None:
        self._policy = policy
        self._checker = checker

    async def refusal(self, tenant: str, host: str, port: int) -> str | None:
        """``None`` when *host* may be reached by *tenant*, else the message for the field."""
        try:
            await self._checker.check_host(host, port, await self._policy.allow_list(tenant))
        except EgressRefusedError as exc:
            return str(exc)
        return None
