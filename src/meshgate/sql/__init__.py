"""The platform's SQL store: one port, SQLite and PostgreSQL backends."""

from meshgate.sql.base import Migration, Row, SqlSession, SqlStore, migrate


def open_sql_store(url: str, *, timeout: float = 1.0) -> SqlStore:
    """Pick the backend from the URL: ``sqlite:///path`` or ``postgresql://...``."""
    scheme = url.split(":", 1)[0]
    if scheme == "sqlite":
        from meshgate.sql.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite://").removeprefix("/") or ":memory:")
    if scheme in ("postgresql", "postgres"):
        from meshgate.sql.postgres import PostgresStore

        return PostgresStore(url, timeout=timeout)
    raise ValueError(f"no SQL backend for {scheme!r}")


__all__ = ["Migration", "Row", "SqlSession", "SqlStore", "migrate", "open_sql_store"]
