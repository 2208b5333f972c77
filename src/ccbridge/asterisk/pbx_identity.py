"""Which Asterisk this node reached, checked at every AMI login before it drives it (ADR 0033).

Several PBXs on one database tell their calls apart by the ``systemname`` prefix Asterisk puts
on every call id. Right after login, before any event is applied, the node reads the PBX's
``SystemName`` (``CoreSettings``) and writes it to its PBX's lease row, where a unique index
keeps two PBXs from sharing one. A PBX whose name another PBX of the database already has,
or (with several PBXs) whose name cannot prefix call ids or cannot be read, is not driven:
the session is closed, its events dropped, ``/readyz`` names the reason, and the check runs
again at the next login (after the operator fixed ``asterisk.conf`` and restarted Asterisk).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

import structlog

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.errors import AmiActionError, AmiRefused
from ccbridge.domain.ha.system_names import SystemNameClaim, clash_reason, describe, shape_problem

if TYPE_CHECKING:
    from ccbridge.asterisk.ami.client import AmiClient

log = structlog.get_logger(__name__)

CLAIM_SECONDS = 5.0
"""How long the claim may take before the PBX is driven unchecked (the sink's events wait
meanwhile, so a slow database must not hold the PBX's stream for longer)."""


class SystemNameStore(Protocol):
    """Where each PBX's system name is kept (PostgreSQL: ``db.pbx_ownership.PgPbxLeases``)."""

    async def claim_system_name(self, pbx: str, system_name: str | None) -> SystemNameClaim:
        """Write *system_name* as *pbx*'s unless another PBX has it (``None``: write nothing);
        say which PBX has it and how many other PBXs the database knows."""
        ...


class PbxIdentity:
    """The AMI client's admission check (``AmiClient.set_admission``) for one PBX id."""

    def __init__(self, pbx: str, store: SystemNameStore) -> None:
        """Claim the names of PBX *pbx* in *store*."""
        self.pbx = pbx
        self._store = store
        self.system_name: str | None = None
        """What the PBX said at the last login (``None``: not read)."""
        self.refused: str | None = None
        """Why this node does not drive the PBX now, or ``None``."""
        self._claimed: str | None = None
        """The name this process last claimed for the PBX."""

    async def __call__(self, client: AmiClient) -> None:
        """Read the PBX's system name, claim it, and refuse the session when it may not act."""
        name, problem = await self._read(client)
        self.system_name = name
        claim = await self._claim(name)
        if claim is None:  # the database did not answer: drive the PBX as before, say so
            self._passed(name, problem)
            return
        if claim.holder is not None and name is not None:
            problem = clash_reason(self.pbx, name, claim.holder)
        elif not claim.other_pbxs:
            self._claimed = name
            self._passed(name, problem)  # a lone PBX's odd or unread name is only a warning
            return
        if problem is None:
            self._claimed = name
            self._passed(name, None)
            return
        if problem != self.refused:  # once per reason: the client retries every ≤ 30 s
            log.error("pbx_identity_refused", pbx=self.pbx, system_name=name, reason=problem)
        self.refused = problem
        raise AmiRefused(problem)

    async def _claim(self, name: str | None) -> SystemNameClaim | None:
        """The store's answer, or ``None`` when it cannot give one now. A database outage
        must not take the PBX's calls away as well: the PBX is driven unchecked (a name this
        process claimed before is still this PBX's), and the next login checks again."""
        try:
            async with asyncio.timeout(CLAIM_SECONDS):
                return await self._store.claim_system_name(self.pbx, name)
        except Exception as exc:  # any store failure: unchecked, not refused
            log.warning(
                "pbx_identity_unchecked",
                pbx=self.pbx,
                system_name=name,
                claimed_before=name is not None and name == self._claimed,
                error=repr(exc),
            )
            return None

    async def _read(self, client: AmiClient) -> tuple[str | None, str | None]:
        """The PBX's ``SystemName`` (``None`` when it cannot be read) and what is wrong with it."""
        try:
            settings = await client.send_action(act.core_settings())
        except AmiActionError as exc:
            return None, (
                f"the PBX refused CoreSettings ({exc.message}), so its systemname is unknown: "
                "give the AMI user write = system (asterisk/manager.d/ccbridge.conf)"
            )
        name = (settings.get("SystemName") or "").strip()
        return name, shape_problem(name)

    def _passed(self, name: str | None, warning: str | None) -> None:
        """This node may drive the PBX."""
        self.refused = None
        if warning is not None:
            log.warning("pbx_identity_unusual", pbx=self.pbx, warning=warning)
        shown = "unknown" if name is None else describe(name)
        log.info("pbx_identity", pbx=self.pbx, system_name=shown)
