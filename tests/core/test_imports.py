"""The layering holds: domains never reach up into the gateway, the app or the CLI, and the
shared core depends on no domain."""

from __future__ import annotations

import ast
from pathlib import Path

import meshgate

SRC = Path(meshgate.__file__).parent
DOMAINS = (
    "auth",
    "context",
    "events",
    "governance",
    "limits",
    "models",
    "monitoring",
    "sql",
    "training",
)
ABOVE_DOMAINS = ("meshgate.app", "meshgate.cli", "meshgate.gateway")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function, relative ones resolved."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in sorted(imports_of(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    return bad


def test_no_domain_module_imports_the_app_the_cli_or_the_gateway() -> None:
    bad = [line for domain in DOMAINS for line in offending(domain, ABOVE_DOMAINS)]
    assert bad == []


def test_the_core_depends_on_no_domain() -> None:
    domains = tuple(f"meshgate.{d}" for d in DOMAINS if d != "auth")
    assert offending("core", ABOVE_DOMAINS + domains) == []


def test_the_check_sees_imports_inside_functions_and_relative_ones() -> None:
    found = imports_of(SRC / "cli" / "__init__.py")
    assert "meshgate.foundation.prepare" in found  # imported inside ``serve``
    assert "meshgate.cli.common" in found
