"""Persistence: SQLAlchemy schema, Alembic migrations and the repository (SQLite default, PostgreSQL optional)."""

from wardwatch.store.repository import Store, database_url

__all__ = ["Store", "database_url"]
