"""Data keys: nonces never repeat, erasure is immediate here and bounded in other processes."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from meshgate.events.crypto import MIGRATIONS, NONCE_BLOCK, NONCE_BYTES, NoncePool
from meshgate.events.envelope import ERASED
from meshgate.sql import open_sql_store
from meshgate.sql.base import migrate

from .keyholder import keys_for

ROOT = Path(__file__).resolve().parents[2]
CACHE_SECONDS = 0.5


def start_keyholder(path: Path, pepper: bytes) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.events.keyholder", str(path), pepper.hex(), "0.5"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_nonces_are_unique_across_blocks_and_after_a_fork():
    pool = NoncePool()
    taken = [pool.take() for _ in range(NONCE_BLOCK * 3 + 5)]
    assert all(len(n) == NONCE_BYTES for n in taken)
    assert len(set(taken)) == len(taken)
    # The parent is in the middle of a block: a child must not continue it.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, b"".join(pool.take() for _ in range(4)))
        os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 4096):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    parent = [pool.take() for _ in range(4)]
    child_nonces = [child[i : i + NONCE_BYTES] for i in range(0, len(child), NONCE_BYTES)]
    assert len(child_nonces) == 4
    assert not set(child_nonces) & set(parent)


async def test_erasure_is_immediate_here_and_never_readable_from_another_process(tmp_path: Path):
    path = tmp_path / "store.db"
    pepper = secrets.token_bytes(32)
    store = open_sql_store(f"sqlite:///{path}")
    await store.start()
    await migrate(store, MIGRATIONS)
    keys = keys_for(store, pepper, CACHE_SECONDS)
    owner = keys.owner_of("t", "ada")

    async def read(sealed: str) -> Any:
        return (await keys.decrypt_many([("t", owner, sealed)]))[("t", owner, sealed)]

    other = start_keyholder(path, pepper)
    assert other.stdin is not None and other.stdout is not None

    def encrypt_there() -> str:
        other.stdin.write("t ada\n")  # type: ignore[union-attr]
        other.stdin.flush()  # type: ignore[union-attr]
        return other.stdout.readline().strip()  # type: ignore[union-attr]

    try:
        assert other.stdout.readline().strip() == "ready"
        here = await keys.encrypt("t", owner, {"here": 1})  # this process caches the key
        there = encrypt_there()  # and so does the other one
        assert await read(here) == {"here": 1} and await read(there) == {"n": 1}

        assert await keys.shred("t", "ada") == 1
        erased_at = time.monotonic()
        # Every process reads both as erased at once: reads never use a cached key.
        assert await read(here) == ERASED and await read(there) == ERASED
        # Here, the next encryption is under a new key at once.
        again = await keys.encrypt("t", owner, {"here": 2})
        assert await read(again) == {"here": 2}
        # There, within its cache window, it still encrypts under the destroyed key: what it
        # writes then is unreadable, never readable.
        late = encrypt_there()
        if time.monotonic() - erased_at < CACHE_SECONDS:
            assert await read(late) == ERASED
        # After the window it uses the stored key again, which is the new one.
        await asyncio.sleep(CACHE_SECONDS)
        fresh = encrypt_there()
        assert await read(fresh) == {"n": 3}
        assert await read(here) == ERASED
    finally:
        other.stdin.close()
        other.wait(timeout=10)
        await store.close()
