"""The audit trail: who did what, when, to which resource, with which model version.

``record`` appends a state-changing action durably before it returns, or inside the transaction
of the change it records (``within``), so neither commits without the other. References to
predictions are appended off the request path by the consumer group ``governance.audit``
(one process of the cluster runs it, under a lease): each batch of ``meshgate.prediction.made``
events read from the log is referenced in one transaction before the group's offset is
committed, and an event already referenced is skipped, so each prediction is recorded once
however often it is delivered. Every record is chained to the one before it by SHA-256, and
the chain is signed (Ed25519) at checkpoints, so editing, deleting or reordering a stored
row, or forging a checkpoint, is found by ``verify`` with the first record that no longer holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from meshgate.errors import BadRequest, ValidationFailed
from meshgate.events.catalogue import PREDICTION_MADE
from meshgate.events.envelope import Record
from meshgate.governance.chain import ChainVerifier
from meshgate.governance.config import AuditConfig
from meshgate.governance.signing import Signer
from meshgate.governance.store import AuditStore, Entry, Filters
from meshgate.sql import SqlSession, SqlStore

log = logging.getLogger("meshgate.governance")

PREDICTION_TYPE = PREDICTION_MADE.name
SYSTEM_ACTOR = "meshgate"
GROUP = "governance.audit"
"""The consumer group (and lease) that references predictions in the trail."""
MAX_FIELD = 256
REDACTED = "[redacted]"
# Values under these keys never reach the trail, whoever passes them in details.
SECRET_KEYS = re.compile(r"^(key|secret|password|passwd|token|api_key|apikey|authorization)$", re.I)

Clock = Callable[[], datetime]


class InvalidAuditRecord(ValidationFailed):
    """A caller passed a record the trail cannot hold."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Fixed-width UTC time, so stored times sort and compare as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year >= 1000:
        # The same text as the strftime below, several times faster (one per audit record).
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(name: str, value: str | None) -> str | None:
    """RFC 3339 / ISO 8601 (a date alone means its midnight UTC; no zone means UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().upper().replace(" ", "+"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return iso(moment)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"'{name}' must be an RFC 3339 time like 2026-01-31T12:00:00Z, got {value!r}",
            param=name,
        ) from None


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and SECRET_KEYS.match(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def prediction_entry(record: Record) -> Entry:
    data = record.data if isinstance(record.data, dict) else {}
    model = str(data.get("model") or "unknown")
    version = data.get("version", data.get("model_version"))
    version = None if version is None else str(version)
    actor = data.get("key_id") or data.get("actor") or SYSTEM_ACTOR
    return Entry(
        actor=str(actor)[:MAX_FIELD],
        tenant=record.tenant,
        action="prediction.made",
        resource=f"models/{model}"[:1024],
        details={"event_id": record.id, "model": model, "version": version},
        model_version=version,
    )


def make_entry(
    *,
    actor: str,
    tenant: str,
    action: str,
    resource: str,
    details: dict[str, Any],
    model_version: str | None,
) -> Entry:
    for name, value in (("actor", actor), ("tenant", tenant), ("action", action)):
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD:
            raise InvalidAuditRecord(f"audit {name} must be a non-empty string of at most 256")
    if not isinstance(resource, str) or not resource or len(resource) > 1024:
        raise InvalidAuditRecord("audit resource must be a non-empty string of at most 1024")
    if model_version is not None and not isinstance(model_version, str):
        raise InvalidAuditRecord("audit model_version must be a string or None")
    if not isinstance(details, dict):
        raise InvalidAuditRecord("audit details must be a JSON object")
    try:
        # Normalized through JSON now, so what is hashed is exactly what is read back.
        normalized = orjson.loads(orjson.dumps(redact(details), option=orjson.OPT_SORT_KEYS))
    except TypeError as exc:
        raise InvalidAuditRecord(f"audit details are not JSON: {exc}") from exc
    return Entry(actor, tenant, action, resource, normalized, model_version)


class AuditService:
    def __init__(
        self,
        sql: SqlStore,
        signer: Signer,
        config: AuditConfig,
        *,
        clock: Clock = utcnow,
    ):
        self.config = config
        self.signer = signer
        self.clock = clock
        self.store = AuditStore(sql, checkpoint_every=config.checkpoint_every)
        self._tasks: list[asyncio.Task[None]] = []
        self._verify_lock = asyncio.Lock()

    # --- writing -------------------------------------------------------------------------

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
        """Append one record; returns it (with sequence and hash) once it is durable, or, with
        ``within``, inside the caller's transaction (see
        :meth:`meshgate.governance.ports.AuditRecorder.record`), durable once that commits."""
        entry = make_entry(
            actor=actor,
            tenant=tenant,
            action=action,
            resource=resource,
            details=details,
            model_version=model_version,
        )
        if within is None:
            (rec,) = await self.store.append([entry], self._now, self._sign)
        else:
            (rec,) = await self.store.append_in(within, [entry], self._now, self._sign)
        return rec

    async def record_predictions(self, records: Sequence[Record]) -> int:
        """References to ``meshgate.prediction.made`` events (never their payload), in one
        transaction; an event already referenced is skipped. Returns how many were written."""
        entries = [(r.id, prediction_entry(r)) for r in records if r.type == PREDICTION_TYPE]
        if not entries:
            return 0
        return len(await self.store.append_once(entries, self._now, self._sign))

    async def checkpoint(self) -> dict[str, Any] | None:
        """Sign the current head now (no-op when it is already signed)."""
        return await self.store.checkpoint_head(self._now, self._sign)

    async def prune(self) -> dict[str, Any] | None:
        """Remove whole segments older than the retention period, keeping an anchor."""
        cutoff = iso(self.clock() - timedelta(days=self.config.retention_days))
        pruned = await self.store.prune(cutoff)
        if pruned is None:
            return None
        anchor = pruned["anchor"]
        await self.record(
            actor=SYSTEM_ACTOR,
            tenant="default",
            action="audit.pruned",
            resource="audit",
            details={
                "through_sequence": anchor["sequence"],
                "anchor_hash": anchor["hash"],
                "removed": pruned["removed"],
                "retention_days": self.config.retention_days,
            },
        )
        return pruned

    def _now(self) -> str:
        return iso(self.clock())

    def _sign(self, sequence: int, hash_: str, time: str) -> dict[str, Any]:
        gap = self.config.checkpoint_every
        return {
            "sequence": sequence,
            "hash": hash_,
            "time": time,
            "max_gap": gap,
            "key_id": self.signer.key_id,
            "signature": self.signer.sign_checkpoint(sequence, hash_, time, gap),
        }

    # --- reading -------------------------------------------------------------------------

    async def query(self, filters: Filters, *, after: int = 0, limit: int = 100) -> dict[str, Any]:
        records = await self.store.query(filters, after=after, limit=limit)
        next_after = records[-1]["sequence"] if len(records) == limit else None
        return {"records": records, "next_after": next_after}

    async def verify(self) -> dict[str, Any]:
        """Check the whole chain, every tenant's records, against hashes and signatures."""
        async with self._verify_lock:
            result = await self._verify_once()
            if not result["ok"]:
                # A prune by another process while we read looks like missing records; a
                # second pass tells that apart from tampering, which fails again.
                result = await self._verify_once()
            return result

    async def _verify_once(self) -> dict[str, Any]:
        head = await self.store.head()
        cutoff = iso(self.clock() - timedelta(days=self.config.retention_days))
        verifier = ChainVerifier(
            self.signer.keys, max_tail=self.config.checkpoint_every, retention_cutoff=cutoff
        )
        checkpoints = await self.store.checkpoints(through=head["sequence"])
        cps = iter(checkpoints)
        pending_cp = next(cps, None)
        async for page in self.store.scan(1, head["sequence"]):
            for rec in page:
                while pending_cp is not None and pending_cp["sequence"] < rec["sequence"]:
                    verifier.checkpoint(pending_cp)
                    pending_cp = next(cps, None)
                verifier.record(rec)
                if pending_cp is not None and pending_cp["sequence"] == rec["sequence"]:
                    verifier.checkpoint(pending_cp)
                    pending_cp = next(cps, None)
            if verifier.problem is not None:
                break
            await asyncio.sleep(0)  # a long chain must not hold the loop
        while pending_cp is not None:
            verifier.checkpoint(pending_cp)
            pending_cp = next(cps, None)
        verifier.finish(head)
        return verifier.result()

    def public_key(self) -> dict[str, Any]:
        return self.signer.describe()

    # --- background ------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(
                self._every(self.config.checkpoint_interval_seconds, self.checkpoint)
            ),
            asyncio.create_task(
                self._every(self.config.prune_interval_seconds, self.prune, first_now=True)
            ),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            await self.checkpoint()
        except Exception:
            log.exception("audit: could not seal the chain on close")

    async def _every(
        self,
        seconds: float,
        work: Callable[[], Any],
        wake: asyncio.Event | None = None,
        *,
        first_now: bool = False,
    ) -> None:
        wake = wake or asyncio.Event()
        if first_now:
            wake.set()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), seconds)
            wake.clear()
            try:
                await work()
            except Exception:
                # The store may be down for a while; the next round tries again.
                log.exception("audit: background %s failed", getattr(work, "__name__", work))
