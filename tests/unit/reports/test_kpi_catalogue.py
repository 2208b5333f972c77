"""The KPI catalogue: each KPI defined once, docs generated from it, rates empty on zero."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ccbridge.cli import app
from ccbridge.domain.kpis.catalogue import BY_KEY, KPIS, evaluate, kpi, render_markdown
from ccbridge.domain.kpis.tally import CallTally, SeatTally

ROOT = Path(__file__).resolve().parents[3]


def test_committed_kpi_docs_match_the_catalogue() -> None:
    """Regenerate with `ccbridge reports kpi-docs` when this fails."""
    assert (ROOT / "docs" / "kpis.md").read_text(encoding="utf-8") == render_markdown()


def test_the_cli_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "kpis.md"
    result = CliRunner().invoke(app, ["reports", "kpi-docs", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render_markdown()
    assert "| `service_level` | 及时应答率 |" in render_markdown()


def test_every_kpi_is_defined_once_and_reads_only_tally_inputs() -> None:
    assert len(BY_KEY) == len(KPIS)
    call_inputs = set(CallTally().inputs())
    seat_inputs = set(SeatTally().inputs())
    for k in KPIS:
        allowed = call_inputs if k.basis.value == "calls" else seat_inputs
        assert set(k.inputs) <= allowed, k.key


def test_rates_are_empty_when_nothing_was_offered() -> None:
    empty = evaluate(("answer_rate", "service_level", "asa", "aht"), CallTally().inputs())
    assert empty == {"answer_rate": None, "service_level": None, "asa": None, "aht": None}
    only_short = CallTally(offered=2, abandoned=2, short_abandoned=2)
    assert kpi("abandon_rate").value(only_short.inputs()) is None


def test_work_efficiency_threshold_is_the_contracts_18_per_hour() -> None:
    threshold = kpi("work_efficiency").threshold
    assert threshold is not None
    hour = SeatTally(signed_in_s=3600, billable=18).inputs()
    assert threshold.met(kpi("work_efficiency").value(hour)) is True
    assert threshold.met(kpi("work_efficiency").value({**hour, "billable": 17})) is False
    assert threshold.met(None) is None
