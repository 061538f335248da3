"""HTTP routes of the model services: OpenAI-compatible, V2, registry, feedback."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.core.routing import HotRoute


def routers() -> list[APIRouter]:
    from meshgate.models.routes import anthropic, openai, registry, v2

    return [openai.router, anthropic.router, v2.router, registry.router]


def hot_routes() -> list[HotRoute]:
    from meshgate.models.routes import anthropic, openai, v2

    return [*openai.HOT, *anthropic.HOT, *v2.HOT]
