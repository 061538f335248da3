"""Rollouts: created through the API, moved by the controller or by hand.

Every transition is a compare-and-set in the store, committed with its audit record (the
figures that decided it); then the traffic it implies is set through the registry's traffic
API (and the ``production`` alias on a promotion or a blue-green switch), then a
``meshgate.rollout.*`` event carries the same figures. The traffic of each state is a pure
function of the rollout and of the policy that was in place before it
(:func:`desired_traffic`), so setting it again is harmless and a node that takes over sets
whatever is still missing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from meshgate.delivery.rollout_spec import RolloutCreate
from meshgate.delivery.rollout_store import Rollout, RolloutStore
from meshgate.errors import Conflict, NotFound, ValidationFailed
from meshgate.events.catalogue import ROLLOUT_EVENTS, RolloutTransition
from meshgate.events.ports import EventPublisher
from meshgate.governance.ports import AuditRecorder, audited

log = logging.getLogger("meshgate.delivery")
PRODUCTION = "production"


class Registry(Protocol):
    """What rollouts need of the model registry: read a model, set its traffic and aliases
    (through the same service the traffic API uses, with its events and audit)."""

    async def get_model(self, tenant: str, name: str) -> dict[str, Any]: ...

    async def set_traffic(
        self, tenant: str, model: str, policy: dict[str, Any], actor: str
    ) -> dict[str, Any]: ...

    async def set_alias(
        self, tenant: str, model: str, alias: str, version: str, actor: str
    ) -> dict[str, Any]: ...


def now_iso(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).isoformat(timespec="milliseconds")


class RolloutService:
    def __init__(
        self,
        store: RolloutStore,
        *,
        registry: Registry,
        events: EventPublisher,
        audit: AuditRecorder,
        log_position: Callable[[], Awaitable[int]],
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.registry = registry
        self.events = events
        self.audit = audit
        self.log_position = log_position
        self.clock = clock

    # --- reads -------------------------------------------------------------------------

    async def get(self, tenant: str, model: str, rollout_id: str) -> Rollout:
        found = await self.store.get(tenant, model, rollout_id)
        if found is None:
            raise NotFound(f"model {model!r} has no rollout {rollout_id!r}", code="not_found")
        return found

    async def list(self, tenant: str, model: str) -> list[Rollout]:
        await self.registry.get_model(tenant, model)  # 404 for an unknown model
        return await self.store.of_model(tenant, model)

    # --- creating ----------------------------------------------------------------------

    async def traffic_owner(self, tenant: str, model: str) -> str | None:
        """The running rollout that sets the model's traffic (a ``TrafficOwner``)."""
        running = await self.store.running_id(tenant, model)
        return None if running is None else f"rollout {running}"

    async def create(self, tenant: str, model: str, spec: RolloutCreate, actor: str) -> Rollout:
        record = await self.registry.get_model(tenant, model)
        versions = {v["version"] for v in record["versions"]}
        for name in ("candidate", "baseline"):
            version = getattr(spec, name)
            if version not in versions:
                raise ValidationFailed(
                    f"model {model!r} has no version {version!r}", param=name, field=name
                )
        if spec.candidate == spec.baseline:
            raise ValidationFailed(
                "candidate and baseline must be different versions",
                param="candidate",
                field="candidate",
            )
        stamp = now_iso(self.clock)
        phase = {"canary": "canary", "shadow_then_canary": "shadow", "blue_green": "switched"}
        rollout = Rollout(
            id="ro_" + secrets.token_hex(8),
            tenant=tenant,
            model=model,
            spec=spec,
            state="pending",
            phase=phase[spec.mode],
            step=-1,
            weight=0,
            step_base=0,
            start_sequence=await self.log_position(),
            previous={"traffic": record["traffic"], "aliases": record["aliases"]},
            reason="created",
            created_by=actor,
            created_at=stamp,
            updated_at=stamp,
        )
        if not await self.store.insert(rollout):
            raise Conflict(
                f"model {model!r} has a rollout running; abort or finish it first",
                param="model",
                field="model",
            )
        try:
            started = await self.start(rollout, actor)
        except Exception:
            # Left pending: the controller starts it once the registry answers again.
            log.exception("starting rollout %s failed; the controller retries", rollout.id)
            return rollout
        return started or rollout

    async def start_rollout(
        self, tenant: str, model: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        """A rollout from a plain body (training starts one for a version that beat its
        parent): validated as the API validates it."""
        try:
            spec = RolloutCreate.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or "rollout"
            raise ValidationFailed(f"rollout {name}: {first['msg']}", param=name) from None
        return (await self.create(tenant, model, spec, actor)).view()

    async def start(self, rollout: Rollout, actor: str) -> Rollout | None:
        """pending -> progressing: the first step's traffic (or the shadow, or the switch)."""
        spec = rollout.spec
        if rollout.phase == "canary":
            moved = replace(rollout, step=0, weight=spec.steps[0])
        elif rollout.phase == "switched":
            moved = replace(rollout, weight=100)
        else:
            moved = rollout
        return await self.transition(
            rollout, replace(moved, state="progressing"), "started", actor, reason="started"
        )

    # --- manual control ----------------------------------------------------------------

    async def control(
        self, tenant: str, model: str, rollout_id: str, action: str, actor: str
    ) -> Rollout:
        """pause, resume, promote or abort; a rollout that has ended cannot be moved.

        When the controller moves the rollout at the same moment, the request is tried again
        on what the rollout has become (an abort still aborts a rollout that just advanced)."""
        allowed = {
            "pause": ("progressing",),
            "resume": ("paused",),
            "promote": ("pending", "progressing", "paused"),
            "abort": ("pending", "progressing", "paused"),
        }[action]
        state, kind = {
            "pause": ("paused", "paused"),
            "resume": ("progressing", "resumed"),
            "promote": ("promoted", "promoted"),
            "abort": ("aborted", "aborted"),
        }[action]
        for _ in range(5):
            rollout = await self.get(tenant, model, rollout_id)
            if rollout.state not in allowed:
                raise Conflict(
                    f"rollout {rollout_id} is {rollout.state}; it cannot be {action}d now",
                    param="state",
                )
            after = replace(rollout, state=state)
            if action == "promote":
                after = replace(after, weight=100)
            elif action == "abort":
                after = replace(after, weight=0)
            moved = await self.transition(rollout, after, kind, actor, reason=f"{action} by hand")
            if moved is not None:
                return moved
        raise Conflict(f"rollout {rollout_id} keeps changing; try again", param="state")

    # --- transitions -------------------------------------------------------------------

    async def transition(
        self,
        before: Rollout,
        after: Rollout,
        kind: str,
        actor: str,
        *,
        reason: str,
        figures: dict[str, Any] | None = None,
    ) -> Rollout | None:
        """Write the move with its audit record (None when another actor moved the rollout
        first), set its traffic and publish ``meshgate.rollout.<kind>``."""
        stamp = now_iso(self.clock)
        shown = figures if figures is not None else before.figures
        entry: dict[str, Any] = {
            "transition": kind,
            "at": stamp,
            "actor": actor,
            "state": after.state,
            "phase": after.phase,
            "step": after.step,
            "weight": after.weight,
            "reason": reason,
            "figures": shown,
        }
        after = replace(
            after,
            reason=reason,
            figures=shown,
            history=[*before.history, entry],
            updated_at=stamp,
            evaluated_at=stamp if figures is not None else after.evaluated_at,
        )
        event = ROLLOUT_EVENTS[kind]
        data = event.data(
            RolloutTransition(
                id=after.id,
                model=after.model,
                candidate=after.spec.candidate,
                baseline=after.spec.baseline,
                mode=after.spec.mode,
                state=after.state,
                phase=after.phase,
                step=after.step,
                weight=after.weight,
                reason=reason,
                actor=actor,
                figures=shown,
            )
        )
        resource = f"models/{after.model}/rollouts/{after.id}"
        # The move and its audit record commit together: a move is never stored unaudited.
        record = audited(
            self.audit,
            actor=actor,
            tenant=after.tenant,
            action=f"rollout.{kind}",
            resource=resource,
            details=data,
            model_version=after.spec.candidate,
        )
        saved = await self.store.save(before, after, then=record)
        if saved is None:
            return None
        await self.apply(saved, actor)
        saved = replace(saved, applied=saved.revision)
        await self.events.publish(event.name, tenant=saved.tenant, data=data, subject=resource)
        return saved

    async def apply(self, rollout: Rollout, actor: str) -> None:
        """Set the traffic (and aliases) the rollout's state implies; idempotent."""
        record = await self.registry.get_model(rollout.tenant, rollout.model)
        policy = desired_traffic(rollout)
        if record["traffic"] != policy:
            await self.registry.set_traffic(rollout.tenant, rollout.model, policy, actor)
        for alias, version in desired_aliases(rollout).items():
            if record["aliases"].get(alias) != version:
                await self.registry.set_alias(rollout.tenant, rollout.model, alias, version, actor)
        await self.store.mark_applied(rollout)


def desired_traffic(rollout: Rollout) -> dict[str, Any]:
    """The traffic policy of the rollout's state, built on the policy it replaced: other
    shadows and the fallback stay; the split is the rollout's; stickiness by user unless the
    policy chose sessions (a user who saw the candidate keeps it while a step holds)."""
    spec = rollout.spec
    cand, base = spec.candidate, spec.baseline
    before = rollout.previous.get("traffic") or {}
    others = [v for v in before.get("shadow", []) if v not in (cand, base)]
    fallback = [v for v in before.get("fallback", []) if v != cand]
    sticky = before.get("sticky", "user")
    running_sticky = sticky if sticky != "none" else "user"
    state, phase, weight = rollout.state, rollout.phase, rollout.weight
    if state in ("rolled_back", "aborted"):
        return _policy(back_to_baseline(before.get("split"), cand, base), others, sticky, fallback)
    if state == "promoted":
        return _policy({cand: 100}, others, sticky, [v for v in fallback if v != cand])
    if phase == "shadow" or state == "pending":
        shadow = [*others, cand] if phase == "shadow" and state != "pending" else others
        split = {base: 100} if state != "pending" else (before.get("split") or {base: 100})
        return _policy(split, shadow, running_sticky, fallback)
    if phase == "switched":
        return _policy({cand: 100}, [*others, base], running_sticky, fallback)
    split = {base: 100 - weight, cand: weight} if weight < 100 else {cand: 100}
    return _policy({v: w for v, w in split.items() if w > 0}, others, running_sticky, fallback)


def back_to_baseline(split: dict[str, int] | None, candidate: str, baseline: str) -> dict[str, int]:
    """The split from before the rollout, with the candidate's share given to the baseline:
    other versions keep what they had."""
    restored = {v: w for v, w in (split or {}).items() if v != candidate and w > 0}
    moved = 100 - sum(restored.values())
    if moved > 0 or baseline not in restored:
        restored[baseline] = restored.get(baseline, 0) + moved
    return {v: w for v, w in restored.items() if w > 0} or {baseline: 100}


def _policy(
    split: dict[str, int], shadow: list[str], sticky: str, fallback: list[str]
) -> dict[str, Any]:
    return {"split": split, "shadow": shadow, "sticky": sticky, "fallback": fallback}


def desired_aliases(rollout: Rollout) -> dict[str, str]:
    """``production`` follows a promotion, and a blue-green switch; a rollback or abort of a
    switch puts it back where it was."""
    spec = rollout.spec
    was = rollout.previous.get("aliases", {}).get(PRODUCTION)
    if rollout.state == "promoted":
        return {PRODUCTION: spec.candidate}
    if spec.mode == "blue_green":
        if rollout.state in ("progressing", "paused"):
            return {PRODUCTION: spec.candidate}
        if rollout.state in ("rolled_back", "aborted"):
            return {PRODUCTION: was or spec.baseline}
    return {}
