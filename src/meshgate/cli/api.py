"""What every ``meshgate`` command shares: where the server is, how errors and output look.

Commands speak to a running server (``MESHGATE_URL`` and a key, or a profile); only
``meshgate serve`` and the ``--offline`` checks open the stores, and those only when the data
they name already exists. Imports stay inside functions: ``meshgate --help`` must be quick.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from meshgate.client import Client
    from meshgate.config import Settings

PROFILES_ENV = "MESHGATE_PROFILES"
PROFILE_ENV = "MESHGATE_PROFILE"
HOW_TO_CONNECT = (
    "set MESHGATE_URL (e.g. http://127.0.0.1:8080) and MESHGATE_API_KEY (or MESHGATE_ADMIN_KEY), "
    "or a profile of ~/.config/meshgate/profiles.yaml (MESHGATE_PROFILE names one)"
)

# Plain help and tracebacks: rich's help renderer alone costs about half a second to import.
TYPER: dict[str, Any] = {
    "no_args_is_help": True,
    "rich_markup_mode": None,
    "pretty_exceptions_enable": False,
}


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def profiles_file() -> Path:
    named = os.environ.get(PROFILES_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "meshgate" / "profiles.yaml"


def read_profile(name: str, *, missing_ok: bool = False) -> dict[str, str]:
    """One profile of the profiles file: ``{url: ..., api_key: ...}``."""
    import yaml

    path = profiles_file()
    try:
        profiles = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        fail(f"profile {name!r}: cannot read {path}: {exc.strerror}", 2)
    except yaml.YAMLError as exc:
        fail(f"profile {name!r}: {path} is not valid YAML: {exc}", 2)
    profile = profiles.get(name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict):
        if missing_ok:
            return {}
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
        fail(f"no profile {name!r} in {path}" + (f" (it has: {known})" if known else ""), 2)
    return {k: str(v) for k, v in profile.items() if v is not None}


def server_settings() -> tuple[str, str]:
    """(url, key) from the environment, then the profile; else stop with what to set."""
    url = os.environ.get("MESHGATE_URL")
    key = os.environ.get("MESHGATE_API_KEY") or os.environ.get("MESHGATE_ADMIN_KEY")
    profile_name = os.environ.get(PROFILE_ENV)
    profile: dict[str, str] = {}
    if profile_name:
        profile = read_profile(profile_name)
    elif not (url and key) and profiles_file().exists():
        profile = read_profile("default", missing_ok=True)
    url = url or profile.get("url")
    key = key or profile.get("api_key")
    if not url:
        fail(f"no server to talk to: {HOW_TO_CONNECT}", 2)
    if not key:
        fail(f"no API key for {url}: {HOW_TO_CONNECT}", 2)
    return url, key


@contextmanager
def api() -> Iterator[Client]:
    """A client of the configured server; API errors end the command with their detail."""
    from meshgate.client import APIConnectionError, APIError, Client

    url, key = server_settings()
    try:
        with Client(url, key) as client:
            yield client
    except APIError as exc:
        fail(f"{exc.status} {exc.title}: {exc.detail}".strip(), 1)
    except APIConnectionError as exc:
        fail(f"cannot reach the server at {url} ({exc}); is `meshgate serve` running?", 1)


def print_json(value: Any) -> None:
    """One line of JSON (``"key": value`` spacing), easy to pipe into jq or grep."""
    import json

    from pydantic import BaseModel

    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        raise TypeError(f"not JSON: {type(obj).__name__}")

    sys.stdout.write(json.dumps(value, default=default) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def offline_settings(config: str | None) -> Settings:
    """Settings for a command that opens the stores: the data must already exist.

    Run from the wrong folder, an offline command would otherwise create an empty store (and
    a new key pepper) beside the real one.
    """
    from meshgate.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc), 2)
    if settings.database_url is None and not (Path(settings.data_dir) / "meshgate.db").exists():
        fail(
            f"no Meshgate data in {Path(settings.data_dir).resolve()}: set MESHGATE_DATA_DIR "
            "to the server's data directory (or MESHGATE_DATABASE_URL, or --config)",
            2,
        )
    return settings
