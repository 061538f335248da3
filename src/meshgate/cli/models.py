"""``meshgate models list | register | traffic``.

They work on the configured SQL store directly, as the operator's counterpart of the API;
a running server sees the change within its registry refresh time (a second). A declaration
file has the shape of one entry of ``models:`` in ``meshgate.yaml`` (or a list of them) and,
being a file on the operator's side, may declare Python entry points, as the config may.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from meshgate.cli.common import ConfigOption, settings_or_exit, with_store
from meshgate.errors import MeshgateError
from meshgate.models.config import ModelDeclaration

if TYPE_CHECKING:
    from meshgate.foundation import Foundation
    from meshgate.models.service import ModelService

app = typer.Typer(no_args_is_help=True)
out = Console()
err = Console(stderr=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="Whose models.")]
ACTOR = "cli"


def _run(config: str | None, work: Any) -> Any:
    try:
        return with_store(settings_or_exit(config), work)
    except MeshgateError as exc:
        err.print(f"[red]{exc.detail}[/red]", highlight=False)
        raise typer.Exit(1) from exc


class Registrar:
    """A model service allowed the entry points and artifacts ``declared`` names, with the
    event log and the audit trail, so registry changes are announced and recorded as the
    server would."""

    def __init__(self, base: Foundation, declared: list[ModelDeclaration]):
        from meshgate.context.module import build_context
        from meshgate.events.module import build_events
        from meshgate.governance.module import build_audit
        from meshgate.models.gate import OpenGate
        from meshgate.models.module import artifact_store, factory_for
        from meshgate.models.service import ModelService
        from meshgate.security.egress import EgressPolicy

        settings = base.settings
        self.events = build_events(settings, base.sql, base.pepper)
        audit = build_audit(settings, base.sql)
        context = build_context(settings, events=self.events, audit=audit)
        factory = factory_for(
            settings,
            declared,
            artifact_store(settings, base.sql),
            credentials=base.credentials,
            egress=EgressPolicy(settings.security.egress_allow),
        )
        self.service = ModelService(
            base.sql,
            factory.transport,
            factory,
            events=self.events,
            audit=audit,
            context=context,
            on_breaker=lambda *_: None,  # no metrics outside the server
            gate=OpenGate(),  # no chat calls here
        )

    async def __aenter__(self) -> ModelService:
        await self.events.start()
        return self.service

    async def __aexit__(self, *exc: object) -> None:
        await self.service.close()
        await self.events.close()


@app.command("list")
def list_models(
    tenant: TenantOption = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Every model of a tenant with its versions, aliases and split."""
    from meshgate.models.registry import Registry

    models = _run(config, lambda s: Registry(s.sql).list_models(tenant))
    if as_json:
        out.print_json(json.dumps(models))
        return
    table = Table("name", "task", "risk", "versions", "aliases", "split")
    for m in models:
        split = (m["traffic"] or {}).get("split", {})
        table.add_row(
            m["name"],
            m["task"],
            m["risk_level"],
            ", ".join(v["version"] for v in m["versions"]),
            ", ".join(f"{a}={v}" for a, v in m["aliases"].items()),
            ", ".join(f"{v}:{w}" for v, w in split.items()),
        )
    out.print(table)


@app.command("register")
def register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON.")],
    config: ConfigOption = None,
) -> None:
    """Register the models, versions, aliases and traffic declared in FILE."""
    raw = yaml.safe_load(file.read_text())
    try:
        declared = [ModelDeclaration.model_validate(d) for d in _as_list(raw)]
    except ValidationError as exc:
        err.print(f"[red]{file}: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc

    async def work(base: Foundation) -> None:
        async with Registrar(base, declared) as service:
            await service.apply(declared, actor=ACTOR)

    _run(config, work)
    for d in declared:
        versions = ", ".join(v.version for v in d.versions) or "no versions"
        out.print(f"registered {d.name} ({d.tenant}): {versions}", highlight=False)


@app.command("traffic")
def traffic(
    name: str,
    split: Annotated[
        list[str] | None, typer.Option("--split", "-s", help="VERSION=WEIGHT; repeat.")
    ] = None,
    shadow: Annotated[list[str] | None, typer.Option(help="Shadow version; repeat.")] = None,
    fallback: Annotated[list[str] | None, typer.Option(help="Fallback version; repeat.")] = None,
    sticky: Annotated[str | None, typer.Option(help="user, session or none.")] = None,
    tenant: TenantOption = "default",
    config: ConfigOption = None,
) -> None:
    """Change the traffic policy of model NAME, e.g. --split 1=90 --split 2=10.

    Only what is given changes (the split as a whole; shadows, fallbacks and stickiness stay
    unless given), like PATCH /v1/registry/models/NAME/traffic.
    """
    try:
        weights = {v: int(w) for v, _, w in (s.partition("=") for s in split or [])}
        if weights and sum(weights.values()) != 100:
            raise ValueError(f"split weights must sum to 100, not {sum(weights.values())}")
    except ValueError as exc:
        err.print(f"[red]invalid traffic policy: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc
    given = {"shadow": shadow, "fallback": fallback, "sticky": sticky}
    patch: dict[str, Any] = {k: v for k, v in given.items() if v is not None}

    async def work(base: Foundation) -> dict[str, Any]:
        async with Registrar(base, []) as service:
            if weights:
                # The split given replaces the whole split: versions it leaves out go.
                from meshgate.models.runtime import traffic_of

                current = traffic_of(await service.registry.get_model(tenant, name))
                old = current.split if current is not None else {}
                patch["split"] = {**dict.fromkeys(old), **weights}
            result: dict[str, Any] = await service.patch_traffic(tenant, name, patch, ACTOR)
            return result

    result = _run(config, work)
    out.print(f"{name}: {json.dumps(result)}", highlight=False)


def _as_list(raw: Any) -> list[Any]:
    if isinstance(raw, dict) and "models" in raw:
        raw = raw["models"]
    return raw if isinstance(raw, list) else [raw]
