"""HTTP routes of the economics module."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from meshgate.economics.routes import budgets, guardrails, limits, spend

    return [limits.router, guardrails.router, spend.router, budgets.router]
