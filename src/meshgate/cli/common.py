"""What every command shares: reading the settings, and running work against the services
outside the server.

Commands build on ``meshgate.foundation`` (SQL store, keys), never on the composition root:
importing the web stack would cost every invocation seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from meshgate.config import ConfigError, Settings, load_settings
from meshgate.core.urls import UnsupportedUrl
from meshgate.foundation import Foundation, build_foundation, prepare

T = TypeVar("T")
console = Console()
ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Path to meshgate.yaml.")]


def settings_or_exit(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc


def foundation_or_exit(settings: Settings) -> Foundation:
    """The SQL store and the key service, constructed (not started); a URL in the wrong
    setting exits 2."""
    try:
        return build_foundation(settings)
    except UnsupportedUrl as exc:
        console.print(f"[red]invalid configuration: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc


def with_store(settings: Settings, work: Callable[[Foundation], Awaitable[T]]) -> T:
    """Run ``work(base)`` with the SQL store started and migrated, outside the server;
    ``work`` builds and starts whatever else it needs."""

    async def run() -> T:
        base = foundation_or_exit(settings)
        await base.sql.start()
        try:
            await prepare(base)
            return await work(base)
        finally:
            await base.sql.close()

    return asyncio.run(run())
