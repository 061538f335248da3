"""The platform's SQL store: one port, SQLite and PostgreSQL backends."""

from meshgate.core.urls import check_scheme
from meshgate.sql.base import InTransaction, Migration, Row, SqlSession, SqlStore, migrate

SCHEMES = ("sqlite", "postgresql", "postgres")


def open_sql_store(url: str, *, timeout: float = 1.0, key: str = "database_url") -> SqlStore:
    """Pick the backend from the URL: ``sqlite:///path`` or ``postgresql://...``."""
    scheme = check_scheme(url, SCHEMES, key=key)
    if scheme == "sqlite":
        from meshgate.sql.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite://").removeprefix("/") or ":memory:")
    from meshgate.sql.postgres import PostgresStore

    return PostgresStore(url, timeout=timeout)


__all__ = [
    "InTransaction",
    "Migration",
    "Row",
    "SqlSession",
    "SqlStore",
    "migrate",
    "open_sql_store",
]
