"""``meshgate serve | keys | models | events | audit``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from meshgate.config import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="Meshgate: the single point of entry to AI services.")
keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")
app.add_typer(keys_app, name="keys")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the settings.")
app.add_typer(config_app, name="config")
console = Console()
T = TypeVar("T")

# uvicorn drains in-flight requests this long on SIGTERM; deploy/ sizes its grace periods on it.
GRACEFUL_SHUTDOWN_SECONDS = 30

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Path to meshgate.yaml.")]


def settings_or_exit(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc


def with_platform(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(platform)`` against the configured stores, outside the server."""
    from meshgate.app import build_platform, default_modules, prepare

    async def run() -> T:
        platform = build_platform(settings)
        await platform.sql.start()
        try:
            await prepare(platform, default_modules())
            return await work(platform)
        finally:
            await platform.sql.close()

    return asyncio.run(run())


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

    from meshgate.app import build_platform, default_modules, prepare
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
        platform = build_platform(settings)
        await platform.sql.start()
        try:
            await prepare(platform, default_modules())
        finally:
            await platform.sql.close()

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
        created = with_platform(
            settings,
            lambda p: p.keys.create(
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
    keys = with_platform(settings_or_exit(config), lambda p: p.keys.list(tenant=None))
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
        with_platform(settings_or_exit(config), lambda p: p.keys.revoke(key_id, tenant=None))
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
    from meshgate.events.cli import app as events_app
    from meshgate.governance.cli import app as audit_app
    from meshgate.models.cli import app as models_app

    app.add_typer(models_app, name="models", help="Model registry.")
    app.add_typer(events_app, name="events", help="Event log: export and replay.")
    app.add_typer(audit_app, name="audit", help="Audit trail: verify and export.")
    app(prog_name="meshgate")


if __name__ == "__main__":
    sys.exit(main())
