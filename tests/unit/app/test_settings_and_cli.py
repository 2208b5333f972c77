"""Settings from the environment, masked config output, refusal of unsafe production config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccbridge.cli import app
from ccbridge.settings import Settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CCBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults_are_sqlite_and_simulator() -> None:
    s = Settings()
    assert s.database_url == "sqlite+aiosqlite:///./ccbridge.db"
    assert s.use_simulator is True
    assert s.ami.port == 5038


def test_nested_env_and_empty_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCBRIDGE_AMI__HOST", "")
    assert Settings().use_simulator is True
    monkeypatch.setenv("CCBRIDGE_AMI__HOST", "10.0.0.5")
    monkeypatch.setenv("CCBRIDGE_AMI__PORT", "5039")
    s = Settings()
    assert (s.ami.host, s.ami.port, s.use_simulator) == ("10.0.0.5", 5039, False)


def test_routes_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCBRIDGE_ROUTES", '{"4008001234": {"tenant": "t1", "queue": "t1-sales"}}')
    assert Settings().routes["4008001234"].queue == "t1-sales"
    monkeypatch.setenv("CCBRIDGE_ROUTES", '{"abc": {"tenant": "t1", "queue": "q"}}')
    with pytest.raises(ValueError, match="dialled numbers"):
        Settings()


def test_check_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCBRIDGE_AMI__SECRET", "hunter2-very-secret")
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", "postgresql+asyncpg://app:pw123@db:5432/cc")
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "pw123" not in result.output
    data = json.loads(result.output)
    assert data["database_url"] == "postgresql+asyncpg://app:****@db:5432/cc"
    assert data["use_simulator"] is True


def test_bad_database_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", "mysql://x")
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 2
    assert "CCBRIDGE_DATABASE_URL" in result.output


def test_prod_mode_refuses_dev_secret_and_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCBRIDGE_MODE", "prod")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "development default" in result.output
    assert "simulator" in result.output
    assert "CCBRIDGE_AUTH__JWT_SECRET" in result.output


def test_jwt_secret_is_masked_and_accepted_when_strong(monkeypatch: pytest.MonkeyPatch) -> None:
    strong = "s3cr3t-" * 8
    monkeypatch.setenv("CCBRIDGE_AUTH__JWT_SECRET", strong)
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0
    assert strong not in result.output
    monkeypatch.setenv("CCBRIDGE_MODE", "prod")
    monkeypatch.setenv("CCBRIDGE_AMI__HOST", "10.0.0.5")
    monkeypatch.setenv("CCBRIDGE_AMI__SECRET", "not-the-default")
    assert Settings().check_production_secrets() == [
        "CCBRIDGE_RECORDINGS__LINK_SECRET must be set (32+ characters) in prod mode",
        "CCBRIDGE_RECORDINGS__REPORT_SIGNING_KEY must be set (32+ characters or an "
        "Ed25519 PEM private key) in prod mode",
        "CCBRIDGE_SECRETS_KEY must be set (32+ characters) in prod mode",
    ]
    monkeypatch.setenv("CCBRIDGE_RECORDINGS__LINK_SECRET", "l1nk-" * 8)
    monkeypatch.setenv("CCBRIDGE_RECORDINGS__REPORT_SIGNING_KEY", "r3p0rt-" * 6)
    monkeypatch.setenv("CCBRIDGE_SECRETS_KEY", "b0x-" * 10)
    monkeypatch.setenv("CCBRIDGE_SECRETS_OLD_KEYS", '["old-key-0123456789"]')
    settings = Settings()
    assert settings.check_production_secrets() == []
    assert [k.get_secret_value() for k in settings.secrets_old_keys] == ["old-key-0123456789"]
    shown = runner.invoke(app, ["check-config"]).output
    assert "b0x-b0x-" not in shown
    assert "r3p0rt-" not in shown
    assert "old-key-0123456789" not in shown


def test_health_command_fails_when_nothing_listens() -> None:
    result = runner.invoke(app, ["health", "--url", "http://127.0.0.1:9/readyz"])
    assert result.exit_code == 1


def test_api_process_refuses_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`ccbridge api` follows the journal by LISTEN/NOTIFY, which SQLite lacks."""
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    result = runner.invoke(app, ["api"])
    assert result.exit_code == 2
    assert "needs PostgreSQL" in result.output


@pytest.mark.parametrize("command", ["serve", "api"])
def test_serve_and_api_refuse_to_start_in_prod_with_dev_secrets(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both entry points refuse before opening anything, naming every default secret."""
    monkeypatch.setenv("CCBRIDGE_MODE", "prod")
    result = runner.invoke(app, [command])
    assert result.exit_code == 2
    assert "refusing to start: CCBRIDGE_AMI__SECRET still has the development default" in (
        result.output
    )
    assert "CCBRIDGE_SECRETS_KEY must be set" in result.output


def _prod_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prod mode with every secret set and a PBX: only the generated dir is left to check."""
    monkeypatch.setenv("CCBRIDGE_MODE", "prod")
    monkeypatch.setenv("CCBRIDGE_AMI__HOST", "pbx.invalid")
    monkeypatch.setenv("CCBRIDGE_AMI__SECRET", "s" * 40)
    for name in (
        "AUTH__JWT_SECRET",
        "RECORDINGS__LINK_SECRET",
        "RECORDINGS__REPORT_SIGNING_KEY",
        "SECRETS_KEY",
    ):
        monkeypatch.setenv(f"CCBRIDGE_{name}", name.lower() * 3)


def test_serve_in_prod_refuses_a_relative_or_missing_generated_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The PBX includes queues.conf from a fixed place: prod needs it absolute and present."""
    _prod_env(monkeypatch)
    result = runner.invoke(app, ["serve"])  # default ./asterisk/generated
    assert result.exit_code == 2
    assert "CCBRIDGE_ASTERISK_GENERATED_DIR must be an absolute path" in result.output
    monkeypatch.setenv("CCBRIDGE_ASTERISK_GENERATED_DIR", str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'nowhere'} does not exist" in result.output
