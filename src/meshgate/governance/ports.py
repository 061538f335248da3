"""What other domains need of the governance: a place to record what they did."""

from __future__ import annotations

from typing import Any, Protocol

from meshgate.sql import InTransaction, SqlSession


class AuditRecorder(Protocol):
    async def record(
        self,
        *,
        actor: str,
        tenant: str,
        action: str,
        resource: str,
        details: dict[str, Any],
        model_version: str | None = None,
        within: SqlSession | None = None,
    ) -> dict[str, Any]:
        """Append one audit record; returns it once it is durable.

        ``within``: an open transaction on the platform SQL store, so the change the record
        describes and the record commit together or not at all (durable once it commits).
        Record last in that transaction: it locks the head of the chain, which every audit
        writer of the cluster waits for, so the lock is held for the commit only (and a writer
        never holds it while waiting for a lock of its own change)."""
        ...


def audited(
    recorder: AuditRecorder,
    *,
    actor: str,
    tenant: str,
    action: str,
    resource: str,
    details: dict[str, Any],
    model_version: str | None = None,
) -> InTransaction:
    """The audit record of a change as the last step of the change's transaction (a store's
    ``then=``): the change is never stored unaudited, nor audited without being stored."""

    async def record(tx: SqlSession) -> None:
        await recorder.record(
            within=tx,
            actor=actor,
            tenant=tenant,
            action=action,
            resource=resource,
            details=details,
            model_version=model_version,
        )

    return record
