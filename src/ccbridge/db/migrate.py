"""Run Alembic programmatically (``ccbridge migrate``, test fixtures) without an ini file.

Assumption: ccbridge runs from a source checkout installed in editable mode (``pip install -e .``),
so the revisions live in ``<repo>/migrations`` next to ``src/``. A deployment that installs a
wheel must ship that folder and point ``CCBRIDGE_MIGRATIONS_DIR`` at it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from ccbridge.db.engine import create_engine

MIGRATIONS_DIR_ENV = "CCBRIDGE_MIGRATIONS_DIR"


class MigrationsNotFoundError(RuntimeError):
    """Raised when no Alembic scripts folder is found (wheel install without the env var)."""


def migrations_dir() -> Path:
    """Locate the Alembic scripts: ``$CCBRIDGE_MIGRATIONS_DIR`` or ``<repo>/migrations``."""
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    # src/ccbridge/db/migrate.py -> parents[3] is the checkout root (editable install).
    path = Path(override) if override else Path(__file__).resolve().parents[3] / "migrations"
    if not (path / "env.py").is_file():
        raise MigrationsNotFoundError(
            f"no Alembic env.py in {path}; set {MIGRATIONS_DIR_ENV} to the migrations folder"
        )
    return path


def alembic_config(url: str) -> Config:
    """Build an in-memory Alembic config pointing at the scripts folder and *url*."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolates '%', which appears in URL-encoded passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def run_migrations(url: str, revision: str = "head") -> None:
    """Upgrade the database at *url* to *revision*; call only where no event loop runs."""
    asyncio.run(run_migrations_async(url, revision))


async def run_migrations_async(url: str, revision: str = "head") -> None:
    """Upgrade the database at *url* to *revision* from inside a running event loop."""
    config = alembic_config(url)
    engine = create_engine(url, null_pool=True)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    """Lend *connection* to env.py so Alembic does not open (or asyncio.run) its own."""
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
