"""``meshgate events list | tail | export | replay``, mounted by meshgate.cli.

They speak to the API. ``replay --group`` rewinds an internal consumer group, which has no
API: it runs ``--offline`` against the stores of an existing data directory.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from meshgate.cli.api import TYPER, api, fail, offline_settings, print_json, print_table

app = typer.Typer(**TYPER)
err_echo = typer.echo

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Path to meshgate.yaml.")]
TypeOption = Annotated[str | None, typer.Option("--type", help="Exact event type.")]
SubjectOption = Annotated[str | None, typer.Option(help="Only this subject.")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON, for scripts.")]


def parse_since(value: str | None) -> str | None:
    """An RFC 3339 time or a plain date (midnight UTC), as RFC 3339."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date or an RFC 3339 time") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat()


def check_type(value: str | None) -> None:
    from meshgate.errors import MeshgateError
    from meshgate.events.envelope import check_type as check

    try:
        if value is not None:
            check(value)
    except MeshgateError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--type") from exc


@app.command("list")
def list_events(
    type: TypeOption = None,
    subject: SubjectOption = None,
    after: Annotated[int, typer.Option(min=0, help="Only events after this sequence.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """A page of the log, oldest first."""
    check_type(type)
    with api() as mesh:
        page = mesh.events.page(after=after, limit=limit, type=type, subject=subject)
    if as_json:
        print_json({"events": page.items, "next_after": page.next_after})
        return
    print_table(
        ["sequence", "time", "type", "subject"],
        [[e.sequence, e.time, e.type, e.subject] for e in page.items],
    )


@app.command()
def tail(
    type: TypeOption = None,
    subject: SubjectOption = None,
    after: Annotated[
        int | None, typer.Option(min=0, help="Start after this sequence; default: now.")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
) -> None:
    """Follow the live stream: one JSON event a line, until interrupted (or --count)."""
    import asyncio

    import orjson

    from meshgate.cli.api import server_settings
    from meshgate.client import APIError, AsyncClient

    check_type(type)
    url, key = server_settings()

    async def follow() -> None:
        seen = 0
        async with AsyncClient(url, key) as mesh:
            async for event in mesh.events.stream(type=type, subject=subject, after=after):
                sys.stdout.write(orjson.dumps(event.model_dump(mode="json")).decode() + "\n")
                sys.stdout.flush()
                seen += 1
                if count is not None and seen >= count:
                    return

    try:
        asyncio.run(follow())
    except KeyboardInterrupt:
        pass
    except APIError as exc:
        fail(f"{exc.status} {exc.title}: {exc.detail}", 1)


@app.command()
def export(
    type: TypeOption = None,
    subject: SubjectOption = None,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this date or RFC 3339 time.")
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or parquet.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; jsonl defaults to stdout.")
    ] = None,
) -> None:
    """Export the tenant's event history (personal parts of erased users come out erased)."""
    if format not in ("jsonl", "parquet"):
        raise typer.BadParameter("must be jsonl or parquet", param_hint="--format")
    if format == "parquet" and output is None:
        raise typer.BadParameter("parquet needs a file", param_hint="--output")
    check_type(type)
    moment = parse_since(since)
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    sink: BinaryIO = output.open("wb") if output else sys.stdout.buffer
    lines = 0
    try:
        with (
            api() as mesh,
            Progress(
                TextColumn("exporting"),
                DownloadColumn(),
                TextColumn("{task.fields[lines]} events"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("export", total=None, lines=0)
            for chunk in mesh.events.export(
                format=format, type=type, subject=subject, since=moment
            ):
                sink.write(chunk)
                lines += chunk.count(b"\n") if format == "jsonl" else 0
                progress.update(task, advance=len(chunk), lines=lines)
    finally:
        if output:
            sink.close()
        else:
            sink.flush()
    done = f"exported {lines} events" if format == "jsonl" else "exported"
    typer.echo(done + (f" to {output}" if output else ""), err=True)


@app.command()
def replay(
    after: Annotated[int, typer.Option(min=0, help="Handle again every event after this.")],
    subscription: Annotated[
        str | None, typer.Option(help="Webhook subscription to deliver again.")
    ] = None,
    until: Annotated[
        int | None, typer.Option(min=1, help="Subscription: up to this sequence.")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Consumer group to rewind (needs --offline).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Open the stores of the data directory.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Deliver a range again: a webhook subscription (API) or a consumer group (--offline)."""
    if (group is None) == (subscription is None):
        raise typer.BadParameter("give exactly one of --group or --subscription")
    if subscription is not None:
        with api() as mesh:
            result = mesh.events.replay_subscription(subscription, after, until)
        typer.echo(f"{subscription}: {result}", err=True)
        return
    if not offline:
        fail(
            "--group rewinds an internal consumer group, which has no API: add --offline "
            "and run it where the data directory is (MESHGATE_DATA_DIR)",
            2,
        )
    before = _rewind_offline(config, group or "", after)
    typer.echo(
        f"{group}: offset {before} -> {after}; it handles every event after {after} again", err=True
    )


def _rewind_offline(config: str | None, name: str, after: int) -> int:
    from meshgate.cli.common import with_store
    from meshgate.errors import MeshgateError
    from meshgate.events.module import build_events

    settings = offline_settings(config)

    async def work(base: Any) -> int:
        service = build_events(base.settings, base.sql, base.pepper)
        await service.start()
        try:
            before = await service.log.committed(name)
            await service.replay(name, after=after)
            return int(before)
        finally:
            await service.close()

    try:
        return with_store(settings, work)
    except MeshgateError as exc:
        fail(exc.detail, 1)
