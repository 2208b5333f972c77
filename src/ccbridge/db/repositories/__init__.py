"""Repositories: the only code that builds SQL; they map rows to domain records explicitly."""

from ccbridge.db.repositories.calls import CallRepository

__all__ = ["CallRepository"]
