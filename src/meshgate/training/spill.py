"""A dataset build's working set on disk, and the Parquet file written from it in row groups.

A build reads the whole log up to its cut-off, and a prediction's label may come at any
point after it, so the join cannot be done page by page. The predictions and labels read so
far go to a SQLite file in the build's folder instead of memory; the join is one query over
it, read twice: once to learn the columns' types and the manifest's figures (Parquet needs
the schema before the first row), once to write the rows, a row group at a time. Memory
holds one page of the log or one row group, however long the log is.

Values are kept as JSON (orjson), so an integer stays an integer and a text stays a text;
times as integer microseconds since the epoch, the precision of the file's timestamps.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

FIXED = ("prediction_id", "predicted_at", "version")
TAIL = ("predicted", "label", "score", "feedback_at")
MAX_CATEGORIES = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP = pa.timestamp("us", tz="UTC")
CHUNK = 1 << 20

Prediction = tuple[str, int, int, str, bytes, bytes]
"""prediction id, sequence, predicted at (µs), version, features (JSON), predicted (JSON)"""
Label = tuple[str, bytes, float | None, int]
"""prediction id, label (JSON), score, recorded at (µs)"""


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def moment(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class Spill:
    """Predictions and labels of one build in a SQLite file, joined in log order.

    Used from one worker thread at a time (each call is awaited), never concurrently.
    """

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path, check_same_thread=False)
        # Scratch data, rebuilt by a retried build: no journal, no fsync.
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE predictions (id TEXT PRIMARY KEY, sequence INTEGER NOT NULL,
                at INTEGER NOT NULL, version TEXT NOT NULL, features BLOB NOT NULL,
                predicted BLOB NOT NULL);
            CREATE TABLE labels (id TEXT PRIMARY KEY, value BLOB NOT NULL, score REAL,
                at INTEGER NOT NULL);
            """
        )

    def add(self, predictions: list[Prediction], labels: list[Label]) -> None:
        """One page of the log; a later prediction or label of the same id replaces it."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?)", predictions
            )
            self.db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?)", labels)

    def unlabeled(self) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM predictions p"
            " WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.id = p.id)"
        ).fetchone()
        return int(row[0])

    def joined(self) -> Iterator[tuple[Any, ...]]:
        """(id, at, version, features, predicted, label, score, feedback at), in log order."""
        yield from self.db.execute(
            "SELECT p.id, p.at, p.version, p.features, p.predicted, l.value, l.score, l.at"
            " FROM predictions p JOIN labels l ON l.id = p.id ORDER BY p.sequence"
        )

    def close(self) -> None:
        self.db.close()


@dataclass
class ColumnType:
    """The Arrow type a column's values fit, learned one value at a time."""

    present: bool = False
    ints: bool = True
    numbers: bool = True
    bools: bool = True

    def see(self, value: Any) -> None:
        if value is None:
            return
        self.present = True
        boolean = isinstance(value, bool)
        self.ints = self.ints and isinstance(value, int) and not boolean
        self.numbers = self.numbers and isinstance(value, int | float) and not boolean
        self.bools = self.bools and boolean

    def arrow(self) -> pa.DataType:
        if self.present and self.ints:
            return pa.int64()
        if self.present and self.numbers:
            return pa.float64()
        if self.present and self.bools:
            return pa.bool_()
        return pa.string()


@dataclass
class _Feature:
    present: int = 0
    numeric: bool = True
    low: Any = None
    high: Any = None
    categories: set[str] = field(default_factory=set)

    def see(self, value: Any) -> None:
        if value is None:
            return
        self.present += 1
        if self.numeric and isinstance(value, int | float) and not isinstance(value, bool):
            if self.low is None or value < self.low:
                self.low = value
            if self.high is None or value > self.high:
                self.high = value
        else:
            self.numeric = False
        # One past the limit is enough to know there are too many.
        if len(self.categories) <= MAX_CATEGORIES:
            self.categories.add(str(value))


class Learner:
    """Per input feature: the range of a numeric one, the categories of a text one (up to
    ``MAX_CATEGORIES``), and the share of rows that miss it; one row at a time."""

    def __init__(self) -> None:
        self.rows = 0
        self.features: dict[str, _Feature] = {}

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        for name, value in row.items():
            self.features.setdefault(name, _Feature()).see(value)

    def learned(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, seen in self.features.items():
            rule: dict[str, Any] = {"missing": round(1 - seen.present / self.rows, 6)}
            if seen.present and seen.numeric:
                rule.update(min=seen.low, max=seen.high)
            else:
                kinds = sorted(seen.categories)
                rule["categories"] = kinds if len(kinds) <= MAX_CATEGORIES else None
            out[name] = rule
        return out


@dataclass
class Written:
    """What the manifest says of the file."""

    rows: int
    first: datetime | None
    last: datetime | None
    schema: pa.Schema
    versions: list[str]
    expectations: dict[str, dict[str, Any]]
    sha256: str
    size: int


@dataclass
class _Plan:
    """The file's columns, known after the first pass over the join."""

    rows: int = 0
    first: int | None = None
    last: int | None = None
    versions: set[str] = field(default_factory=set)
    types: dict[str, ColumnType] = field(default_factory=dict)
    """Per feature name, in order of first appearance."""
    predicted: ColumnType = field(default_factory=ColumnType)
    label: ColumnType = field(default_factory=ColumnType)
    learner: Learner = field(default_factory=Learner)

    def see(self, row: tuple[Any, ...]) -> None:
        _, at, version, features, predicted, label, _, _ = row
        self.rows += 1
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        self.versions.add(version)
        values = orjson.loads(features)
        for name, value in values.items():
            self.types.setdefault(name, ColumnType()).see(value)
        self.learner.add(values)
        self.predicted.see(orjson.loads(predicted))
        self.label.see(orjson.loads(label))

    def columns(self) -> dict[str, str]:
        """Feature name -> column name (prefixed when it would clash with a fixed column)."""
        taken = set(FIXED) | set(TAIL)
        return {n: f"feature.{n}" if n in taken else n for n in self.types}

    def schema(self) -> pa.Schema:
        fields = [
            pa.field("prediction_id", pa.string()),
            pa.field("predicted_at", TIMESTAMP),
            pa.field("version", pa.string()),
            *(pa.field(c, self.types[n].arrow()) for n, c in self.columns().items()),
            pa.field("predicted", self.predicted.arrow()),
            pa.field("label", self.label.arrow()),
            pa.field("score", pa.float64()),
            pa.field("feedback_at", TIMESTAMP),
        ]
        return pa.schema(fields)


def _values(kind: pa.DataType, values: list[Any]) -> list[Any]:
    if kind == pa.string():
        return [None if v is None else v if isinstance(v, str) else str(v) for v in values]
    if kind == pa.float64():
        return [None if v is None else float(v) for v in values]
    return values


def _group(plan: _Plan, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    features = [orjson.loads(r[3]) for r in rows]
    columns: list[list[Any]] = [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]]
    columns += [[f.get(n) for f in features] for n in plan.columns()]
    columns += [
        [orjson.loads(r[4]) for r in rows],
        [orjson.loads(r[5]) for r in rows],
        [r[6] for r in rows],
        [r[7] for r in rows],
    ]
    arrays = [
        pa.array(_values(f.type, values), type=f.type)
        for f, values in zip(schema, columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def write(spill: Spill, path: Path, row_group_rows: int) -> Written:
    """The joined rows as a Parquet file at ``path``, ``row_group_rows`` rows a group."""
    plan = _Plan()
    for row in spill.joined():
        plan.see(row)
    schema = plan.schema()
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        group: list[tuple[Any, ...]] = []
        for row in spill.joined():
            group.append(row)
            if len(group) >= row_group_rows:
                writer.write_table(_group(plan, schema, group), row_group_size=row_group_rows)
                group = []
        if group or not plan.rows:
            # An empty dataset is still a file with its columns and one empty row group.
            writer.write_table(_group(plan, schema, group), row_group_size=row_group_rows)
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return Written(
        rows=plan.rows,
        first=moment(plan.first) if plan.first is not None else None,
        last=moment(plan.last) if plan.last is not None else None,
        schema=schema,
        versions=sorted(plan.versions),
        expectations=plan.learner.learned(),
        sha256=digest.hexdigest(),
        size=path.stat().st_size,
    )
