"""Run as a process: append N records to the audit trail at URL, one transaction each.

Prints ``ready`` once connected and starts appending on a line from stdin. With ``in_tx`` as
a fifth argument each record is the audit record of a change (a row of ``things``) written in
the change's transaction, as the admin writes do.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from meshgate.governance.audit import AuditService
from meshgate.governance.config import AuditConfig
from meshgate.governance.signing import load_signer
from meshgate.sql import open_sql_store


async def main(url: str, data_dir: str, actor: str, n: int, in_tx: bool) -> None:
    sql = open_sql_store(url)
    await sql.start()
    config = AuditConfig(checkpoint_every=7)
    audit = AuditService(sql, load_signer(config, Path(data_dir)), config)
    try:
        # Both writers start together, so their appends really contend.
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for i in range(n):
            if in_tx:
                async with sql.transaction() as tx:
                    await tx.execute("INSERT INTO things (actor, n) VALUES (?, ?)", (actor, i))
                    await audit.record(
                        within=tx,
                        actor=actor,
                        tenant="acme",
                        action="thing.changed",
                        resource=f"t/{i}",
                        details={},
                    )
            else:
                await audit.record(
                    actor=actor,
                    tenant="acme",
                    action="thing.changed",
                    resource=f"t/{i}",
                    details={},
                )
            # Gaps like real requests have, so the other process gets the write lock too.
            await asyncio.sleep(0.002)
    finally:
        await sql.close()


if __name__ == "__main__":
    in_tx = sys.argv[5:] == ["in_tx"]
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), in_tx))
