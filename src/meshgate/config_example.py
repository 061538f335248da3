"""``meshgate config example``: every setting with its default and its description.

Generated from the settings model itself, so the example cannot drift from what is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from meshgate.config import Settings


def _value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _value(v) for k, v in value}
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return value


def _lines(model: BaseModel, indent: int) -> list[str]:
    pad = "  " * indent
    out: list[str] = []
    for name, field in type(model).model_fields.items():
        if field.description:
            out.append(f"{pad}# {field.description}")
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out.append(f"{pad}{name}:")
            out += _lines(value, indent + 1)
            continue
        dumped = yaml.safe_dump({name: _value(value)}, default_flow_style=True, width=10_000)
        out.append(pad + dumped.strip().removeprefix("{").removesuffix("}"))
    return out


def example_yaml() -> str:
    header = [
        "# meshgate.yaml: every setting at its default. MESHGATE_* environment variables win;",
        "# nested keys use a double underscore (MESHGATE_LIMITS__KEY_RPM=1200).",
    ]
    return "\n".join(header + _lines(Settings(), 0)) + "\n"
