"""Multi-node mode is PostgreSQL only, needs a real PBX, and refuses timings that could lose
a term to one late renewal; the single-node default is untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ccbridge.bootstrap import StartRefusedError, run_service
from ccbridge.cli import app
from ccbridge.settings import HaSettings, Settings

PG = "postgresql+asyncpg://ccbridge@db/ccbridge"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_single_node_is_the_default_and_needs_nothing() -> None:
    plain = settings()
    assert plain.ha.enabled is False
    assert plain.check_high_availability() == []


def test_ha_on_sqlite_is_refused_with_the_reason(tmp_path: Path) -> None:
    s = settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        ami={"host": "pbx"},
        ha={"enabled": True},
    )
    problems = s.check_high_availability()
    assert len(problems) == 1
    assert "needs PostgreSQL" in problems[0]
    assert "SQLite" in problems[0]


def test_ha_with_the_simulator_is_refused() -> None:
    s = settings(database_url=PG, ha={"enabled": True})
    assert any("real PBX" in p for p in s.check_high_availability())


def test_ha_on_postgresql_with_a_pbx_starts() -> None:
    s = settings(database_url=PG, ami={"host": "pbx"}, ha={"enabled": True, "node_id": "n1"})
    assert s.check_high_availability() == []
    assert s.ha.node_name() == "n1"


def test_the_node_name_defaults_to_the_host_name() -> None:
    assert HaSettings().node_name()


def test_a_renew_interval_too_long_for_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="renew_interval_seconds"):
        HaSettings(lease_ttl_seconds=5.0, renew_interval_seconds=2.5, fence_margin_seconds=1.0)
    HaSettings(lease_ttl_seconds=5.0, renew_interval_seconds=2.0, fence_margin_seconds=1.0)


def test_serve_refuses_ha_on_sqlite_before_opening_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("CCBRIDGE_AMI__HOST", "pbx")
    monkeypatch.setenv("CCBRIDGE_HA__ENABLED", "true")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "CCBRIDGE_HA__ENABLED needs PostgreSQL" in result.output
    assert not (tmp_path / "x.db").exists()


async def test_run_service_refuses_ha_on_sqlite_too(tmp_path: Path) -> None:
    s = settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        ami={"host": "pbx"},
        ha={"enabled": True},
    )
    with pytest.raises(StartRefusedError, match="needs PostgreSQL"):
        await run_service(s)
    assert not (tmp_path / "x.db").exists()
