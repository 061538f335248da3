"""HTTP routes of the economics module."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from meshgate.economics.routes import guardrails, limits, spend

    return [limits.router, guardrails.router, spend.router]
