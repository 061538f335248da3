"""Cost and safety at the gateway, built for the composition root: model allow-lists and
limits, prices and spend, budgets, the response cache and guardrails."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.economics import spend
from meshgate.economics.routes import routers
from meshgate.economics.service import EconomicsService
from meshgate.events.base import Filter
from meshgate.events.catalogue import PREDICTION_MADE
from meshgate.events.envelope import Record
from meshgate.events.groups import LeasedGroup
from meshgate.events.leases import Leases
from meshgate.events.ports import EventPublisher, Pseudonyms
from meshgate.events.service import EventService
from meshgate.governance.ports import AuditRecorder
from meshgate.monitoring.metrics import Metrics
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = routers()


def build_economics(
    settings: Settings,
    sql: SqlStore,
    metrics: Metrics,
    *,
    events: EventPublisher,
    audit: AuditRecorder,
    pseudonyms: Pseudonyms,
) -> EconomicsService:
    return EconomicsService(
        sql,
        shared_url=settings.limiter_backend_url,
        namespace=settings.namespace,
        registry=metrics.registry,
        events=events,
        audit=audit,
        pseudonyms=pseudonyms,
    )


class SpendConsumer:
    """The spend ledger fed from the log, as a consumer group run by one process of the
    cluster at a time (it holds the lease named after the group; the others stand by)."""

    def __init__(
        self,
        events: EventService,
        leases: Leases,
        ledger: spend.SpendLedger,
        *,
        lease_seconds: float = 10.0,
    ):
        self.events = events
        self.ledger = ledger
        self.group = LeasedGroup(
            events,
            leases,
            spend.GROUP,
            self.handle,
            where=Filter(type_prefix=PREDICTION_MADE.name),
            lease_seconds=lease_seconds,
        )

    @property
    def running(self) -> bool:
        """Whether this process counts the spend now."""
        return self.group.running

    async def handle(self, records: list[Record]) -> None:
        # Only the events that make a row are opened (their personal parts decrypted).
        records = [r for r in records if spend.counted(r.type, r.data)]
        if not records:
            return
        events = await self.events.open_records(records)
        await self.ledger.handle_many(events)
        # An erasure may have run while this batch was in hand: its key was destroyed first,
        # then its rows lost their user id, possibly before ours were written. Reading the
        # personal parts once more after writing tells: they now read as erased.
        named = [r for r, e in zip(records, events, strict=True) if spend.user_of(e) is not None]
        if named:
            again = await self.events.open_records(named)
            gone = [e.id for e in again if spend.user_of(e) is None]
            if gone:
                await self.ledger.unname(gone)

    async def start(self) -> None:
        self.group.start()

    async def close(self) -> None:
        await self.group.close()
