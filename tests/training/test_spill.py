"""A dataset's Parquet file is written from the spill a row group at a time."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from meshgate.training.spill import Spill, write

ROWS = 40_000


def spill_of(path: Path) -> Spill:
    spill = Spill(path)
    predictions = [
        (
            f"p{n:06d}",
            n,
            1_700_000_000_000_000 + n,
            str(n % 3),
            orjson.dumps({"input[0]": n / 7, "input[1]": n, "plan": f"plan-{n % 5}"}),
            orjson.dumps(n % 2),
        )
        for n in range(ROWS)
    ]
    # Every other prediction labelled; a later label of the same one replaces the first.
    labels = [
        (f"p{n:06d}", orjson.dumps(0), None, 1_800_000_000_000_000) for n in range(0, ROWS, 2)
    ]
    labels += [
        (f"p{n:06d}", orjson.dumps(n % 2), 0.5, 1_800_000_000_000_001) for n in range(0, ROWS, 2)
    ]
    spill.add(predictions, labels)
    return spill


def peak_while_writing(spill: Spill, path: Path, row_group_rows: int) -> int:
    tracemalloc.start()
    try:
        write(spill, path, row_group_rows)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_follows_the_row_group_not_the_dataset(tmp_path: Path) -> None:
    spill = spill_of(tmp_path / "spill.sqlite")
    try:
        assert spill.unlabeled() == ROWS // 2
        small = peak_while_writing(spill, tmp_path / "small.parquet", 500)
        whole = peak_while_writing(spill, tmp_path / "whole.parquet", ROWS)
        written = write(spill, tmp_path / "again.parquet", 500)
    finally:
        spill.close()
    assert small * 5 < whole, (small, whole)
    file = pq.ParquetFile(tmp_path / "small.parquet")
    assert file.num_row_groups == ROWS // 2 // 500 and written.rows == ROWS // 2
    assert file.read().equals(pq.read_table(tmp_path / "whole.parquet"))
    rows = file.read(columns=["prediction_id", "label", "score", "plan"]).to_pylist()
    assert rows[1] == {"prediction_id": "p000002", "label": 0, "score": 0.5, "plan": "plan-2"}
    assert written.expectations["input[1]"] == {"missing": 0.0, "min": 0, "max": ROWS - 2}
    assert written.expectations["plan"]["categories"] == [f"plan-{n}" for n in range(5)]
