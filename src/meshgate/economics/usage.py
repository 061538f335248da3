"""Tokens of one call, read from the upstream's answer, and their cost on the prediction.

``prediction.made`` carries ``key_id``, ``usage`` (input, output and cached input tokens) and,
for a priced version, ``cost`` (amount and currency): the spend consumer reads them from the
log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.economics.prices import Price
from meshgate.models.predictions import Prediction


@dataclass(frozen=True, slots=True)
class Usage:
    input: int
    output: int
    cached: int = 0
    estimated: bool = False


def usage_of(usage: Any) -> Usage | None:
    """OpenAI's ``usage`` object (chat or embeddings) as :class:`Usage`."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    try:
        return Usage(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int(cached or 0),
        )
    except (TypeError, ValueError):
        return None


def usage_of_body(body: bytes) -> Usage | None:
    if b'"usage"' not in body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return usage_of(data.get("usage")) if isinstance(data, dict) else None


def estimate(total_tokens: int, input_guess: int) -> Usage:
    """Without usage from the upstream: the prompt guessed from its size, the rest output."""
    input_tokens = min(input_guess, total_tokens) if total_tokens else input_guess
    return Usage(input_tokens, max(total_tokens - input_tokens, 0), 0, True)


def note_spend(prediction: Prediction, key_id: str, price: Price | None, usage: Usage) -> float:
    """Puts the caller's key, the usage and the cost on the prediction; returns the cost."""
    extra = prediction.extra
    extra["key_id"] = key_id
    extra["usage"] = {
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cached_tokens": usage.cached,
        **({"estimated": True} if usage.estimated else {}),
    }
    if price is None:
        return 0.0
    amount = price.cost(usage.input, usage.output, usage.cached)
    extra["cost"] = {"amount": round(amount, 10), "currency": price.currency}
    return amount
