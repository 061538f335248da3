"""How routes reach services: ``service_of(request, ContextService)``.

The composition root registers every service it built with :func:`provide`; a route asks for
the one it needs by its class and gets it typed. This is the only way routes reach services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from fastapi import Request
from starlette.applications import Starlette

T = TypeVar("T")


def provide(
    app: Starlette, services: Iterable[object], ports: dict[type[Any], object] | None = None
) -> None:
    """Make ``services`` reachable from routes by their class, and each of ``ports`` by the
    port (a Protocol) it is registered under."""
    registry: dict[type[Any], object] = {type(s): s for s in services}
    registry.update(ports or {})
    app.state.registry = registry


def service_of(request: Request, kind: type[T]) -> T:
    """The service (or port) of class ``kind`` the composition root built."""
    return cast(T, request.app.state.registry[kind])


def port_of(request: Request, port: Callable[..., T]) -> T:
    """The implementation registered under ``port`` (a Protocol class). ``type[T]`` refuses
    a Protocol, so the port is taken by its class object typed as a constructor of ``T``."""
    return cast(T, request.app.state.registry[port])
