"""The versions of a model a training job deals with: the production version it is compared
with, the version it registered (found by the job id in its lineage, so a retry does not
register twice), the next version's name, and whether the new one goes on to a rollout."""

from __future__ import annotations

from typing import Any

from meshgate.errors import MeshgateError
from meshgate.training.jobs import Job
from meshgate.training.ports import RolloutStarter
from meshgate.training.spec import HIGHER_IS_BETTER, PromotionRule


def production_of(model: dict[str, Any]) -> dict[str, Any] | None:
    """The version the ``production`` alias names, else the newest version."""
    versions = {v["version"]: v for v in model["versions"]}
    chosen = model["aliases"].get("production")
    if chosen in versions:
        return dict(versions[chosen])
    return dict(model["versions"][-1]) if model["versions"] else None


def registered_by(model: dict[str, Any], job_id: str) -> dict[str, Any] | None:
    """The version a training job registered, found by the job id in its lineage."""
    for version in model["versions"]:
        lineage = (version.get("metadata") or {}).get("lineage") or {}
        if lineage.get("job") == job_id:
            return dict(version)
    return None


def next_version(model: dict[str, Any]) -> str:
    numbers = [int(v["version"]) for v in model["versions"] if v["version"].isdigit()]
    return str(max(numbers, default=0) + 1)


async def roll_out_if_better(
    rollouts: RolloutStarter | None,
    job: Job,
    rule: PromotionRule | None,
    version: str,
    lineage: dict[str, Any],
) -> dict[str, Any]:
    """Start a rollout of the job's new ``version`` when the trainer's promotion rule finds it
    better than production on the holdout; the decision, and why, either way."""
    parent = lineage["parent_version"]
    if not job.request.get("auto_rollout", True) or rule is None:
        return {"started": False, "reason": "automatic rollout is off"}
    if parent is None:
        return {"started": False, "reason": "no production version to compare with"}
    new, old = lineage["metrics"].get(rule.metric), lineage["baseline"].get(rule.metric)
    if new is None or old is None:
        return {
            "started": False,
            "reason": f"{rule.metric} is not known for both versions on the holdout",
        }
    better = new - old if HIGHER_IS_BETTER[rule.metric] else old - new
    decision = {
        "metric": rule.metric,
        "candidate": new,
        "production": old,
        "margin": rule.margin,
    }
    if better < rule.margin or better <= 0:
        return {"started": False, "reason": "not better by the margin", **decision}
    if rollouts is None:
        return {
            "started": False,
            "reason": "better by the margin, but no rollout service is wired",
            **decision,
        }
    if (started := await rollouts.rollout_of(job.tenant, job.model, version)) is not None:
        # Started by an earlier attempt of this job that stopped before it was marked done.
        return {"started": True, "rollout": started["id"], **decision}
    body = {**rule.rollout, "candidate": version, "baseline": parent}
    try:
        rollout = await rollouts.start_rollout(job.tenant, job.model, body, job.created_by)
    except MeshgateError as exc:
        # The version is registered either way; a rollout can be started by hand.
        return {
            "started": False,
            "reason": f"the rollout did not start: {exc.detail}",
            **decision,
        }
    return {"started": True, "rollout": rollout.get("id"), **decision}
