"""``meshgate audit verify | export | public-key``, mounted by meshgate.cli.

``verify`` exits 0 when the chain holds and 1 with the first bad record when it does not, so it
fits a cron job or a CI step; ``verify --file`` checks an export with nothing but a public key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from meshgate.cli.common import ConfigOption, settings_or_exit, with_store

app = typer.Typer(no_args_is_help=True)

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
            typer.echo(f"{file}: {exc}", err=True)
            raise typer.Exit(2) from exc
        keys[key_id_of(key)] = key
    return keys


def _with_audit(
    config: str | None, work: Any, key_files: list[Path] | None, *, need_keys: bool = True
) -> Any:
    """Run ``work(audit)`` on the configured store, reading only: no key is ever created here."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meshgate.governance.audit import AuditService
    from meshgate.governance.signing import Signer, SigningKeyError, find_signer

    settings = settings_or_exit(config)
    try:
        signer = find_signer(settings.audit, settings.data_dir)
    except SigningKeyError as exc:
        typer.echo(str(exc.detail), err=True)
        raise typer.Exit(2) from exc
    trusted = _trusted_keys(key_files) if key_files else signer.keys if signer else None
    if trusted is None and not need_keys:
        trusted = {}
    if trusted is None:
        typer.echo(
            f"no audit signing key in settings or {settings.data_dir}: pass --public-key", err=True
        )
        raise typer.Exit(2)
    # Verifying and exporting sign nothing; a throwaway key stands in when only public keys
    # are at hand.
    reader = signer or Signer(Ed25519PrivateKey.generate())
    reader.keys = trusted
    return with_store(settings, lambda base: work(AuditService(base.sql, reader, settings.audit)))


@app.command()
def verify(
    config: ConfigOption = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Verify this export instead of the store.")
    ] = None,
    public_key: KeyOption = None,
) -> None:
    """Verify the chain (or an export): exit 1 and name the first bad record when tampered."""
    from meshgate.governance.export import ExportFormatError, verify_export

    if file is not None:
        if not public_key:
            typer.echo("--file needs --public-key: an export is verified against a key you trust")
            raise typer.Exit(2)
        keys = _trusted_keys(public_key)
        try:
            with file.open("rb") as lines:
                result = verify_export(lines, keys)
        except (OSError, ExportFormatError) as exc:
            typer.echo(f"{file}: {exc}", err=True)
            raise typer.Exit(2) from exc
        _exit_on(result)
        return

    async def run(audit: Any) -> dict[str, Any]:
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
    public_key: KeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Export records (widened to signed checkpoints) as JSON lines."""
    from meshgate.errors import BadRequest
    from meshgate.governance.audit import parse_time
    from meshgate.governance.export import export_jsonl

    if format != "jsonl":
        typer.echo(f"unsupported format {format!r}: only jsonl", err=True)
        raise typer.Exit(2)
    try:
        lo, hi = parse_time("since", since), parse_time("until", until)
    except BadRequest as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(2) from exc

    async def run(audit: Any) -> dict[str, int]:
        if output is None:
            return await export_jsonl(audit, sys.stdout.buffer, since=lo, until=hi)
        with output.open("wb") as out:
            return await export_jsonl(audit, out, since=lo, until=hi)

    counts = _with_audit(config, run, public_key, need_keys=False)
    typer.echo(
        f"exported {counts['records']} records, {counts['checkpoints']} checkpoints", err=True
    )


@app.command("public-key")
def public_key_cmd(config: ConfigOption = None) -> None:
    """Print the public key of the checkpoints (PEM), for verifying exports elsewhere."""
    from meshgate.governance.signing import find_signer

    settings = settings_or_exit(config)
    signer = find_signer(settings.audit, settings.data_dir)
    if signer is None:
        typer.echo(f"no audit signing key in settings or {settings.data_dir}", err=True)
        raise typer.Exit(2)
    typer.echo(signer.describe()["pem"], nl=False)
