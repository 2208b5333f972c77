"""The drills use the session's PostgreSQL server (each drill makes its own database)."""

from tests.integration.conftest import pg_database_url

__all__ = ["pg_database_url"]
