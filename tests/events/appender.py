"""A separate process that appends under concurrent load until it is killed.

``python -m tests.events.appender <log url> <namespace> <data dir>``: 16 producers append
records in a loop; after each acknowledgement one line ``<producer> <n> <sequence>`` goes to
stdout, so the parent knows exactly which appends were acknowledged when it kills us.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from meshgate.events.backends import open_event_log
from meshgate.events.envelope import Record, format_time, now

PRODUCERS = 16


async def main(url: str, namespace: str, data_dir: str) -> None:
    log = open_event_log(url, data_dir=Path(data_dir), namespace=namespace)
    await log.start()
    out = sys.stdout

    async def producer(p: int) -> None:
        n = 0
        while True:
            record = Record(
                tenant="t",
                id=f"{p}-{n}",
                source="/appender",
                type="load.tick",
                time=format_time(now()),
                data={"p": p, "n": n, "pad": "x" * 200},
            )
            (stored,) = await log.append([record])
            out.write(f"{p} {n} {stored.sequence}\n")
            out.flush()
            n += 1

    print("ready", flush=True)
    await asyncio.gather(*(producer(p) for p in range(PRODUCERS)))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
