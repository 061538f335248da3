"""The job runner: one per cluster, wherever the ``training-runner`` lease is held.

Every node runs the loop; only the lease holder runs jobs. It builds at most one dataset and
trains at most one model at a time (a build never waits behind a long training). When it
takes the lease over, jobs the previous holder left running are queued again, or failed once
they were started ``max_attempts`` times (a job that keeps killing its runner must stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from meshgate.events.leases import Leases, holder_name
from meshgate.training.jobs import JobStore
from meshgate.training.service import TrainingService
from meshgate.training.spec import TrainingConfig

log = logging.getLogger("meshgate.training")
LEASE = "training-runner"
KINDS = ("dataset", "training")


class JobRunner:
    def __init__(
        self, service: TrainingService, jobs: JobStore, leases: Leases, config: TrainingConfig
    ):
        self.service = service
        self.jobs = jobs
        self.leases = leases
        self.config = config
        self.holder = holder_name()
        self.holding = False
        self._loop: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._forever(), name="training-runner")

    async def close(self) -> None:
        tasks = [t for t in (self._loop, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop, self._running = None, {}
        if self.holding:
            # Jobs cut short here are queued again by the next holder, at once.
            with contextlib.suppress(Exception):
                await self.leases.release(LEASE, self.holder)

    async def _forever(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("the job runner's round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.interval_seconds):
                    await self.service.wake.wait()
            self.service.wake.clear()

    async def round(self) -> None:
        """Renew (or take) the lease; then start what is queued, one job of each kind."""
        held = await self.leases.acquire(LEASE, self.holder, self.config.lease_seconds)
        if not held:
            self.holding = False
            return
        if not self.holding:
            self.holding = True
            await self.recover()
        for kind in KINDS:
            busy = self._running.get(kind)
            if busy is not None and not busy.done():
                continue
            for job_id in await self.jobs.queued(kind):
                if await self.jobs.claim(job_id, self.holder):
                    job = await self.jobs.load(job_id)
                    self._running[kind] = asyncio.create_task(
                        self.service.run(job, self.holder), name=f"job-{job_id}"
                    )
                    break

    async def recover(self) -> None:
        """Queue again (or fail) the jobs another runner left running."""
        for job in await self.jobs.orphans(self.holder):
            if job.holder is None:
                continue
            if job.attempts >= self.config.max_attempts:
                reason = f"its runner stopped during each of {job.attempts} attempts"
                if await self.jobs.abandon(job.id, job.holder, reason):
                    await self.service.tell_failed(job, reason)
            else:
                await self.jobs.requeue(job.id, job.holder)
