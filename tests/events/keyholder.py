"""Another process encrypting personal parts with its own cache of data keys.

``python -m tests.events.keyholder <sqlite path> <pepper hex> <cache seconds>``: for each
stdin line ``<tenant> <user id>`` it prints the ciphertext of ``{"n": <line number>}`` for
that user, encrypted as the event service of this process would encrypt it.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from meshgate.events.crypto import DataKeys
from meshgate.events.sealing import Sealer, derive
from meshgate.sql import SqlStore, open_sql_store


def keys_for(store: SqlStore, pepper: bytes, cache_seconds: float) -> DataKeys:
    return DataKeys(
        store,
        Sealer(pepper, "user-data-keys"),
        derive(pepper, "user-pseudonyms"),
        cache_seconds=cache_seconds,
    )


async def main(path: str, pepper: bytes, cache_seconds: float) -> None:
    store = open_sql_store(f"sqlite:///{path}")
    await store.start()
    keys = keys_for(store, pepper, cache_seconds)
    print("ready", flush=True)
    for n, line in enumerate(sys.stdin, start=1):
        tenant, user = line.split()
        owner = keys.owner_of(tenant, user)
        print(await keys.encrypt_json(tenant, owner, orjson.dumps({"n": n})), flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], bytes.fromhex(sys.argv[2]), float(sys.argv[3])))
