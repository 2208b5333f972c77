"""IVR flow use cases: drafts, validation, scheduled publishing, revisions, diff, rollback,
simulation and the activation job. Every change is audited; a refused flow stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ccbridge.domain.access import Principal, Role
from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.ivr.diff import FlowDiff, diff_documents
from ccbridge.domain.ivr.engine import CallContext
from ccbridge.domain.ivr.model import PROMPT_ID_RE, Flow, HttpLookupNode
from ccbridge.domain.ivr.simulator import Simulation, simulate
from ccbridge.domain.ivr.validation import FlowError, tenant_faults
from ccbridge.domain.leases.model import ChangeKind
from ccbridge.errors import CcbridgeError, ConflictError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import NoticeCalendar
from ccbridge.services.egress import ConfigurationChecker
from ccbridge.services.ivr_ports import (
    CallLogQuery,
    FlowCodec,
    FlowRecord,
    IvrCallRecord,
    IvrFlowRepo,
    ParseResult,
    PromptConverter,
    PromptLimits,
    PromptRecord,
    PromptRepo,
    PromptTooLargeError,
    RevisionRecord,
    TenantFacts,
    TenantFactsSource,
)

SYSTEM = Principal(actor="system:ivr-scheduler", role=Role.PLATFORM_ADMIN, tenant_id=None)
"""Who activates scheduled revisions in the audit log."""


class FlowInvalidError(CcbridgeError):
    """The flow has faults; ``errors`` lists each with its JSON path. Nothing was stored."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid IVR flow"

    def __init__(self, errors: list[FlowError]) -> None:
        shown = "; ".join(f"{e.path} ({e.code})" for e in errors[:MAX_FAULTS_IN_DETAIL])
        more = len(errors) - MAX_FAULTS_IN_DETAIL
        super().__init__(
            f"the flow has {len(errors)} fault(s), all listed in errors: {shown}"
            + (f"; and {more} more" if more > 0 else ""),
            field=errors[0].path,
        )
        self.errors = [{"field": e.path, "code": e.code, "message": e.message} for e in errors]


MAX_FAULTS_IN_DETAIL = 10
"""The ``detail`` line names this many faults; ``errors`` always lists every one."""


def _quota_message(quota: int) -> str:
    return (
        f"the tenant's prompts would exceed their storage quota of {quota} bytes; "
        "delete prompts or ask the platform operator for a larger quota"
    )


class ScheduleRefusedError(CcbridgeError):
    """A tenant asked for a publish time earlier than the contract's one working day notice."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Publish time refused"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of a validation: faults by JSON path (empty when the flow is fine)."""

    errors: list[FlowError]
    node_count: int


class IvrService:
    """Everything a tenant does with its flows, behind the HTTP API and the CLI."""

    def __init__(
        self,
        flows: IvrFlowRepo,
        prompts: PromptRepo,
        codec: FlowCodec,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        *,
        tenants: TenantFactsSource,
        calendar: NoticeCalendar,
        converter: PromptConverter | None = None,
        call_logs: CallLogQuery | None = None,
        prompt_limits: PromptLimits | None = None,
        crm_targets: ConfigurationChecker | None = None,
    ) -> None:
        """*crm_targets* checks HTTP lookup hosts against the egress policy at publish."""
        self.crm_targets = crm_targets
        self.prompt_limits = prompt_limits or PromptLimits()
        """Upload size, duration, output size and per-tenant storage quota."""
        self._tenants = tenants
        self._converter = converter
        self._call_logs = call_logs
        self._flows = flows
        self._prompts = prompts
        self._codec = codec
        self._audit = audit
        self._now = now
        self._calendar = calendar

    # -- validation ----------------------------------------------------------------------------

    def _parse(self, data: bytes, media_type: str, known: set[str] | None = None) -> ParseResult:
        return self._codec.parse(self._codec.load(data, media_type), known)

    async def _known_prompts(self, tenant_id: str) -> set[str]:
        return {p.prompt_id for p in await self._prompts.list(tenant_id)}

    async def validate(self, tenant_id: str, data: bytes, media_type: str) -> ValidationReport:
        """Check a document against every rule and the tenant's state; store nothing.

        The tenant's state is its uploaded prompts, skill groups and outbound rights.
        """
        document = self._codec.load(data, media_type)
        facts = await self._tenants.facts(tenant_id, self._now())
        parsed, errors = await self._check(tenant_id, document, facts)
        nodes = len(parsed.flow.nodes) if parsed.flow is not None else 0
        return ValidationReport(errors, nodes)

    async def _check(
        self, tenant_id: str, document: dict[str, Any], facts: TenantFacts
    ) -> tuple[ParseResult, list[FlowError]]:
        """Every fault at once: shape and graph, missing prompts, then the tenant's state."""
        parsed = self._codec.parse(document, await self._known_prompts(tenant_id))
        errors = list(parsed.errors)
        if parsed.flow is not None:
            errors += tenant_faults(parsed.flow, facts.skill_groups, facts.outbound)
            errors += await self._crm_faults(tenant_id, parsed.flow)
        return parsed, errors

    async def _crm_faults(self, tenant_id: str, flow: Flow) -> list[FlowError]:
        """HTTP lookup nodes whose host the tenant may not reach (checked again per call)."""
        if self.crm_targets is None:
            return []
        faults: list[FlowError] = []
        for node_id, node in flow.nodes.items():
            if not isinstance(node, HttpLookupNode):
                continue
            parts = urlsplit(node.url)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                port = 0
            refused = (
                await self.crm_targets.refusal(tenant_id, parts.hostname or "", port)
                if port
                else "the URL has a bad port"
            )
            if refused is not None:
                faults.append(FlowError(f"$.nodes.{node_id}.url", "refused_address", refused))
        return faults

    async def _publishable(self, tenant_id: str, document: dict[str, Any]) -> TenantFacts:
        """Refuse (422, every fault by JSON path) a document the tenant cannot run now."""
        facts = await self._tenants.facts(tenant_id, self._now())
        parsed, errors = await self._check(tenant_id, document, facts)
        self._valid(ParseResult(parsed.document, parsed.flow, errors))
        return facts

    def _valid(self, parsed: ParseResult) -> Flow:
        if parsed.errors or parsed.flow is None:
            raise FlowInvalidError(parsed.errors or [FlowError("$", "invalid", "invalid flow")])
        return parsed.flow

    # -- drafts --------------------------------------------------------------------------------

    async def create_flow(
        self, who: Principal, tenant_id: str, flow_id: str, data: bytes, media_type: str
    ) -> FlowRecord:
        """Create a flow with its first draft; a faulty document is refused, nothing stored."""
        parsed = self._parse(data, media_type)
        flow = self._valid(parsed)
        record = FlowRecord(
            tenant_id, flow_id, flow.name, parsed.document, 1, self._now(), who.actor
        )
        saved = await self._flows.save_draft(record, None)
        await self._audit.record(
            who, tenant_id, "ivr.flow.create", "ivr_flow", flow_id, {"nodes": len(flow.nodes)}
        )
        return saved

    async def update_draft(
        self,
        who: Principal,
        tenant_id: str,
        flow_id: str,
        data: bytes,
        media_type: str,
        expected_version: int,
    ) -> FlowRecord:
        """Replace the draft (optimistic: ``expected_version`` must be the current one)."""
        await self.get_flow(tenant_id, flow_id)
        parsed = self._parse(data, media_type)
        flow = self._valid(parsed)
        record = FlowRecord(
            tenant_id, flow_id, flow.name, parsed.document, 0, self._now(), who.actor
        )
        saved = await self._flows.save_draft(record, expected_version)
        await self._audit.record(
            who,
            tenant_id,
            "ivr.draft.update",
            "ivr_flow",
            flow_id,
            {"draft_version": saved.draft_version},
        )
        return saved

    async def get_flow(self, tenant_id: str, flow_id: str) -> FlowRecord:
        """Return the flow, or 404."""
        found = await self._flows.get_flow(tenant_id, flow_id)
        if found is None:
            raise NotFoundError(f"no IVR flow {flow_id}")
        return found

    async def list_flows(self, tenant_id: str) -> list[FlowRecord]:
        """Return the tenant's flows."""
        return await self._flows.list_flows(tenant_id)

    # -- publishing ----------------------------------------------------------------------------

    async def earliest_effective(self, who: Principal, now: datetime, timezone: str) -> datetime:
        """Platform admins: now. Tenant roles: one working day later in the tenant's zone (IVR-01).

        The day comes from the lease notice rule for a change of kind IVR, counted on the
        platform's working-day calendar; the local time of day is kept.
        """
        if who.is_platform:
            return now
        local = now.astimezone(tenant_zone(timezone))
        notice = await self._calendar.notice(ChangeKind.IVR, now, timezone)
        return datetime.combine(notice.earliest, local.time(), local.tzinfo)

    async def publish(
        self,
        who: Principal,
        tenant_id: str,
        flow_id: str,
        message: str,
        effective_at: datetime | None = None,
    ) -> RevisionRecord:
        """Publish the draft as a new immutable revision, effective now or at a later time.

        Refused, with every fault, when the tenant could not run it: a prompt not uploaded, a
        skill group it lacks, a number it may not dial.
        """
        flow_record = await self.get_flow(tenant_id, flow_id)
        facts = await self._publishable(tenant_id, flow_record.draft)
        return await self._add_revision(
            who, flow_record.draft, tenant_id, flow_id, message, effective_at, facts.timezone, None
        )

    async def _add_revision(
        self,
        who: Principal,
        document: dict[str, Any],
        tenant_id: str,
        flow_id: str,
        message: str,
        effective_at: datetime | None,
        timezone: str,
        rollback_of: int | None,
    ) -> RevisionRecord:
        now = self._now()
        earliest = await self.earliest_effective(who, now, timezone)
        when = effective_at or earliest
        if when < earliest:
            raise ScheduleRefusedError(
                f"changes take effect one working day after notice: not before "
                f"{earliest.isoformat()}",
                field="effective_at",
            )
        record = RevisionRecord(
            tenant_id=tenant_id,
            flow_id=flow_id,
            revision=0,
            document=document,
            author=who.actor,
            message=message,
            created_at=now,
            effective_at=when,
            activated_at=now if when <= now else None,
            rollback_of=rollback_of,
        )
        saved = await self._flows.add_revision(record)
        await self._audit.record(
            who,
            tenant_id,
            "ivr.revision.rollback" if rollback_of else "ivr.revision.publish",
            "ivr_revision",
            f"{flow_id}@{saved.revision}",
            {
                "effective_at": when.isoformat(),
                "message": message,
                **({"rollback_of": rollback_of} if rollback_of else {}),
            },
        )
        return saved

    async def rollback(
        self,
        who: Principal,
        tenant_id: str,
        flow_id: str,
        revision: int,
        message: str,
        effective_at: datetime | None = None,
    ) -> RevisionRecord:
        """Publish an old revision's document again as a new revision (history is kept).

        Checked like a publish: the tenant's prompts, skill groups or dial rights may have
        changed since that revision was published.
        """
        old = await self.get_revision(tenant_id, flow_id, revision)
        facts = await self._publishable(tenant_id, old.document)
        return await self._add_revision(
            who, old.document, tenant_id, flow_id, message, effective_at, facts.timezone, revision
        )

    async def get_revision(self, tenant_id: str, flow_id: str, revision: int) -> RevisionRecord:
        """Return one revision, or 404."""
        found = await self._flows.get_revision(tenant_id, flow_id, revision)
        if found is None:
            raise NotFoundError(f"no revision {revision} of IVR flow {flow_id}")
        return found

    async def list_revisions(self, tenant_id: str, flow_id: str) -> list[RevisionRecord]:
        """Return the flow's revisions, newest first (404 for an unknown flow)."""
        await self.get_flow(tenant_id, flow_id)
        return await self._flows.list_revisions(tenant_id, flow_id)

    async def diff(self, tenant_id: str, flow_id: str, old: int, new: int | None) -> FlowDiff:
        """Compare two revisions (``new`` None = the current draft), node by node."""
        a = await self.get_revision(tenant_id, flow_id, old)
        if new is None:
            b_doc = (await self.get_flow(tenant_id, flow_id)).draft
        else:
            b_doc = (await self.get_revision(tenant_id, flow_id, new)).document
        return diff_documents(a.document, b_doc)

    async def activate_due(self) -> list[RevisionRecord]:
        """The scheduler job: activate revisions whose time has come; audit each."""
        activated = await self._flows.activate_due(self._now())
        for rev in activated:
            await self._audit.record(
                SYSTEM,
                rev.tenant_id,
                "ivr.revision.activate",
                "ivr_revision",
                f"{rev.flow_id}@{rev.revision}",
                {"effective_at": rev.effective_at.isoformat()},
            )
        return activated

    # -- prompts -------------------------------------------------------------------------------

    async def upload_prompt(
        self, who: Principal, tenant_id: str, prompt_id: str, data: bytes, file_name: str
    ) -> PromptRecord:
        """Convert an upload to 8 kHz mono WAV and register it under ``prompt_id``."""
        if self._converter is None:
            raise CcbridgeError("prompt uploads are not configured")
        if prompt_id.startswith("sys:") or not PROMPT_ID_RE.fullmatch(prompt_id):
            raise FlowInvalidError(
                [FlowError("prompt_id", "bad_prompt_id", "use a-z, 0-9, _ and - (max 64)")]
            )
        limits = self.prompt_limits
        if len(data) > limits.max_input_bytes:
            raise PromptTooLargeError(
                f"the upload is {len(data)} bytes; the limit is {limits.max_input_bytes} bytes",
                field="file",
            )
        existing = await self._prompts.list(tenant_id)
        if prompt_id in {p.prompt_id for p in existing}:
            raise ConflictError(f"prompt {prompt_id} already exists", field="prompt_id")
        quota = limits.quota_for(tenant_id)
        room = quota - sum(p.bytes for p in existing)
        if room <= 0:
            raise PromptTooLargeError(_quota_message(quota), field="file")
        suffix = "." + file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        try:
            # The output cap is the smaller of the per-file limit and what the quota has left,
            # so a conversion never writes past either.
            stored, size, duration = await self._converter.convert(
                tenant_id,
                data,
                suffix,
                max_duration_seconds=limits.max_duration_seconds,
                max_output_bytes=min(limits.max_output_bytes, room),
            )
        except PromptTooLargeError:
            if room < limits.max_output_bytes:
                raise PromptTooLargeError(_quota_message(quota), field="file") from None
            raise
        record = PromptRecord(tenant_id, prompt_id, stored, size, duration, self._now(), who.actor)
        try:
            await self._prompts.add(record)
        except Exception:
            self._converter.remove(tenant_id, stored)
            raise
        await self._audit.record(
            who,
            tenant_id,
            "ivr.prompt.upload",
            "ivr_prompt",
            prompt_id,
            {"bytes": size, "duration_ms": duration},
        )
        return record

    async def list_prompts(self, tenant_id: str) -> list[PromptRecord]:
        """Return the tenant's prompts."""
        return await self._prompts.list(tenant_id)

    async def prompt_audio(self, tenant_id: str, prompt_id: str) -> bytes:
        """The stored WAV of one of the tenant's prompts (played back in the flow editor)."""
        found = next(
            (p for p in await self._prompts.list(tenant_id) if p.prompt_id == prompt_id), None
        )
        audio = None
        if found is not None and self._converter is not None:
            audio = self._converter.read(tenant_id, found.file_name)
        if audio is None:
            raise NotFoundError(f"prompt {prompt_id} not found")
        return audio

    async def call_logs(self, tenant_id: str, limit: int) -> list[IvrCallRecord]:
        """Return the tenant's newest IVR call logs (path, choices, outcome, drop-off node)."""
        if self._call_logs is None:
            return []
        return await self._call_logs.list(tenant_id, limit)

    # -- simulation ----------------------------------------------------------------------------

    async def simulate(
        self,
        tenant_id: str,
        flow_id: str,
        revision: int | None,
        digits: list[str],
        context: CallContext,
        lookups: dict[str, dict[str, str]] | None = None,
    ) -> Simulation:
        """Run the draft (or a revision) offline with scripted digits, time and caller.

        Like a real call, it runs in the tenant's time zone under its outbound rights in force,
        on the platform's working-day calendar.
        """
        if revision is None:
            document = (await self.get_flow(tenant_id, flow_id)).draft
        else:
            document = (await self.get_revision(tenant_id, flow_id, revision)).document
        flow = self._valid(self._codec.parse(document))
        facts = await self._tenants.facts(tenant_id, context.now)
        context = replace(
            context,
            timezone=context.timezone or facts.timezone,
            dial=facts.outbound,
            calendar=facts.calendar,
        )
        return simulate(flow, context, digits, lookups=lookups)
