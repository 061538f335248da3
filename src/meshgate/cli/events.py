"""``meshgate events export | replay``.

Both run against the configured stores directly (the server may be running: SQLite readers
do not block its writer), so an operator can export history for training or rewind a
consumer group without going through the API.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from meshgate.cli.common import ConfigOption, settings_or_exit, with_store
from meshgate.errors import MeshgateError

if TYPE_CHECKING:
    from meshgate.foundation import Foundation

app = typer.Typer(no_args_is_help=True)
err = Console(stderr=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="Whose events.")]


def parse_since(value: str | None) -> datetime | None:
    """An RFC 3339 time or a plain date (midnight UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date or an RFC 3339 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _run(config: str | None, work: Any) -> Any:
    from meshgate.events.module import build_events

    async def with_events(base: Foundation) -> Any:
        service = build_events(base.settings, base.sql, base.pepper)
        await service.start()
        try:
            return await work(service)
        finally:
            await service.close()

    try:
        return with_store(settings_or_exit(config), with_events)
    except MeshgateError as exc:
        err.print(f"[red]{exc.detail}[/red]", highlight=False)
        raise typer.Exit(1) from exc


@app.command()
def export(
    config: ConfigOption = None,
    tenant: TenantOption = "default",
    type: Annotated[str | None, typer.Option("--type", help="Exact event type.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this date or RFC 3339 time.")
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or parquet.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; jsonl defaults to stdout.")
    ] = None,
) -> None:
    """Export event history (personal parts of erased users come out erased)."""
    from meshgate.events import export as exporter
    from meshgate.events.base import Filter
    from meshgate.events.envelope import check_type

    if format not in exporter.FORMATS:
        raise typer.BadParameter("must be jsonl or parquet", param_hint="--format")
    if format == "parquet" and output is None:
        raise typer.BadParameter("parquet needs a file", param_hint="--output")
    try:
        if type is not None:
            check_type(type)
    except MeshgateError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--type") from exc
    moment = parse_since(since)
    where = Filter(tenant=tenant, type=type, subject=subject)

    async def work(service: Any) -> int:
        total = await service.log.last_sequence()
        with Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("export", total=total)

            def advance(n: int) -> None:
                progress.advance(task, n)

            sink: BinaryIO = output.open("wb") if output else sys.stdout.buffer
            try:
                return await exporter.write(
                    service, sink, format, where, since=moment, progress=advance
                )
            finally:
                if output:
                    sink.close()
                else:
                    sink.flush()

    count = _run(config, work)
    err.print(f"exported {count} events" + (f" to {output}" if output else ""))


@app.command()
def replay(
    after: Annotated[int, typer.Option(min=0, help="Handle again every event after this.")],
    group: Annotated[str | None, typer.Option(help="Consumer group to rewind.")] = None,
    subscription: Annotated[
        str | None, typer.Option(help="Webhook subscription to deliver again.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Rewind a consumer group (or a webhook subscription) so it handles a range again."""
    from meshgate.events.webhooks import group_of

    if (group is None) == (subscription is None):
        raise typer.BadParameter("give exactly one of --group or --subscription")
    name = group if group is not None else group_of(subscription or "")

    async def work(service: Any) -> int:
        before = await service.log.committed(name)
        await service.replay(name, after=after)
        return int(before)

    before = _run(config, work)
    err.print(f"{name}: offset {before} -> {after}; it handles every event after {after} again")
