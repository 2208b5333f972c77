"""Ports of the IVR use cases: flow and revision store, prompts, call logs, CRM lookups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.calendar import WEEKDAYS_ONLY, WorkingCalendar
from ccbridge.domain.dialing import OutboundRights
from ccbridge.domain.ivr.engine import LookupAnswer
from ccbridge.domain.ivr.model import Flow
from ccbridge.domain.ivr.validation import FlowError
from ccbridge.errors import CcbridgeError, ErrorCode

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PromptLimits:
    """What one prompt upload and a tenant's prompts together may cost (settings)."""

    max_input_bytes: int = 10 * MIB
    max_duration_seconds: int = 600
    max_output_bytes: int = 20 * MIB
    quota_bytes: int = 200 * MIB
    quota_overrides: Mapping[str, int] = field(default_factory=dict)
    """Per-tenant quotas a platform operator set (tenant id → bytes)."""

    def quota_for(self, tenant_id: str) -> int:
        """The tenant's prompt storage quota in bytes."""
        return self.quota_overrides.get(tenant_id, self.quota_bytes)


class PromptTooLargeError(CcbridgeError):
    """An upload, its converted audio or the tenant's prompts over a byte limit (named)."""

    code = ErrorCode.VALIDATION
    status = 413
    title = "Prompt too large"


class PromptTooLongError(CcbridgeError):
    """Audio that plays longer than the limit (named)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Prompt too long"


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A tenant's flow: its id, name and current draft (editable until published)."""

    tenant_id: str
    flow_id: str
    name: str
    draft: dict[str, Any]
    draft_version: int
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """An immutable published revision; it serves calls from ``effective_at`` on."""

    tenant_id: str
    flow_id: str
    revision: int
    document: dict[str, Any]
    author: str
    message: str
    created_at: datetime
    effective_at: datetime
    activated_at: datetime | None = None
    rollback_of: int | None = None


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """An uploaded prompt: referenced by ``prompt_id``, stored under a generated file name."""

    tenant_id: str
    prompt_id: str
    file_name: str
    bytes: int
    duration_ms: int
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class IvrCallRecord:
    """One call's walk through a flow, for the reports: path, choices and how it ended."""

    tenant_id: str
    flow_id: str
    revision: int
    uniqueid: str
    caller: str
    started_at: datetime
    ended_at: datetime
    path: list[str]
    steps: list[dict[str, str | None]]
    route: str
    target: str
    reason: str
    drop_off_node: str | None


@dataclass(frozen=True, slots=True)
class ActiveFlow:
    """The revision that serves a tenant's calls now, with what the runner needs to play it."""

    tenant_id: str
    flow_id: str
    revision: int
    flow: Flow
    prompt_files: Mapping[str, str] = field(default_factory=dict)
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class TenantFacts:
    """What a tenant's flows are checked against: its zone, skill groups and outbound rights."""

    timezone: str
    skill_groups: frozenset[str]
    outbound: OutboundRights
    calendar: WorkingCalendar = WEEKDAYS_ONLY
    """The platform's working days around the moment asked about (time switches' ``workdays``)."""


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What the flow codec made of a document: the flow (if its shell parsed) and faults."""

    document: dict[str, Any]
    flow: Flow | None
    errors: list[FlowError]


class FlowCodec(Protocol):
    """Reads flow documents (JSON/YAML) under the size, depth and node limits."""

    def load(self, data: bytes, media_type: str) -> dict[str, Any]:
        """Decode bytes; raise ``FlowTooLargeError`` / ``FlowLimitExceededError``."""
        ...

    def parse(self, document: dict[str, Any], known_prompts: set[str] | None = None) -> ParseResult:
        """Validate a decoded document; every fault carries its JSON path."""
        ...


class IvrFlowRepo(Protocol):
    """Flows, drafts and revisions of every tenant."""

    async def get_flow(self, tenant_id: str, flow_id: str) -> FlowRecord | None:
        """Return the flow, or ``None``."""
        ...

    async def list_flows(self, tenant_id: str) -> list[FlowRecord]:
        """Return the tenant's flows ordered by id."""
        ...

    async def save_draft(self, record: FlowRecord, expected_version: int | None) -> FlowRecord:
        """Create (``expected_version`` None) or replace the draft; ``ConflictError`` if stale."""
        ...

    async def add_revision(self, record: RevisionRecord) -> RevisionRecord:
        """Store a new revision with the next number; return it as stored."""
        ...

    async def get_revision(
        self, tenant_id: str, flow_id: str, revision: int
    ) -> RevisionRecord | None:
        """Return one revision, or ``None``."""
        ...

    async def list_revisions(self, tenant_id: str, flow_id: str) -> list[RevisionRecord]:
        """Return the flow's revisions, newest first."""
        ...

    async def activate_due(self, now: datetime) -> list[RevisionRecord]:
        """Mark every revision due by ``now`` as activated; return those just activated."""
        ...

    async def active_revisions(self) -> list[RevisionRecord]:
        """Return the newest activated revision of every flow of every tenant."""
        ...

    async def state_stamp(self) -> tuple[int, datetime | None]:
        """Return a cheap stamp (revision count, newest activation) for cache checks."""
        ...


class PromptRepo(Protocol):
    """Uploaded prompts per tenant."""

    async def add(self, record: PromptRecord) -> PromptRecord:
        """Store a prompt (``AlreadyExists`` when the id is taken)."""
        ...

    async def list(self, tenant_id: str) -> list[PromptRecord]:
        """Return the tenant's prompts ordered by id."""
        ...


class PromptConverter(Protocol):
    """Turns uploaded audio into what Asterisk plays (8 kHz 16-bit mono WAV)."""

    async def convert(
        self,
        tenant_id: str,
        data: bytes,
        suffix: str,
        *,
        max_duration_seconds: int,
        max_output_bytes: int,
    ) -> tuple[str, int, int]:
        """Convert and store; return (file name, bytes, duration in ms).

        Refuses audio longer than *max_duration_seconds* (``PromptTooLongError``) before
        converting, and never writes more than *max_output_bytes* (``PromptTooLargeError``;
        the partial file is deleted).
        """
        ...

    def remove(self, tenant_id: str, file_name: str) -> None:
        """Delete a stored prompt file."""
        ...

    def read(self, tenant_id: str, file_name: str) -> bytes | None:
        """The stored prompt's WAV, or ``None`` when its file is gone."""
        ...


class CallLogSink(Protocol):
    """Takes one call's IVR record without making the call wait for the database."""

    def record(self, entry: IvrCallRecord) -> None:
        """Queue ``entry`` for writing."""
        ...


class CallLogQuery(Protocol):
    """Reads the per-call IVR logs for reports."""

    async def list(self, tenant_id: str, limit: int = 100) -> list[IvrCallRecord]:
        """Return the tenant's newest call logs."""
        ...


class CrmLookup(Protocol):
    """Asks a tenant's CRM over HTTP, within a timeout, for the HTTP lookup node."""

    async def lookup(
        self, tenant_id: str, url: str, query: Mapping[str, str], timeout_ms: int
    ) -> LookupAnswer:
        """Return the fields of the CRM's JSON object, or ``ok=False`` on any failure.

        *tenant_id* selects the tenant's egress allow-list.
        """
        ...


class ActiveFlowSource(Protocol):
    """The revision serving a tenant's DID now (cached)."""

    async def flow_for(
        self, tenant_id: str, did: str, flow_id: str | None = None
    ) -> ActiveFlow | None:
        """Return the active flow for this DID (or the tenant's default), or ``None``; with
        *flow_id*, that flow's active revision (the number is mapped to it)."""
        ...


class TenantFactsSource(Protocol):
    """The tenant's state a flow depends on, read when publishing and when a call starts."""

    async def facts(self, tenant_id: str, at: datetime) -> TenantFacts:
        """Return the tenant's time zone, skill groups and outbound rights in force at ``at``."""
        ...
