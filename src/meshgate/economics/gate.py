"""The economics gate: what the chat flow asks before and after each upstream call.

Before: the model's guardrails on the prompt (block, redact, log), and its price. After: the
guardrails on the answer, the redacted values put back, and the call's usage and cost noted
on its prediction. Every decision is a
``meshgate.guardrail.triggered`` event and a metric, holding counts, never the data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter

from meshgate.economics.budgets import (
    Budget,
    BudgetBook,
    BudgetCurrencyMismatch,
    BudgetExceeded,
    utc_now,
)
from meshgate.economics.cache import AnswerCache, CacheSet, cache_key, holders_of
from meshgate.economics.counters import Counters, Line
from meshgate.economics.guardrails import Decision, GuardrailBlocked, Pipeline, Redactions
from meshgate.economics.policies import PolicyStore
from meshgate.economics.prices import Price, PriceBook
from meshgate.economics.semantic import (
    SemanticIndex,
    Vector,
    answer_key,
    partition_of,
    split_question,
    unit,
)
from meshgate.economics.streams import StreamWatch
from meshgate.economics.usage import Usage, estimate, note_spend, usage_of, usage_of_body
from meshgate.errors import MeshgateError
from meshgate.events.catalogue import (
    BUDGET_THRESHOLD_REACHED,
    GUARDRAIL_TRIGGERED,
    BudgetThresholdReached,
    GuardrailTriggered,
)
from meshgate.models.gate import Admission, Embed
from meshgate.models.predictions import Prediction
from meshgate.models.providers.base import JsonReply

if TYPE_CHECKING:
    from meshgate.events.ports import EventPublisher
    from meshgate.models.inference import Caller
    from meshgate.models.runtime import ModelRuntime

log = logging.getLogger("meshgate.economics")
OUTPUT_RESERVE = 1024
"""Output tokens reserved on budgets for a call that sets no max_tokens."""


class GuardrailReporter:
    """Decisions into the log and the metrics."""

    def __init__(self, events: EventPublisher | None, registry: CollectorRegistry):
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
            payload = GuardrailTriggered(
                model=rt.name,
                check=d.check,
                action=d.action,
                stage=d.stage,
                counts=d.counts,
                key_id=caller.key_id,
                prediction_id=prediction_id,
            )
            await self.events.publish(
                GUARDRAIL_TRIGGERED.name,
                tenant=rt.tenant,
                data=GUARDRAIL_TRIGGERED.data(payload),
                subject=f"models/{rt.name}",
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
        hold: Hold | None = None,
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
        self.hold = hold
        self.cached: bytes | None = None
        self.cache: str | None = None
        self.cache_key: str | None = None
        self.cache_ttl = 0
        self.question: tuple[str, Vector] | None = None
        """Semantic mode: the request's partition and its question's embedding."""
        self.similarity: float | None = None
        self.watch: StreamWatch | None = None

    async def finish(self, prediction: Prediction, reply: JsonReply) -> JsonReply:
        if self.cached is not None:  # a hit: nothing was spent, the answer was checked before
            note_spend(prediction, self.caller.key_id, None, Usage(0, 0))
            if self.similarity is not None:
                prediction.extra["cache_similarity"] = round(self.similarity, 4)
            return self._restored(reply)
        seen = usage_of(reply.usage) if reply.usage is not None else usage_of_body(reply.body)
        usage = seen or estimate(reply.tokens, self.input_guess)
        cost = note_spend(prediction, self.caller.key_id, self.price, usage)
        await self._settle(cost)
        try:
            decisions = self.pipeline.check_output(reply.text) if self.pipeline.output else []
        except GuardrailBlocked as exc:
            prediction.status, prediction.error = "blocked", exc.detail
            await self.gate.reporter.report(self.rt, self.caller, exc.decisions, self.ref)  # type: ignore[attr-defined]
            raise
        if decisions:
            await self.gate.reporter.report(self.rt, self.caller, decisions, self.ref)
        if prediction.status == "ok" and (self.cache_key is not None or self.question is not None):
            # Stored with its placeholders: each hit puts back its own caller's values. Filed
            # under the caller's user and session: erasing them deletes it.
            holders = holders_of(self.rt.tenant, self.caller.user_id, self.caller.session_id)
            if self.cache_key is not None:
                await self.gate.answers.put(self.cache_key, reply.body, self.cache_ttl, holders)
            elif self.question is not None:
                partition, vector = self.question
                entry = answer_key(partition, self.ref)
                await self.gate.answers.put(entry, reply.body, self.cache_ttl, holders)
                await self.gate.questions.add(partition, self.ref, vector, self.cache_ttl)
        return self._restored(reply)

    def _restored(self, reply: JsonReply) -> JsonReply:
        if not self.redactions:
            return reply
        text = self.redactions.restore(reply.text) if reply.text is not None else None
        return JsonReply(self.redactions.restore_json(reply.body), reply.tokens, text)

    def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        self.watch = StreamWatch(self.redactions)
        return self.watch.relay(chunks)

    async def finish_stream(self, prediction: Prediction) -> None:
        seen = usage_of(self.watch.usage) if self.watch is not None else None
        usage = seen or estimate(prediction.tokens or 0, self.input_guess)
        await self._settle(note_spend(prediction, self.caller.key_id, self.price, usage))

    async def abandon(self) -> None:
        await self._settle(0.0)

    async def _settle(self, cost: float) -> None:
        hold, self.hold = self.hold, None
        if hold is not None:
            await self.gate.settle(self.rt, hold, cost)


def in_currency(budgets: list[Budget], price: Price | None, model: str) -> list[Budget]:
    """The budgets a call priced by ``price`` counts against: amounts in two currencies are
    never added. A hard budget in another currency refuses the call; a soft-only one is left
    out of it."""
    if price is None:  # an unpriced call costs nothing, in any currency
        return budgets
    other = [b for b in budgets if b.currency != price.currency]
    if not other:
        return budgets
    hard = next((b for b in other if b.hard), None)
    if hard is not None:
        raise BudgetCurrencyMismatch(
            f"the {hard.scope} budget is in {hard.currency} but {model} is priced in"
            f" {price.currency}; amounts in two currencies are never added: set the budget in"
            f" {price.currency} or price the model in {hard.currency}",
            code="budget_currency_mismatch",
            scope=hard.scope,
        )
    return [b for b in budgets if b.currency == price.currency]


@dataclass(slots=True)
class Hold:
    """What a call reserved on its budgets."""

    lines: list[Line]
    estimate: float


class EconomicsGate:
    def __init__(
        self,
        policies: PolicyStore,
        prices: PriceBook,
        budgets: BudgetBook,
        counters: Counters,
        answers: AnswerCache,
        questions: SemanticIndex,
        reporter: GuardrailReporter,
        events: EventPublisher | None,
    ):
        self.policies = policies
        self.prices = prices
        self.budgets = budgets
        self.counters = counters
        self.answers = answers
        self.questions = questions
        self.reporter = reporter
        self.events = events

    async def admit(
        self,
        rt: ModelRuntime,
        version: str,
        caller: Caller,
        request: dict[str, Any],
        prediction_id: str,
        embed: Embed,
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
        admission = CallAdmission(
            self, rt, caller, pipeline, redactions, rewrite, prediction_id, price, 0
        )
        if policy.cache is not None and not request.get("stream"):
            admission.cache, admission.cache_ttl = "miss", policy.cache.ttl_seconds
            question = split_question(request) if policy.cache.mode == "semantic" else None
            if question is not None:
                await self._look_up_question(admission, policy.cache, version, question, embed)
            else:
                admission.cache_key = cache_key(rt.tenant, rt.name, version, request)
                if not caller.no_cache:
                    admission.cached = await self.answers.get(admission.cache_key)
            if admission.cached is not None:
                admission.cache = "hit"
                return admission
        budgets = await self.budgets.applying(rt.tenant, caller.key_id, caller.user_id)
        # About four bytes per token: the prompt's size when the upstream tells no usage.
        guess = 0
        if budgets or request.get("stream"):
            guess = len(orjson.dumps(request.get("messages"))) // 4
        admission.input_guess = guess
        budgets = in_currency(budgets, price, rt.name) if budgets else budgets
        admission.hold = await self._reserve(budgets, price, guess, request) if budgets else None
        return admission

    async def _look_up_question(
        self,
        admission: CallAdmission,
        cache: CacheSet,
        version: str,
        question: tuple[str, dict[str, Any]],
        embed: Embed,
    ) -> None:
        """Semantic mode: the closest stored question of the same partition, if close enough.
        Without an embedding the call goes on uncached: the cache only ever saves work."""
        text, rest = question
        rt = admission.rt
        try:
            vector = unit(await embed(cache.embedding_model or "", text))
        except MeshgateError as exc:
            log.warning("semantic cache of %s: no embedding (%s)", rt.name, exc.detail)
            return
        if vector is None:
            log.warning("semantic cache of %s: the embedding is not a usable vector", rt.name)
            return
        partition = partition_of(rt.tenant, rt.name, version, rest)
        admission.question = (partition, vector)
        if admission.caller.no_cache:
            return
        found = await self.questions.nearest(partition, vector)
        # float32 rounding: the same question may score a hair under 1.0.
        if found is None or found[1] < cache.similarity - 1e-6:
            return
        answer = await self.answers.get(answer_key(partition, found[0]))
        if answer is None:
            await self.questions.forget(partition, found[0])
            return
        admission.cached, admission.similarity = answer, found[1]

    async def _reserve(
        self, budgets: list[Budget], price: Price | None, guess: int, request: dict[str, Any]
    ) -> Hold:
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        output = limit if isinstance(limit, int) and limit > 0 else OUTPUT_RESERVE
        cost = price.cost(guess, output) if price is not None else 0.0
        at = utc_now()
        lines = [b.line(at) for b in budgets]
        refused = await self.counters.reserve(lines, cost)
        if refused is not None:
            budget = budgets[lines.index(refused)]
            raise BudgetExceeded(
                f"the {budget.scope} budget of {budget.amount:g} per {budget.period} is used up",
                code="insufficient_quota",
                scope=budget.scope,
            )
        return Hold(lines, cost)

    async def settle(self, rt: ModelRuntime, hold: Hold, cost: float) -> None:
        """The real cost replaces the estimate; a first crossing of a soft level alerts."""
        try:
            crossed = await self.counters.settle(hold.lines, cost - hold.estimate)
        except Exception:
            log.exception("settling a budget of %s failed", rt.name)
            return
        for line in crossed:
            if self.events is not None:
                scope, subject, period = line.key.split(":", 1)[1].split(":", 2)
                reached = BudgetThresholdReached(
                    scope=scope,
                    id=subject,
                    period=period,
                    amount=line.amount,
                    soft_level=line.soft,
                    level="soft",
                )
                await self.events.publish(
                    BUDGET_THRESHOLD_REACHED.name,
                    tenant=rt.tenant,
                    data=BUDGET_THRESHOLD_REACHED.data(reached),
                    subject=f"budgets/{scope}/{subject}",
                )
