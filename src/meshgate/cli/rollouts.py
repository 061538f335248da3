"""``meshgate rollouts start | status | pause | resume | promote | abort``, over the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from meshgate.cli.api import TYPER, api, fail, print_json, print_table

if TYPE_CHECKING:
    from meshgate.client.models import Rollout

app = typer.Typer(**TYPER)
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]
Model = Annotated[str, typer.Argument(help="The model.")]
RolloutId = Annotated[str, typer.Argument(help="The rollout's id (see `status`).")]


@app.command("start")
def start(
    model: Model,
    candidate: Annotated[str, typer.Option(help="The version to roll out.")],
    baseline: Annotated[str, typer.Option(help="The version to compare it with.")],
    mode: Annotated[str, typer.Option(help="canary, shadow_then_canary or blue_green.")] = "canary",
    steps: Annotated[
        str | None, typer.Option(help="Candidate shares in percent, e.g. 5,25,50,100.")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between two looks of the analysis.")
    ] = None,
    min_requests: Annotated[
        int | None, typer.Option(help="Candidate calls a step needs before it advances.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a rollout: the candidate gets the first step's share of traffic at once."""
    fields: dict[str, object] = {"mode": mode}
    if steps is not None:
        try:
            fields["steps"] = [int(s) for s in steps.split(",") if s.strip()]
        except ValueError:
            fail(f"--steps: {steps!r} is not a list of whole percents like 5,25,50,100", 2)
    if interval is not None:
        fields["interval_seconds"] = interval
    if min_requests is not None:
        fields["min_requests"] = min_requests
    with api() as mesh:
        rollout = mesh.rollouts.start(model, candidate, baseline, **fields)
    _show(rollout, as_json)


@app.command("status")
def status(
    model: Model,
    rollout_id: Annotated[
        str | None, typer.Argument(help="One rollout; default every rollout of the model.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A rollout's state, step and latest figures; or every rollout of the model."""
    with api() as mesh:
        if rollout_id is not None:
            _show(mesh.rollouts.get(model, rollout_id), as_json)
            return
        rollouts = mesh.rollouts.list(model)
    if as_json:
        print_json(rollouts)
        return
    print_table(
        ["id", "candidate", "baseline", "mode", "state", "share", "reason", "updated"],
        [
            [r.id, r.candidate, r.baseline, r.mode, r.state, f"{r.weight}%", r.reason, r.updated_at]
            for r in rollouts
        ],
    )


def _control(action: str, help_text: str) -> None:
    def command(model: Model, rollout_id: RolloutId, as_json: JsonOption = False) -> None:
        with api() as mesh:
            rollout = getattr(mesh.rollouts, action)(model, rollout_id)
        _show(rollout, as_json)

    command.__doc__ = help_text
    app.command(action)(command)


_control("pause", "Hold a rollout at its step until resumed.")
_control("resume", "Resume a paused rollout.")
_control("promote", "Promote the candidate now: all traffic, and the production alias.")
_control("abort", "Abort: traffic back to the baseline (a blue-green switch is undone).")


def _show(rollout: Rollout, as_json: bool) -> None:
    if as_json:
        print_json(rollout)
        return
    share = f"{rollout.weight}% of traffic"
    typer.echo(f"{rollout.id}: {rollout.model} {rollout.candidate} against {rollout.baseline}")
    typer.echo(f"state:  {rollout.state} ({rollout.phase}, {share}); {rollout.reason}")
    typer.echo(f"steps:  {', '.join(map(str, rollout.steps))} (now step {rollout.step + 1})")
    figures = rollout.figures
    if figures:
        rows = []
        for side in ("candidate", "baseline"):
            f = figures.get(side, {})
            rows.append(
                [side, f.get("requests"), f.get("error_rate"), f.get("p95_ms"), f.get("accuracy")]
            )
        print_table(["", "calls", "error rate", "p95 ms", "accuracy"], rows)
        failed = [name for name, c in figures.get("checks", {}).items() if c.get("worse")]
        typer.echo(f"failed checks: {', '.join(failed) or 'none'}")
