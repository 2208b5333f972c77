"""In-memory IVR ports for tests: a fixed active flow per tenant, a list as the call log."""

from __future__ import annotations

from pathlib import Path

from ccbridge.domain.ivr.model import Flow
from ccbridge.ivr_format.parse import load_document, parse_flow
from ccbridge.services.ivr_ports import ActiveFlow, IvrCallRecord

FLOWS_DIR = Path(__file__).resolve().parents[2] / "ivr_flows"
EXAMPLES = ("main_menu_bilingual.yaml", "return_visit_survey.yaml", "after_hours_voicemail.json")


def load_example(name: str) -> Flow:
    """Parse one of ivr_flows/ and insist it is faultless."""
    path = FLOWS_DIR / name
    media = "application/yaml" if path.suffix == ".yaml" else "application/json"
    parsed = parse_flow(load_document(path.read_bytes(), media))
    assert not parsed.errors, parsed.errors
    assert parsed.flow is not None
    return parsed.flow


class StaticFlows:
    """ActiveFlowSource: one flow per tenant, no database."""

    def __init__(self, flows: dict[str, Flow], timezone: str | None = None) -> None:
        self.flows = flows
        self.timezone = timezone

    async def flow_for(
        self, tenant_id: str, did: str, flow_id: str | None = None
    ) -> ActiveFlow | None:
        flow = self.flows.get(tenant_id)
        if flow is None or flow_id not in (None, "main"):
            return None
        return ActiveFlow(tenant_id, "main", 1, flow, timezone=self.timezone)


class ListSink:
    """CallLogSink that keeps the records."""

    def __init__(self) -> None:
        self.records: list[IvrCallRecord] = []

    def record(self, entry: IvrCallRecord) -> None:
        self.records.append(entry)
