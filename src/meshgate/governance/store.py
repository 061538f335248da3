"""Audit records, checkpoints and the chain head in the platform SQL store.

Appends are serialized by the one ``audit_head`` row: SQLite's ``BEGIN IMMEDIATE`` takes the
database write lock, PostgreSQL's ``SELECT ... FOR UPDATE`` the row lock, so any number of
processes sharing one database extend a single chain, each record seeing the hash of the one
before it. The head row is a convenience for writers and a tripwire for verification (a
truncated tail no longer matches it); the proof is the chain itself and the signed checkpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from meshgate.governance.chain import GENESIS, record_hash
from meshgate.sql import Migration, Row, SqlSession, SqlStore

MIGRATIONS = [
    Migration(
        "governance",
        1,
        f"""
        CREATE TABLE audit_records (
            seq BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            tenant TEXT NOT NULL,
            action TEXT NOT NULL,
            resource TEXT NOT NULL,
            details TEXT NOT NULL,
            model_version TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_records_tenant ON audit_records (tenant, seq);
        CREATE INDEX audit_records_at ON audit_records (at);
        CREATE INDEX audit_records_resource ON audit_records (resource, seq);
        CREATE TABLE audit_checkpoints (
            seq BIGINT PRIMARY KEY,
            hash TEXT NOT NULL,
            at TEXT NOT NULL,
            max_gap INTEGER NOT NULL,
            key_id TEXT NOT NULL,
            signature TEXT NOT NULL
        );
        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY,
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            checkpoint_seq BIGINT NOT NULL
        );
        INSERT INTO audit_head (id, seq, hash, checkpoint_seq) VALUES (1, 0, '{GENESIS}', 0)
        """,
    ),
    Migration(
        "governance",
        2,
        """
        CREATE TABLE audit_event_refs (
            tenant TEXT NOT NULL,
            event_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            PRIMARY KEY (tenant, event_id)
        );
        CREATE INDEX audit_event_refs_seq ON audit_event_refs (seq)
        """,
    ),
]

PAGE = 1000
# 10 parameters a row; SQLite allows 32766 parameters a statement.
INSERT_CHUNK = 100
LOOKUP_CHUNK = 500
RECORD_COLUMNS = "seq, at, actor, tenant, action, resource, details, model_version, prev_hash, hash"


class Entry(NamedTuple):
    """A record before it has a place in the chain (a tuple: one is made per prediction)."""

    actor: str
    tenant: str
    action: str
    resource: str
    details: dict[str, Any]
    model_version: str | None


@dataclass(frozen=True)
class Filters:
    tenant: str | None = None
    since: str | None = None
    until: str | None = None
    action: str | None = None
    resource: str | None = None
    actor: str | None = None


SignCheckpoint = Callable[[int, str, str], dict[str, Any]]
"""(sequence, hash, time) -> the checkpoint row (``max_gap``, ``key_id``, ``signature`` too)."""


def to_record(row: Row) -> dict[str, Any]:
    return {
        "sequence": int(row["seq"]),
        "time": row["at"],
        "actor": row["actor"],
        "tenant": row["tenant"],
        "action": row["action"],
        "resource": row["resource"],
        "details": orjson.loads(row["details"]),
        "model_version": row["model_version"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def to_checkpoint(row: Row) -> dict[str, Any]:
    return {
        "sequence": int(row["seq"]),
        "hash": row["hash"],
        "time": row["at"],
        "max_gap": int(row["max_gap"]),
        "key_id": row["key_id"],
        "signature": row["signature"],
    }


class AuditStore:
    def __init__(self, sql: SqlStore, *, checkpoint_every: int):
        self._sql = sql
        self._every = checkpoint_every
        self._lock_clause = " FOR UPDATE" if sql.dialect == "postgresql" else ""

    async def _lock_head(self, tx: SqlSession) -> Row:
        head = await tx.fetch_one(
            "SELECT seq, hash, checkpoint_seq FROM audit_head WHERE id = 1" + self._lock_clause
        )
        if head is None:
            raise RuntimeError("audit_head row is missing: migrations did not run")
        return head

    async def append(
        self, entries: list[Entry], now: Callable[[], str], sign: SignCheckpoint
    ) -> list[dict[str, Any]]:
        """Chain ``entries`` after the current head in one transaction; checkpoint as due."""
        async with self._sql.transaction() as tx:
            return await self.append_in(tx, entries, now, sign)

    async def append_once(
        self,
        entries: list[tuple[str, Entry]],
        now: Callable[[], str],
        sign: SignCheckpoint,
    ) -> list[dict[str, Any]]:
        """Chain each (event id, entry) whose event has no record yet: an event handled twice
        (at-least-once delivery, two processes after a lease handover) is recorded once."""
        async with self._sql.transaction() as tx:
            # The head's lock serializes appenders: nothing can record these events meanwhile.
            await self._lock_head(tx)
            ids = sorted({event_id for event_id, _ in entries})
            known: set[tuple[str, str]] = set()
            for start in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[start : start + LOOKUP_CHUNK]
                rows = await tx.fetch_all(
                    "SELECT tenant, event_id FROM audit_event_refs"
                    f" WHERE event_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                known.update((r["tenant"], r["event_id"]) for r in rows)
            fresh: dict[tuple[str, str], Entry] = {}
            for event_id, entry in entries:
                key = (entry.tenant, event_id)
                if key not in known:
                    fresh.setdefault(key, entry)
            if not fresh:
                return []
            out = await self.append_in(tx, list(fresh.values()), now, sign)
            refs = [(t, e, rec["sequence"]) for (t, e), rec in zip(fresh, out, strict=True)]
            for start in range(0, len(refs), INSERT_CHUNK):
                batch = refs[start : start + INSERT_CHUNK]
                await tx.execute(
                    "INSERT INTO audit_event_refs (tenant, event_id, seq) VALUES "
                    + ", ".join(["(?, ?, ?)"] * len(batch)),
                    [v for ref in batch for v in ref],
                )
        return out

    async def append_in(
        self, tx: SqlSession, entries: list[Entry], now: Callable[[], str], sign: SignCheckpoint
    ) -> list[dict[str, Any]]:
        """Chain ``entries`` inside ``tx``, an open transaction on this store (a caller's, so
        the records commit with its change); the head's lock is held until it ends."""
        out: list[dict[str, Any]] = []
        checkpoints: list[dict[str, Any]] = []
        head = await self._lock_head(tx)
        seq, prev, cp_seq = int(head["seq"]), head["hash"], int(head["checkpoint_seq"])
        for entry in entries:
            seq += 1
            rec = {
                "sequence": seq,
                "time": now(),
                "actor": entry.actor,
                "tenant": entry.tenant,
                "action": entry.action,
                "resource": entry.resource,
                "details": entry.details,
                "model_version": entry.model_version,
                "prev_hash": prev,
            }
            rec["hash"] = prev = record_hash(rec)
            out.append(rec)
            if seq - cp_seq >= self._every:
                checkpoints.append(sign(seq, prev, rec["time"]))
                cp_seq = seq
        for start in range(0, len(out), INSERT_CHUNK):
            await self._insert_records(tx, out[start : start + INSERT_CHUNK])
        for cp in checkpoints:
            await self._insert_checkpoint(tx, cp)
        await tx.execute(
            "UPDATE audit_head SET seq = ?, hash = ?, checkpoint_seq = ? WHERE id = 1",
            (seq, prev, cp_seq),
        )
        return out

    @staticmethod
    async def _insert_records(tx: SqlSession, records: list[dict[str, Any]]) -> None:
        """One multi-row INSERT: a batch costs a round trip per chunk, not per record."""
        params: list[Any] = []
        for rec in records:
            params += [
                rec["sequence"],
                rec["time"],
                rec["actor"],
                rec["tenant"],
                rec["action"],
                rec["resource"],
                orjson.dumps(rec["details"], option=orjson.OPT_SORT_KEYS).decode(),
                rec["model_version"],
                rec["prev_hash"],
                rec["hash"],
            ]
        values = ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * len(records))
        await tx.execute(f"INSERT INTO audit_records ({RECORD_COLUMNS}) VALUES {values}", params)

    async def checkpoint_head(
        self, now: Callable[[], str], sign: SignCheckpoint
    ) -> dict[str, Any] | None:
        """Sign the current head unless it is already signed (or the chain is empty)."""
        async with self._sql.transaction() as tx:
            head = await self._lock_head(tx)
            seq = int(head["seq"])
            if seq == 0 or seq == int(head["checkpoint_seq"]):
                return None
            cp = sign(seq, head["hash"], now())
            await self._insert_checkpoint(tx, cp)
            await tx.execute("UPDATE audit_head SET checkpoint_seq = ? WHERE id = 1", (seq,))
            return cp

    @staticmethod
    async def _insert_checkpoint(tx: SqlSession, cp: dict[str, Any]) -> None:
        await tx.execute(
            "INSERT INTO audit_checkpoints (seq, hash, at, max_gap, key_id, signature)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (cp["sequence"], cp["hash"], cp["time"], cp["max_gap"], cp["key_id"], cp["signature"]),
        )

    async def prune(self, cutoff: str) -> dict[str, Any] | None:
        """Drop whole segments up to the newest checkpoint older than ``cutoff``.

        That checkpoint is kept: verification resumes from its signed hash.
        """
        async with self._sql.transaction() as tx:
            await self._lock_head(tx)
            row = await tx.fetch_one(
                "SELECT * FROM audit_checkpoints WHERE at < ? ORDER BY seq DESC LIMIT 1",
                (cutoff,),
            )
            if row is None:
                return None
            anchor = to_checkpoint(row)
            removed = await tx.execute(
                "DELETE FROM audit_records WHERE seq <= ?", (anchor["sequence"],)
            )
            if removed == 0:
                return None
            await tx.execute("DELETE FROM audit_checkpoints WHERE seq < ?", (anchor["sequence"],))
            await tx.execute("DELETE FROM audit_event_refs WHERE seq <= ?", (anchor["sequence"],))
        return {"anchor": anchor, "removed": removed}

    async def head(self) -> dict[str, Any]:
        row = await self._sql.fetch_one("SELECT seq, hash FROM audit_head WHERE id = 1")
        assert row is not None
        return {"sequence": int(row["seq"]), "hash": row["hash"]}

    async def checkpoints(
        self, *, through: int | None = None, after: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM audit_checkpoints WHERE seq > ?", [after]
        if through is not None:
            sql += " AND seq <= ?"
            params.append(through)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [to_checkpoint(r) for r in await self._sql.fetch_all(sql, params)]

    async def query_times(
        self, *, at_or_after: str | None = None, before: str | None = None
    ) -> int | None:
        """The first sequence at or after a time, or the last one before a time."""
        param: str | None
        if at_or_after is not None:
            sql, param = "SELECT MIN(seq) AS s FROM audit_records WHERE at >= ?", at_or_after
        else:
            sql, param = "SELECT MAX(seq) AS s FROM audit_records WHERE at < ?", before
        row = await self._sql.fetch_one(sql, (param,))
        return None if row is None or row["s"] is None else int(row["s"])

    async def scan(self, first: int, last: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Every stored record with ``first <= seq <= last``, in pages, in sequence order."""
        after = first - 1
        while after < last:
            rows = await self._sql.fetch_all(
                f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?",
                (after, last, PAGE),
            )
            if not rows:
                return
            after = int(rows[-1]["seq"])
            yield [to_record(r) for r in rows]

    async def query(self, filters: Filters, *, after: int, limit: int) -> list[dict[str, Any]]:
        where: list[str] = ["seq > ?"]
        params: list[object] = [after]
        f = filters
        if f.tenant is not None:
            where.append("tenant = ?")
            params.append(f.tenant)
        if f.since is not None:
            where.append("at >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append("at < ?")
            params.append(f.until)
        if f.actor is not None:
            where.append("actor = ?")
            params.append(f.actor)
        if f.action is not None:
            if f.action.endswith("*"):
                prefix = f.action[:-1]
                where.append("substr(action, 1, CAST(? AS INTEGER)) = ?")
                params += [len(prefix), prefix]
            else:
                where.append("action = ?")
                params.append(f.action)
        if f.resource is not None:
            # A resource's own records and those of everything under it (models/x/versions/2).
            child = f.resource.rstrip("/") + "/"
            where.append("(resource = ? OR substr(resource, 1, CAST(? AS INTEGER)) = ?)")
            params += [f.resource, len(child), child]
        rows = await self._sql.fetch_all(
            f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE {' AND '.join(where)}"
            " ORDER BY seq LIMIT ?",
            (*params, limit),
        )
        return [to_record(r) for r in rows]
