"""``meshgate models list | show | register | traffic | alias | history``, over the API.

A declaration file (``register FILE``) has the shape of one entry of ``models:`` in
``meshgate.yaml``, or a list of them: see docs/model-file.md.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshgate.cli.api import TYPER, api, fail, print_json, print_table

if TYPE_CHECKING:
    from meshgate.client import Client
    from meshgate.client.models import Model, TrafficPolicy

app = typer.Typer(**TYPER)
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


def _split_text(traffic: TrafficPolicy | None) -> str:
    return ", ".join(f"{v}:{w}" for v, w in (traffic.split if traffic else {}).items())


@app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """Every model of the caller's tenant with its versions, aliases and split."""
    with api() as mesh:
        models = mesh.models.list()
    if as_json:
        print_json(models)
        return
    print_table(
        ["name", "task", "risk", "versions", "aliases", "split", "fallback"],
        [
            [
                m.name,
                m.task,
                m.risk_level,
                ", ".join(v.version for v in m.versions),
                ", ".join(f"{a}={v}" for a, v in m.aliases.items()),
                _split_text(m.traffic),
                ", ".join(m.traffic.fallback) if m.traffic else "",
            ]
            for m in models
        ],
    )


@app.command("show")
def show(name: str, as_json: JsonOption = False) -> None:
    """One model: versions with their providers, aliases and traffic."""
    with api() as mesh:
        model = mesh.models.get(name)
    if as_json:
        print_json(model)
        return
    _print_model(model)


def _print_model(model: Model) -> None:
    typer.echo(f"{model.name} ({model.task}, risk {model.risk_level})")
    print_table(
        ["version", "provider", "registered by", "at"],
        [
            [v.version, v.provider.get("type"), v.registered_by, v.created_at]
            for v in model.versions
        ],
    )
    traffic = model.traffic
    typer.echo(f"aliases:  {', '.join(f'{a}={v}' for a, v in model.aliases.items()) or '-'}")
    typer.echo(f"split:    {_split_text(traffic) or '- (the newest version)'}")
    if traffic:
        typer.echo(f"fallback: {', '.join(traffic.fallback) or '-'}")
        typer.echo(f"shadow:   {', '.join(traffic.shadow) or '-'}")
        typer.echo(f"sticky:   {traffic.sticky}")


@app.command("history")
def history(name: str, as_json: JsonOption = False) -> None:
    """Every change of a model: versions, aliases, traffic; who and when."""
    with api() as mesh:
        changes = mesh.models.history(name)
    if as_json:
        print_json(changes)
        return
    print_table(
        ["at", "actor", "change", "details"],
        [[c.at, c.actor, c.change, _brief(c.details)] for c in changes],
    )


def _brief(details: dict[str, Any]) -> str:
    import orjson

    text = orjson.dumps(details).decode()
    return text if len(text) <= 80 else text[:77] + "..."


@app.command("register")
def register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON.")],
) -> None:
    """Register the models, versions, aliases and traffic declared in FILE.

    What exists already is left as it is (versions are immutable); aliases and traffic are set.
    """
    import yaml
    from pydantic import ValidationError

    from meshgate.models.config import ModelDeclaration

    try:
        raw = yaml.safe_load(file.read_text())
        declared = [ModelDeclaration.model_validate(d) for d in _as_list(raw)]
    except (yaml.YAMLError, ValidationError) as exc:
        fail(f"{file}: {exc}", 2)
    with api() as mesh:
        tenant = mesh.whoami().tenant
        for d in declared:
            if "tenant" in d.model_fields_set and d.tenant != tenant:
                fail(
                    f"{file}: model {d.name} is declared for tenant {d.tenant!r}, "
                    f"but the key belongs to {tenant!r}",
                    2,
                )
            added = _apply(mesh, d)
            typer.echo(f"registered {d.name} ({tenant}): {', '.join(added) or 'no new versions'}")


def _apply(mesh: Client, d: Any) -> list[str]:
    from meshgate.client import ConflictError

    body = d.model_dump(mode="json", exclude={"tenant", "versions", "aliases", "traffic", "name"})
    # Registered before: its versions, aliases and traffic are brought up to date.
    with contextlib.suppress(ConflictError):
        mesh.models.create(d.name, **body)
    added = []
    for v in d.versions:
        fields = v.model_dump(mode="json", exclude={"version", "provider"})
        try:
            mesh.models.add_version(d.name, v.version, v.provider.model_dump(mode="json"), **fields)
            added.append(v.version)
        except ConflictError:
            continue
    for alias, version in d.aliases.items():
        mesh.models.set_alias(d.name, alias, version)
    if d.traffic is not None:
        mesh.models.set_traffic(d.name, **d.traffic.model_dump(mode="json"))
    return added


@app.command("traffic")
def traffic(
    name: str,
    split: Annotated[
        list[str] | None, typer.Option("--split", "-s", help="VERSION=WEIGHT; repeat.")
    ] = None,
    shadow: Annotated[
        list[str] | None, typer.Option(help="Shadow version; repeat. Replaces the shadows.")
    ] = None,
    fallback: Annotated[
        list[str] | None, typer.Option(help="Fallback version; repeat. Replaces the fallbacks.")
    ] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Remove every shadow.")] = False,
    no_fallback: Annotated[
        bool, typer.Option("--no-fallback", help="Remove every fallback.")
    ] = False,
    sticky: Annotated[str | None, typer.Option(help="user, session or none.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Change the traffic policy of model NAME; what is not given stays as it is.

    Example: --split 1=90 --split 2=10 keeps the fallback and the shadows.
    """
    changes: dict[str, Any] = {}
    if split:
        try:
            changes["split"] = {v: int(w) for v, _, w in (s.partition("=") for s in split)}
        except ValueError:
            fail("--split takes VERSION=WEIGHT with a whole number, e.g. --split 1=90", 2)
    if shadow or no_shadow:
        changes["shadow"] = [] if no_shadow else shadow
    if fallback or no_fallback:
        changes["fallback"] = [] if no_fallback else fallback
    if sticky is not None:
        changes["sticky"] = sticky
    if not changes:
        fail("nothing to change: give --split, --shadow, --fallback or --sticky", 2)
    with api() as mesh:
        policy = _change_traffic(mesh, name, changes)
    if as_json:
        print_json(policy)
        return
    typer.echo(
        f"{name}: split {_split_text(policy)}; fallback {', '.join(policy.fallback) or '-'}; "
        f"shadow {', '.join(policy.shadow) or '-'}; sticky {policy.sticky}"
    )


def _change_traffic(mesh: Client, name: str, changes: dict[str, Any]) -> TrafficPolicy:
    """PATCH where the server has it; else read, merge and replace."""
    from meshgate.client import APIError

    if "split" in changes:
        # A merge patch merges the split too: versions left out must be removed by name.
        current = mesh.models.get(name).traffic
        dropped = {v: None for v in (current.split if current else {})}
        changes = {**changes, "split": {**dropped, **changes["split"]}}
    try:
        return mesh.models.update_traffic(name, **changes)
    except APIError as exc:
        if exc.status != 405:  # a server without PATCH answers 405
            raise
    current = mesh.models.get(name).traffic
    merged = {**(current.model_dump() if current else {}), **changes}
    merged["split"] = {v: w for v, w in merged.get("split", {}).items() if w is not None}
    if "split" not in merged:
        fail(f"{name} has no split yet: give --split", 2)
    return mesh.models.set_traffic(name, **merged)


@app.command("alias")
def alias(name: str, alias: str, version: str) -> None:
    """Point ALIAS of model NAME at VERSION."""
    with api() as mesh:
        mesh.models.set_alias(name, alias, version)
    typer.echo(f"{name}: {alias} -> {version}")


def _as_list(raw: Any) -> list[Any]:
    if isinstance(raw, dict) and "models" in raw:
        raw = raw["models"]
    return raw if isinstance(raw, list) else [raw]
