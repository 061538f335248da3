"""The economics gate: what the chat flow asks before and after each upstream call.

Before: the model's guardrails on the prompt (block, redact, log), and its price. After: the
guardrails on the answer, the redacted values put back, and the call's usage and cost noted
on its prediction. Every decision is a
``meshgate.guardrail.triggered`` event and a metric, holding counts, never the data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter

from meshgate.economics.guardrails import Decision, GuardrailBlocked, Pipeline, Redactions
from meshgate.economics.policies import PolicyStore
from meshgate.economics.prices import Price, PriceBook
from meshgate.economics.streams import StreamWatch
from meshgate.economics.usage import estimate, note_spend, usage_of, usage_of_body
from meshgate.models.gate import Admission
from meshgate.models.predictions import Prediction
from meshgate.models.providers.base import JsonReply

if TYPE_CHECKING:
    from meshgate.events.service import EventService
    from meshgate.models.inference import Caller
    from meshgate.models.runtime import ModelRuntime

log = logging.getLogger("meshgate.economics")
TRIGGERED = "meshgate.guardrail.triggered"


class GuardrailReporter:
    """Decisions into the log and the metrics."""

    def __init__(self, events: EventService | None, registry: CollectorRegistry):
        self.events = events
        self.decisions = Counter(
            "meshgate_guardrail_decisions",
            "Guardrail checks that fired, by model, check, action and stage.",
            ["tenant", "model", "check", "action", "stage"],
            registry=registry,
        )

    async def report(
        self, rt: ModelRuntime, caller: Caller, decisions: list[Decision], prediction_id: str
    ) -> None:
        for d in decisions:
            self.decisions.labels(rt.tenant, rt.name, d.check, d.action, d.stage).inc()
            if self.events is None:
                continue
            data: dict[str, Any] = {
                "model": rt.name,
                "check": d.check,
                "action": d.action,
                "stage": d.stage,
                "counts": d.counts,
                "key_id": caller.key_id,
                "prediction_id": prediction_id,
            }
            await self.events.publish(
                TRIGGERED, tenant=rt.tenant, data=data, subject=f"models/{rt.name}"
            )


class CallAdmission:
    """One admitted call: what it changed, and how to finish it."""

    def __init__(
        self,
        gate: EconomicsGate,
        rt: ModelRuntime,
        caller: Caller,
        pipeline: Pipeline,
        redactions: Redactions,
        rewrite: bool,
        ref: str,
        price: Price | None,
        input_guess: int,
    ):
        self.gate = gate
        self.rt = rt
        self.caller = caller
        self.pipeline = pipeline
        self.redactions = redactions
        self.rewrite = rewrite
        self.ref = ref
        self.price = price
        self.input_guess = input_guess
        self.cached: bytes | None = None
        self.watch: StreamWatch | None = None

    async def finish(self, prediction: Prediction, reply: JsonReply) -> JsonReply:
        usage = usage_of_body(reply.body) or estimate(reply.tokens, self.input_guess)
        note_spend(prediction, self.caller.key_id, self.price, usage)
        try:
            decisions = self.pipeline.check_output(reply.text) if self.pipeline.output else []
        except GuardrailBlocked as exc:
            prediction.status, prediction.error = "blocked", exc.detail
            await self.gate.reporter.report(self.rt, self.caller, exc.decisions, self.ref)  # type: ignore[attr-defined]
            raise
        if decisions:
            await self.gate.reporter.report(self.rt, self.caller, decisions, self.ref)
        if self.redactions:
            text = self.redactions.restore(reply.text) if reply.text is not None else None
            reply = JsonReply(self.redactions.restore_json(reply.body), reply.tokens, text)
        return reply

    def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        self.watch = StreamWatch(self.redactions)
        return self.watch.relay(chunks)

    async def finish_stream(self, prediction: Prediction) -> None:
        seen = usage_of(self.watch.usage) if self.watch is not None else None
        usage = seen or estimate(prediction.tokens or 0, self.input_guess)
        note_spend(prediction, self.caller.key_id, self.price, usage)

    async def abandon(self) -> None:
        pass


class EconomicsGate:
    def __init__(self, policies: PolicyStore, prices: PriceBook, reporter: GuardrailReporter):
        self.policies = policies
        self.prices = prices
        self.reporter = reporter

    async def admit(
        self,
        rt: ModelRuntime,
        version: str,
        caller: Caller,
        request: dict[str, Any],
        prediction_id: str,
    ) -> Admission:
        policy = await self.policies.policy(rt.tenant, rt.name)
        upstream_model = getattr(rt.versions[version].provider, "model", None) or rt.name
        price = await self.prices.price(rt.tenant, rt.name, version, upstream_model)
        pipeline = policy.guardrails
        redactions, rewrite = Redactions(), False
        if pipeline:
            try:
                redactions, decisions, rewrite = pipeline.check_input(request)
            except GuardrailBlocked as exc:
                await self.reporter.report(rt, caller, exc.decisions, prediction_id)  # type: ignore[attr-defined]
                raise
            if decisions:
                await self.reporter.report(rt, caller, decisions, prediction_id)
        # About four bytes per token: the prompt's size when the upstream tells no usage.
        guess = len(orjson.dumps(request.get("messages"))) // 4 if request.get("stream") else 0
        return CallAdmission(
            self, rt, caller, pipeline, redactions, rewrite, prediction_id, price, guess
        )
