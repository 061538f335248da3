"""A Python function ``pkg.mod:fn`` as a model. Declared in the config file only: the API
refuses this provider, since importing a name from a request would run a caller's code."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from meshgate.models.providers.base import Call, Tensors


def resolve(entrypoint: str) -> Callable[..., Any]:
    module_name, _, attr = entrypoint.partition(":")
    function = getattr(importlib.import_module(module_name), attr)
    if not callable(function):
        raise TypeError(f"{entrypoint} is not callable")
    return function  # type: ignore[no-any-return]


class PythonModel:
    kind = "python"

    def __init__(self, entrypoint: str):
        self.entrypoint = entrypoint
        self.function: Callable[..., Any] | None = None

    async def start(self) -> None:
        self.function = resolve(self.entrypoint)

    async def close(self) -> None:
        self.function = None

    async def infer(self, inputs: Tensors, call: Call) -> Tensors:
        assert self.function is not None
        if inspect.iscoroutinefunction(self.function):
            result = await self.function(inputs)
        else:
            # A plain function may block (I/O, heavy compute): never on the event loop.
            result = await asyncio.to_thread(self.function, inputs)
        return {name: np.asarray(value) for name, value in dict(result).items()}
