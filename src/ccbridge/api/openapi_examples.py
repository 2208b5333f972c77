"""Examples for the OpenAPI document: one per schema, and per operation where no schema says it.

Kept beside each other so a reviewer sees the API's vocabulary in one place; a test validates
every example against its schema, so an example cannot drift from the model it shows.
"""

from __future__ import annotations

from typing import Any

SCHEMA_EXAMPLES: dict[str, Any] = {}
"""Schema name → one example instance (also lifted onto every body that uses the schema)."""

OPERATION_EXAMPLES: dict[str, dict[str, Any]] = {}
"""Operation id → examples by status code (``"200"``), ``"request"``, or media type."""
