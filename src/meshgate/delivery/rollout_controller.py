"""The rollout controller: one per cluster, wherever the ``delivery.rollouts`` lease is held.

Every tick the holder reads, for each running rollout, the predictions and feedback the log
gained since it last looked; once a rollout's interval has passed it analyses everything
since the rollout began and advances, holds or rolls back. A node that loses the lease
forgets its figures; the next holder rebuilds them from the rollout's start in the log and
continues from the step the store holds. Traffic changes the previous holder could not
finish are set again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from meshgate.delivery.analysis import analyse, decide
from meshgate.delivery.rollout_evidence import Evidence, LogReader
from meshgate.delivery.rollout_service import RolloutService
from meshgate.delivery.rollout_store import Rollout
from meshgate.events.leases import Leases, holder_name

log = logging.getLogger("meshgate.delivery")
LEASE = "delivery.rollouts"
LEASE_SECONDS = 10.0
MAX_TICK = 1.0
ACTOR = "rollout-controller"


class RolloutController:
    def __init__(
        self,
        service: RolloutService,
        *,
        log_reader: LogReader,
        leases: Leases,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.service = service
        self.log_reader = log_reader
        self.leases = leases
        self.holder = holder_name()
        self.actor = f"{ACTOR}@{self.holder}"
        """Who the audit trail names for this node's decisions (which node made them)."""
        self.clock = clock
        self.sleep = sleep
        self._evidence: dict[str, Evidence] = {}
        self._looked: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.ticks = 0
        """Rounds run while holding the lease (tests wait on it)."""

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rollouts")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):  # another node takes over at once
            await self.leases.release(LEASE, self.holder)

    async def _run(self) -> None:
        tick = MAX_TICK
        while not self._closing:
            try:
                if await self.leases.acquire(LEASE, self.holder, LEASE_SECONDS):
                    tick = await self.tick()
                else:
                    self._evidence.clear()  # another node holds it: its figures are the truth
                    self._looked.clear()
                    tick = MAX_TICK
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rollout controller round failed")
                tick = MAX_TICK
            await self.sleep(tick)

    async def tick(self) -> float:
        """One round over every rollout that needs work; returns how long to wait."""
        self.ticks += 1
        wait = MAX_TICK
        rollouts = await self.service.store.needing_work()
        running = {r.id for r in rollouts if r.running}
        for gone in set(self._evidence) - running:
            self._evidence.pop(gone, None)
            self._looked.pop(gone, None)
        for rollout in rollouts:
            try:
                await self._work(rollout)
            except Exception:
                log.exception("rollout %s: this round failed; retried next round", rollout.id)
            if rollout.running:
                wait = min(wait, rollout.spec.interval_seconds / 4)
        return max(wait, 0.05)

    async def _work(self, rollout: Rollout) -> None:
        if rollout.state == "pending":
            await self.service.start(rollout, self.actor)
            return
        if rollout.applied < rollout.revision:
            await self.service.apply(rollout, self.actor)
        if not rollout.running:
            return
        evidence = self._evidence.get(rollout.id)
        if evidence is None:
            spec = rollout.spec
            evidence = self._evidence[rollout.id] = Evidence(
                rollout.tenant, rollout.model, spec.candidate, spec.baseline, rollout.start_sequence
            )
        await evidence.catch_up(self.log_reader)
        now = self.clock()
        looked = self._looked.get(rollout.id)
        if looked is not None and now - looked < rollout.spec.interval_seconds:
            return
        if looked is None:  # first round here: wait one interval from now, as from a step start
            self._looked[rollout.id] = now
            if rollout.history and rollout.history[-1]["transition"] in ("started", "advanced"):
                return
        self._looked[rollout.id] = now
        await self.look(rollout, evidence)

    async def look(self, rollout: Rollout, evidence: Evidence) -> None:
        spec = rollout.spec
        # Sorting latencies and binning values: CPU work, off the event loop (nothing else
        # touches this rollout's evidence while the round waits for it).
        verdict = await asyncio.to_thread(
            analyse, evidence.candidate, evidence.baseline, spec.analysis.bounds()
        )
        step_requests = evidence.candidate.requests - rollout.step_base
        figures = {**verdict.figures, "step_requests": step_requests}
        if rollout.state == "paused":
            await self.service.store.note_figures(rollout, figures, _stamp())
            return
        decision = decide(verdict, step_requests, spec.min_requests)
        if decision == "hold":
            await self.service.store.note_figures(rollout, figures, _stamp())
            return
        if decision == "rollback":
            reason = "candidate worse: " + ", ".join(verdict.worse)
            after = replace(rollout, state="rolled_back", weight=0)
            await self._move(rollout, after, "rolled_back", reason, figures)
            return
        base = evidence.candidate.requests
        if rollout.phase == "shadow":
            after = replace(rollout, phase="canary", step=0, weight=spec.steps[0], step_base=base)
            await self._move(rollout, after, "advanced", "shadow samples enough", figures)
            return
        following = rollout.step + 1
        if (
            rollout.phase == "switched"
            or following >= len(spec.steps)
            or spec.steps[following] == 100
        ):
            after = replace(rollout, state="promoted", weight=100)
            await self._move(rollout, after, "promoted", "every step passed", figures)
            return
        after = replace(rollout, step=following, weight=spec.steps[following], step_base=base)
        await self._move(rollout, after, "advanced", f"step {rollout.step + 1} passed", figures)

    async def _move(
        self, before: Rollout, after: Rollout, kind: str, reason: str, figures: dict[str, object]
    ) -> None:
        moved = await self.service.transition(
            before, after, kind, self.actor, reason=reason, figures=figures
        )
        if moved is None:
            log.info("rollout %s moved elsewhere meanwhile; read again next round", before.id)


def _stamp() -> str:
    from meshgate.delivery.rollout_service import now_iso

    return now_iso()
