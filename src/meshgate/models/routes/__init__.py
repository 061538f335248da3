"""HTTP routes of the model services: OpenAI-compatible, V2, registry, feedback."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.core.routing import HotRoute


def routers() -> list[APIRouter]:
    from meshgate.models.routes import anthropic, completions, openai, registry, responses, v2

    return [
        openai.router,
        anthropic.router,
        responses.router,
        completions.router,
        v2.router,
        registry.router,
    ]


def hot_routes() -> list[HotRoute]:
    from meshgate.models.routes import anthropic, completions, openai, responses, v2

    return [*openai.HOT, *anthropic.HOT, *responses.HOT, *completions.HOT, *v2.HOT]
