"""``meshgate audit list | verify | export | public-key``, mounted by meshgate.cli.

They speak to the API. ``verify`` exits 0 when the chain holds and 1 with the first bad record
when it does not, so it fits a cron job or a CI step. Offline checks need no server:
``verify --file`` checks an export with nothing but a public key, and ``--offline`` reads the
stores of an existing data directory directly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from meshgate.cli.api import TYPER, api, fail, offline_settings, print_json, print_table

if TYPE_CHECKING:
    from meshgate.client import Client
    from meshgate.governance.audit import AuditService

app = typer.Typer(**TYPER)

ConfigOption = Annotated[str | None, typer.Option("--config", "-c", help="Path to meshgate.yaml.")]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Read the stores of the data directory, not the API.")
]
KeyOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        "-k",
        help="Trusted public key file (PEM or base64); repeat for rotated keys. "
        "Default: the platform's own keys.",
    ),
]


def _print(result: dict[str, Any]) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


def _exit_on(result: dict[str, Any]) -> None:
    _print(result)
    if not result["ok"]:
        bad = result["first_bad"]
        typer.echo(f"audit chain broken at record {bad['sequence']}: {bad['reason']}", err=True)
        raise typer.Exit(1)


def _trusted_keys(files: list[Path]) -> dict[str, Any]:
    from meshgate.governance.chain import key_id_of
    from meshgate.governance.signing import SigningKeyError, parse_public

    keys = {}
    for file in files:
        try:
            key = parse_public(file.read_text())
        except (OSError, SigningKeyError) as exc:
            fail(f"{file}: {exc}", 2)
        keys[key_id_of(key)] = key
    return keys


def _with_audit(
    config: str | None, work: Any, key_files: list[Path] | None, *, need_keys: bool = True
) -> Any:
    """Run ``work(audit)`` on the existing store, reading only: no key is ever created here."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meshgate.cli.common import with_store
    from meshgate.governance.audit import AuditService
    from meshgate.governance.signing import Signer, SigningKeyError, find_signer

    settings = offline_settings(config)
    try:
        signer = find_signer(settings.audit, settings.data_dir)
    except SigningKeyError as exc:
        fail(str(exc.detail), 2)
    trusted = _trusted_keys(key_files) if key_files else signer.keys if signer else None
    if trusted is None and not need_keys:
        trusted = {}
    if trusted is None:
        fail(f"no audit signing key in settings or {settings.data_dir}: pass --public-key", 2)
    # Verifying and exporting sign nothing; a throwaway key stands in when only public keys
    # are at hand.
    reader = signer or Signer(Ed25519PrivateKey.generate())
    reader.keys = trusted
    return with_store(settings, lambda base: work(AuditService(base.sql, reader, settings.audit)))


@app.command("list")
def list_records(
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
    resource: Annotated[
        str | None, typer.Option(help="A resource and everything under it.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time (RFC 3339).")] = None,
    after: Annotated[int, typer.Option(min=0, help="Records after this sequence.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, for scripts.")] = False,
) -> None:
    """Browse the trail: who did what, when, to which resource."""
    with api() as mesh:
        page = mesh.audit.page(
            after=after, limit=limit, action=action, resource=resource, since=since
        )
    if as_json:
        print_json({"records": page.items, "next_after": page.next_after})
        return
    print_table(
        ["sequence", "time", "actor", "tenant", "action", "resource"],
        [[r.sequence, r.time, r.actor, r.tenant, r.action, r.resource] for r in page.items],
    )


@app.command()
def verify(
    offline: OfflineOption = False,
    config: ConfigOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Verify this export instead.")
    ] = None,
    public_key: KeyOption = None,
) -> None:
    """Verify the chain (or an export): exit 1 and name the first bad record when tampered."""
    from meshgate.governance.export import ExportFormatError, verify_export

    if file is not None:
        if not public_key:
            fail("--file needs --public-key: an export is verified against a key you trust", 2)
        keys = _trusted_keys(public_key)
        try:
            with file.open("rb") as lines:
                result = verify_export(lines, keys)
        except (OSError, ExportFormatError) as exc:
            fail(f"{file}: {exc}", 2)
        _exit_on(result)
        return
    if not offline:
        with api() as mesh:
            _exit_on(mesh.audit.verify().model_dump(mode="json"))
        return

    async def run(audit: AuditService) -> dict[str, Any]:
        return await audit.verify()

    _exit_on(_with_audit(config, run, public_key))


@app.command()
def export(
    since: Annotated[str | None, typer.Option(help="From this time (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (RFC 3339).")] = None,
    format: Annotated[str, typer.Option("--format", help="Only jsonl.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default stdout.")
    ] = None,
    offline: OfflineOption = False,
    public_key: KeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Export records (widened to signed checkpoints) as JSON lines; needs a root admin key.

    The export verifies anywhere with the public key alone: `audit verify --file`.
    """
    from meshgate.errors import BadRequest
    from meshgate.governance.audit import parse_time

    if format != "jsonl":
        fail(f"unsupported format {format!r}: only jsonl", 2)
    try:
        lo, hi = parse_time("since", since), parse_time("until", until)
    except BadRequest as exc:
        fail(exc.detail, 2)
    out = output.open("wb") if output else sys.stdout.buffer
    try:
        if offline:
            counts = _export_offline(config, out, lo, hi, public_key)
        else:
            with api() as mesh:
                counts = _export_api(mesh, out, lo, hi)
    finally:
        if output:
            out.close()
        else:
            out.flush()
    typer.echo(
        f"exported {counts['records']} records, {counts['checkpoints']} checkpoints", err=True
    )


def _export_offline(
    config: str | None, out: IO[bytes], lo: Any, hi: Any, keys: list[Path] | None
) -> dict[str, int]:
    from meshgate.governance.export import export_jsonl

    async def run(audit: AuditService) -> dict[str, int]:
        return await export_jsonl(audit, out, since=lo, until=hi)

    result: dict[str, int] = _with_audit(config, run, keys, need_keys=False)
    return result


def _export_api(mesh: Client, out: IO[bytes], lo: Any, hi: Any) -> dict[str, int]:
    """The same file as the offline export, built from the API's pages, with progress."""
    import orjson
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from meshgate.governance.export import CHECKPOINT_FIELDS, FORMAT, RECORD_FIELDS

    def write(kind: str, item: dict[str, Any], fields: tuple[str, ...]) -> None:
        out.write(orjson.dumps({"kind": kind, **{f: item.get(f) for f in fields}}) + b"\n")

    head = mesh.audit.verify().last_sequence or 0
    window = {"since": lo, "until": hi}
    inside = [r.sequence for r in mesh.audit.page(limit=1, **window).items]
    first = inside[0] if inside else head + 1
    last = first - 1
    if hi is not None:
        for record in mesh.audit.iter(after=first - 1, **window):
            last = record.sequence
    elif inside:
        last = head
    checkpoints = [c.model_dump() for c in mesh.audit.checkpoints()] if first <= last else []
    before = [c for c in checkpoints if c["sequence"] < first]
    anchor = before[-1] if before else None
    start = anchor["sequence"] + 1 if anchor else 1
    closing = next((c for c in checkpoints if c["sequence"] >= last), None)
    end = closing["sequence"] if closing is not None and last >= start else last
    if first > last:
        start, end = first, last
    keys = mesh.audit.public_key()
    header = {
        "kind": "header",
        "format": FORMAT,
        "since": lo,
        "until": hi,
        "first_sequence": start,
        "last_sequence": end,
        "public_keys": {keys.key_id: keys.public_key},
    }
    out.write(orjson.dumps(header) + b"\n")
    counts = {"records": 0, "checkpoints": 0}
    if anchor is not None:
        write("checkpoint", anchor, CHECKPOINT_FIELDS)
        counts["checkpoints"] += 1
    pending = iter([c for c in checkpoints if start <= c["sequence"] <= end])
    cp = next(pending, None)
    with Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("export", total=max(0, end - start + 1))
        for record in mesh.audit.iter(after=start - 1) if start <= end else []:
            if record.sequence > end:
                break
            write("record", record.model_dump(), RECORD_FIELDS)
            counts["records"] += 1
            progress.advance(task)
            while cp is not None and cp["sequence"] <= record.sequence:
                write("checkpoint", cp, CHECKPOINT_FIELDS)
                counts["checkpoints"] += 1
                cp = next(pending, None)
    return counts


@app.command("public-key")
def public_key_cmd(offline: OfflineOption = False, config: ConfigOption = None) -> None:
    """Print the public key of the checkpoints (PEM), for verifying exports elsewhere."""
    if not offline:
        with api() as mesh:
            typer.echo(mesh.audit.public_key().pem, nl=False)
        return
    from meshgate.governance.signing import find_signer

    settings = offline_settings(config)
    signer = find_signer(settings.audit, settings.data_dir)
    if signer is None:
        fail(f"no audit signing key in settings or {settings.data_dir}", 2)
    typer.echo(signer.describe()["pem"], nl=False)
