"""Persistence adapter: SQLAlchemy 2 async engine, tables and repositories."""
