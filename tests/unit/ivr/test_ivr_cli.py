"""``ccbridge ivr validate | simulate | schema`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ccbridge.cli import app
from tests.fakes.ivr import EXAMPLES, FLOWS_DIR

runner = CliRunner()


def test_every_example_validates() -> None:
    for name in EXAMPLES:
        result = runner.invoke(app, ["ivr", "validate", str(FLOWS_DIR / name)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["valid"] is True


def test_validate_says_what_it_cannot_check_without_a_tenant(tmp_path: Path) -> None:
    flow = tmp_path / "f.json"
    flow.write_text(
        json.dumps(
            {
                "name": "f",
                "start": "a",
                "nodes": {
                    "a": {
                        "type": "menu",
                        "prompt": "m",
                        "options": {"1": {"next": "q"}},
                        "on_fail": "x",
                    },
                    "q": {"type": "queue", "skill_group": "nosuch"},
                    "x": {"type": "transfer", "number": "00442079460000"},
                },
            }
        )
    )
    result = runner.invoke(app, ["ivr", "validate", str(flow)])
    assert result.exit_code == 0, result.output  # the group and the number need the tenant
    out = json.loads(result.output)
    assert out["unchecked"] == ["skill_groups", "transfer_rights", "prompts"]
    assert "/ivr/validate" in out["note"]
    result = runner.invoke(app, ["ivr", "validate", str(flow), "--prompts", "m"])
    assert json.loads(result.output)["unchecked"] == ["skill_groups", "transfer_rights"]


def test_validate_exits_nonzero_with_json_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstart: menu\nnodes:\n"
        "  menu: {type: menu, prompt: m, on_fail: q,\n"
        "         options: {'1': {next: q}, '9': {next: gone}}}\n"
        "  q: {type: queue, skill_group: sales}\n"
        "  spin: {type: play, prompt: '../../etc/passwd', next: spin}\n"
    )
    result = runner.invoke(app, ["ivr", "validate", str(bad)])
    assert result.exit_code == 1
    errors = {e["path"]: e["code"] for e in json.loads(result.output)["errors"]}
    assert errors == {
        "$.nodes.menu.options.9.next": "dangling_transition",
        "$.nodes.spin.prompt": "bad_prompt_id",
    }


def test_validate_names_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"name": "x", "start": "a", "nodes": {}, "description": "y" * 2**21}))
    result = runner.invoke(app, ["ivr", "validate", str(big)])
    assert result.exit_code == 1
    assert json.loads(result.output)["errors"][0]["code"] == "max_body_bytes"


def test_validate_checks_prompts_when_given() -> None:
    path = str(FLOWS_DIR / "after_hours_voicemail.json")
    result = runner.invoke(app, ["ivr", "validate", path, "--prompts", "goodbye,vm_intro"])
    assert result.exit_code == 1
    codes = {e["code"] for e in json.loads(result.output)["errors"]}
    assert codes == {"missing_prompt"}


def test_simulate_prints_the_path() -> None:
    result = runner.invoke(
        app,
        [
            "ivr",
            "simulate",
            str(FLOWS_DIR / "main_menu_bilingual.yaml"),
            "--digits",
            "2,2",
            "--at",
            "2026-12-01T10:00+08:00",
            "--caller",
            "13912345678",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["path"] == ["hours", "choose_language", "main_menu", "vip_check", "vip"]
    assert (out["route"], out["target"]) == ("queue", "vip")
    assert out["actions"][1]["prompt"] == "menu_en"


def test_committed_schema_is_up_to_date() -> None:
    result = runner.invoke(app, ["ivr", "schema"])
    assert result.exit_code == 0
    assert (FLOWS_DIR / "schema.json").read_text() == result.output, (
        "regenerate: .venv/bin/ccbridge ivr schema > ivr_flows/schema.json"
    )
    schema = json.loads(result.output)
    assert schema["properties"]["nodes"]["maxProperties"] == 500
