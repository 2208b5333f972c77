"""Shared pytest configuration."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CAPTURES = Path(__file__).parent / "fixtures" / "asterisk-captures"
REQUIRE_SOX_ENV = "CCBRIDGE_REQUIRE_SOX"


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """Real Asterisk 22.10.1 traffic, byte for byte (see its README)."""
    return CAPTURES


@pytest.fixture
def sox() -> str:
    """The sox binary; skip without it, fail instead when CCBRIDGE_REQUIRE_SOX=1 (set in CI)."""
    found = shutil.which("sox")
    if found is None:
        reason = "sox is not installed (apt-get install sox): prompt conversion untested"
        if os.environ.get(REQUIRE_SOX_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_SOX_ENV}=1 demands it)", pytrace=False)
        pytest.skip(reason)
    return found
