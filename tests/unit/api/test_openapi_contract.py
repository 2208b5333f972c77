"""The committed OpenAPI document is the API contract: a change to it must be reviewed."""

from __future__ import annotations

import json
from pathlib import Path

from ccbridge.api.app import openapi_document

COMMITTED = Path(__file__).parents[3] / "docs" / "api" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    current = openapi_document()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert current == committed, (
        "The API changed. Review the change, then run "
        "`.venv/bin/ccbridge openapi > docs/api/openapi.json` and commit it."
    )


def test_every_error_response_is_documented_as_problem_json_shape() -> None:
    doc = openapi_document()
    assert "/api/v1/calls/{call_id}" in doc["paths"]
    assert "404" in doc["paths"]["/api/v1/calls/{call_id}"]["get"]["responses"]
