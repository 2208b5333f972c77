"""The web console in a real browser against `ccbridge serve` with the PBX simulator.

Each scenario is a Node script (scenarios/*.mjs) that drives Debian's Chromium through
playwright-core, runs axe-core on every page it shows (no serious or critical violation) and
saves a screenshot with the test's artifacts, or under docs/screenshots/ with
``CCB_UPDATE_SCREENSHOTS=1`` (ADR 0023).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.browser.conftest import Console, api_status, run_scenario

pytestmark = pytest.mark.slow


def test_sign_in_page_in_chinese_switches_to_english_and_shows_a_refusal(
    node: str, console: Console, tmp_path: Path
) -> None:
    out = run_scenario(node, console, "home", tmp_path)
    assert "PASSED home" in out


def test_agent_takes_a_simulated_call_sees_its_variables_holds_and_transfers_it(
    node: str, console: Console, tmp_path: Path
) -> None:
    out = run_scenario(node, console, "seat", tmp_path)
    assert "PASSED seat-bar" in out
    assert "four variables:" in out
    assert '"kind":"blind"' in out
    assert "refused: The request failed: 'three_way_call' is not available" in out


def test_flow_fails_validation_on_its_node_then_is_fixed_simulated_and_published(
    node: str, console: Console, tmp_path: Path
) -> None:
    out = run_scenario(node, console, "flows", tmp_path)
    assert "PASSED flow-editor" in out
    assert "unknown_skill_group" in out
    assert "welcome → support" in out
    assert "scheduled revision" in out
    if shutil.which("sox"):  # the server converts uploaded prompts with sox
        assert "upload a prompt" in out


def test_recording_is_found_and_played_with_range_requests(
    node: str, console: Console, tmp_path: Path
) -> None:
    out = run_scenario(node, console, "recordings", tmp_path)
    assert "PASSED recordings" in out
    assert '"status":206' in out


def test_report_is_run_viewed_and_downloaded_as_csv_and_xlsx(
    node: str, console: Console, tmp_path: Path
) -> None:
    out = run_scenario(node, console, "reports", tmp_path)
    assert "PASSED reports" in out


def test_supervisor_sees_the_wallboard_follow_a_call_and_a_break_too_long_alert(
    node: str, console: Console, tmp_path: Path
) -> None:
    if api_status(console, "/api/v1/tenants/t1/wallboard") == 404:
        pytest.skip(
            "this build has no wallboard API yet (GET /api/v1/tenants/t1/wallboard answers 404); "
            "the page falls back to the live seat list until the floor-alerts work merges"
        )
    out = run_scenario(node, console, "wallboard", tmp_path)
    assert "PASSED wallboard" in out
    assert "alert shown:" in out
    # The push lag (call step → wallboard frame, server clocks) is reported, never asserted.
    lag = [line for line in out.splitlines() if "after the call's step" in line]
    sys.stdout.write("\n".join(lag) + "\n")
