"""`.env.example` is generated from the settings model, so it can never miss a setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from ccbridge.cli import app
from ccbridge.env_example import MissingDescriptionError, render_env_example
from ccbridge.settings import Settings

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / ".env.example"


def test_the_committed_env_example_is_the_generated_one() -> None:
    """Regenerate with: ccbridge settings env-example > .env.example"""
    assert EXAMPLE.read_text(encoding="utf-8") == render_env_example()


def test_the_cli_prints_the_same_text() -> None:
    result = CliRunner().invoke(app, ["settings", "env-example"])
    assert result.exit_code == 0
    assert result.output == render_env_example()


@pytest.mark.parametrize(
    "name",
    [
        "CCBRIDGE_IVR__PROMPTS_DIR",
        "CCBRIDGE_IVR__ASTERISK_PROMPTS_DIR",
        "CCBRIDGE_IVR__CRM_ALLOWED_HOSTS",
        "CCBRIDGE_ASTERISK_GENERATED_DIR",
    ],
)
def test_the_settings_issue_18_found_missing_are_there(name: str) -> None:
    assert f"{name}=" in EXAMPLE.read_text(encoding="utf-8")


def test_copied_as_is_it_configures_exactly_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line parses, and each value is the default (commented lines stay unset)."""
    import os

    for key in list(os.environ):
        if key.startswith("CCBRIDGE_"):
            monkeypatch.delenv(key)
    from_file = Settings(_env_file=EXAMPLE)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_file.model_dump(mode="json") == defaults.model_dump(mode="json")


def test_a_setting_without_a_description_cannot_be_rendered() -> None:
    class Knobs(BaseModel):
        """Example."""

        model_config = ConfigDict(use_attribute_docstrings=True)

        documented: int = 1
        """Says what it does."""
        silent: int = 2

    with pytest.raises(MissingDescriptionError, match="CCBRIDGE_SILENT"):
        render_env_example(Knobs)
