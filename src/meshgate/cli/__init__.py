"""``meshgate serve | whoami | keys | models | events | audit | datasets | config``.

Every command but ``serve`` and the ``--offline`` checks speaks to a running server through
the SDK (``MESHGATE_URL`` and a key, or a profile). Heavy modules are imported inside the
commands, so ``meshgate --help`` answers at once.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from meshgate.cli import audit, datasets, events, models, rollouts
from meshgate.cli.api import TYPER, api, print_json, print_table

app = typer.Typer(
    **TYPER,
    help="Meshgate: the single point of entry to AI services.\n\n"
    "Commands speak to a running server: set MESHGATE_URL and MESHGATE_API_KEY (or "
    "MESHGATE_ADMIN_KEY), or MESHGATE_PROFILE to a profile of "
    "~/.config/meshgate/profiles.yaml (default: its 'default' profile). Only `serve` and "
    "the --offline checks open the stores, and only an existing data directory.",
)
keys_app = typer.Typer(**TYPER, help="Manage API keys.")
app.add_typer(keys_app, name="keys")
config_app = typer.Typer(**TYPER, help="Inspect the settings.")
app.add_typer(config_app, name="config")
app.add_typer(models.app, name="models", help="Model registry.")
app.add_typer(rollouts.app, name="rollouts", help="Rollouts: start, follow, promote, abort.")
app.add_typer(events.app, name="events", help="Event log: list, tail, export and replay.")
app.add_typer(audit.app, name="audit", help="Audit trail: browse, verify and export.")
app.add_typer(datasets.app, name="datasets", help="Training sets built from the event log.")
models.app.command("train")(datasets.train)
models.app.command("import-mlflow")(datasets.import_mlflow)

# uvicorn drains in-flight requests this long on SIGTERM; deploy/ sizes its grace periods on it.
GRACEFUL_SHUTDOWN_SECONDS = 30

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Path to meshgate.yaml.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address [MESHGATE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [MESHGATE_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    demo: Annotated[bool, typer.Option(help="Register the demo models.")] = False,
) -> None:
    """Serve the platform (uvicorn, uvloop, httptools); SIGTERM drains and closes backends."""
    import asyncio

    import uvicorn

    from meshgate.cli.common import foundation_or_exit, settings_or_exit
    from meshgate.errors import BackendUnavailable
    from meshgate.foundation import prepare
    from meshgate.security.edge import protocol_for
    from meshgate.serve_tls import uvicorn_ssl_options
    from meshgate.startup import EXIT_GAVE_UP, process_gave_up

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
        try:
            await base.sql.start()
        except BackendUnavailable:
            # PostgreSQL is down: the server starts all the same and keeps trying
            # (meshgate.startup); the schema is brought up to date there.
            return
        try:
            await prepare(base)
        except BackendUnavailable:
            pass  # e.g. another node migrating: the server's start-up waits for it, patiently
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
    if process_gave_up():  # a start-up that waited for PostgreSQL failed another way
        raise typer.Exit(EXIT_GAVE_UP)


@app.command()
def whoami(as_json: JsonOption = False) -> None:
    """The key in use: id, tenant, scopes and limits."""
    with api() as mesh:
        me = mesh.whoami()
    if as_json:
        print_json(me)
        return
    print_table(
        ["key", "tenant", "scopes", "rpm", "tpm"],
        [[me.key_id, me.tenant, ",".join(me.scopes), me.rpm, me.tpm]],
    )


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="Scope; repeat for several.")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant of the key; default the caller's.")
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print its secret once."""
    with api() as mesh:
        created = mesh.keys.create(scope, tenant=tenant, rpm=rpm, tpm=tpm, description=description)
    if as_json:
        print_json(created)
        return
    typer.echo(f"id:     {created.id}\ntenant: {created.tenant}\nkey:    {created.key}")


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """List the keys the caller may see (never a secret)."""
    with api() as mesh:
        keys = mesh.keys.list()
    if as_json:
        print_json(keys)
        return
    print_table(
        ["id", "tenant", "prefix", "scopes", "created", "revoked"],
        [[k.id, k.tenant, k.prefix, ",".join(k.scopes), k.created_at, k.revoked_at] for k in keys],
    )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key; every server stops accepting it within the auth cache TTL."""
    with api() as mesh:
        mesh.keys.revoke(key_id)
    typer.echo(f"revoked {key_id}")


@config_app.command("example")
def config_example() -> None:
    """Print a meshgate.yaml with every setting at its default, described."""
    from meshgate.config_example import example_yaml

    typer.echo(example_yaml(), nl=False)


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings (file plus environment), secrets masked."""
    from meshgate.cli.common import settings_or_exit

    settings = settings_or_exit(config)
    typer.echo(settings.model_dump_json(indent=2))


def main() -> None:
    app(prog_name="meshgate")


if __name__ == "__main__":
    main()
