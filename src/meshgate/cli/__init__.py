"""``meshgate serve | keys | models | events | audit``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

import typer
from rich.table import Table

from meshgate.cli import audit, events, models
from meshgate.cli.common import (
    ConfigOption,
    console,
    foundation_or_exit,
    settings_or_exit,
    with_store,
)

app = typer.Typer(no_args_is_help=True, help="Meshgate: the single point of entry to AI services.")
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")
app.add_typer(keys_app, name="keys")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the settings.")
app.add_typer(config_app, name="config")
app.add_typer(models.app, name="models", help="Model registry.")
app.add_typer(events.app, name="events", help="Event log: export and replay.")
app.add_typer(audit.app, name="audit", help="Audit trail: verify and export.")

# uvicorn drains in-flight requests this long on SIGTERM; deploy/ sizes its grace periods on it.
GRACEFUL_SHUTDOWN_SECONDS = 30


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address [MESHGATE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [MESHGATE_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    demo: Annotated[bool, typer.Option(help="Register the demo models.")] = False,
) -> None:
    """Serve the platform (uvicorn, uvloop, httptools); SIGTERM drains and closes backends."""
    import uvicorn

    from meshgate.foundation import prepare
    from meshgate.security.edge import protocol_for
    from meshgate.serve_tls import uvicorn_ssl_options

    overrides = {"host": host, "port": port, "workers": workers, "demo": demo or None}
    settings = settings_or_exit(config, **overrides)
    # Workers rebuild the settings from the environment, so pass the choices down that way.
    if config:
        os.environ["MESHGATE_CONFIG"] = config
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"MESHGATE_{key.upper()}"] = str(value)

    async def prepare_once() -> None:
        base = foundation_or_exit(settings)
        await base.sql.start()
        try:
            await prepare(base)
        finally:
            await base.sql.close()

    asyncio.run(prepare_once())
    uvicorn.run(
        "meshgate.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=protocol_for(settings.security.edge),
        timeout_keep_alive=int(settings.security.edge.keepalive_timeout_seconds),
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
        **uvicorn_ssl_options(settings.tls),
    )


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="Scope; repeat for several.")],
    tenant: Annotated[str, typer.Option(help="Tenant of the key.")] = "default",
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print its secret once."""
    from meshgate.errors import MeshgateError

    settings = settings_or_exit(config)
    try:
        created = with_store(
            settings,
            lambda s: s.keys.create(
                tenant=tenant, scopes=scope, rpm=rpm, tpm=tpm, description=description
            ),
        )
    except MeshgateError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"id:  {created.id}\nkey: {created.key}", highlight=False)


@keys_app.command("list")
def keys_list(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """List every key (never a secret)."""
    keys = with_store(settings_or_exit(config), lambda s: s.keys.list(tenant=None))
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    table = Table("id", "tenant", "prefix", "scopes", "created", "revoked")
    for k in keys:
        table.add_row(
            k["id"],
            k["tenant"],
            k["prefix"],
            ",".join(k["scopes"]),
            k["created_at"],
            k["revoked_at"] or "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key; processes sharing the store stop accepting it within the auth cache TTL."""
    from meshgate.errors import MeshgateError

    try:
        with_store(settings_or_exit(config), lambda s: s.keys.revoke(key_id, tenant=None))
    except MeshgateError as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"revoked {key_id}")


@config_app.command("example")
def config_example() -> None:
    """Print a meshgate.yaml with every setting at its default, described."""
    from meshgate.config_example import example_yaml

    typer.echo(example_yaml(), nl=False)


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings (file plus environment), secrets masked."""
    settings = settings_or_exit(config)
    typer.echo(settings.model_dump_json(indent=2))


def main() -> None:
    app(prog_name="meshgate")


if __name__ == "__main__":
    sys.exit(main())
