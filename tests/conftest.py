"""Shared pytest configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

CAPTURES = Path(__file__).parent / "fixtures" / "asterisk-captures"


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """Real Asterisk 22.10.1 traffic, byte for byte (see its README)."""
    return CAPTURES
