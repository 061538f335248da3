"""One loader for every secret file: created once, atomically, whoever starts first."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from meshgate.core.secrets import load_secret_file


def _load(path: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(load_secret_file(Path(path)))


def test_a_missing_secret_is_created_private_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "key_pepper"
    first = load_secret_file(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_file(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["key_pepper"]  # no leftovers


def test_processes_starting_together_all_read_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "context_handle_key"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_load, args=(str(path), queue)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    secrets = {queue.get(timeout=5) for _ in workers}
    assert len(secrets) == 1
    assert secrets == {path.read_bytes()}
    assert [p.name for p in path.parent.iterdir()] == ["context_handle_key"]
