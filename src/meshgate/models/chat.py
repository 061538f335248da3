"""OpenAI-compatible chat and embeddings: the product's hot path, kept lean.

Only what the gateway needs is read from the body (model, user, stream, and the messages when
context is added); the body goes upstream as sent otherwise, and the answer comes back as sent.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import orjson

from meshgate.errors import BadRequest, MeshgateError, UpstreamError
from meshgate.models import enrichment
from meshgate.models.gate import Admission
from meshgate.models.inference import Caller, Inference, Relay, Served, require_task
from meshgate.models.predictions import Prediction, digest, new_prediction_id
from meshgate.models.providers.base import Call, ChatProvider, JsonReply
from meshgate.models.registry import default_logging
from meshgate.models.runtime import ModelRuntime, VersionRuntime
from meshgate.models.translate.checks import CHAT_INTEGERS, CHAT_NUMBERS, check_numbers, check_tools
from meshgate.strictjson import parse_object

CHAT_KINDS = frozenset({"openai", "anthropic", "gemini", "azure_openai", "bedrock", "deployments"})


def parse_body(body: bytes, content_type: str | None = None) -> dict[str, Any]:
    request = parse_object(body, content_type)
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string", param="model")
    user = request.get("user")
    if user is not None and not isinstance(user, str):
        raise BadRequest("'user' must be a string", param="user")
    return request


def check_messages(request: dict[str, Any]) -> None:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", param="messages")
    stream = request.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", param="stream")
    check_numbers(request, CHAT_INTEGERS, CHAT_NUMBERS)
    if "tools" in request:
        check_tools(request)


def last_user_turn(request: dict[str, Any]) -> str | None:
    for message in reversed(request["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    return None


class ChatFlow:
    def __init__(self, inference: Inference):
        self.inference = inference
        self.context = inference.context

    async def chat(self, body: bytes, request: dict[str, Any], caller: Caller) -> Served:
        check_messages(request)
        chosen = await self.inference.chosen_model(caller, request["model"])
        if chosen != request["model"]:
            # A flag chose the model: the body names it, as if the caller had.
            request["model"] = chosen
            body = orjson.dumps(request)
        rt = await self.inference.runtime(caller, chosen)
        require_task(rt, ("chat",), "/v1/chat/completions")
        chain = self.inference.chain(rt, caller)
        user_turn = last_user_turn(request) if caller.session_id else None
        bundle = await enrichment.resolve(
            self.context,
            tenant=caller.tenant,
            model=rt.name,
            registered=rt.allow,
            user_id=caller.user_id,
            session_id=caller.session_id,
        )
        rewrite = enrichment.with_system_message(request, bundle)
        context_fields = enrichment.fields_of(bundle) if rewrite else []
        prediction_id = new_prediction_id()
        admission = await self.inference.gate.admit(
            rt, chain[0], caller, request, prediction_id, functools.partial(self._embed, caller)
        )
        rewrite = rewrite or admission.rewrite
        started = time.perf_counter()
        if admission.cached is not None:
            return await self._cached(
                rt, chain[0], caller, prediction_id, body, request, admission, started
            )

        if request.get("stream") is True:
            try:
                version, stream = await self.inference.attempt(
                    rt,
                    chain,
                    caller,
                    prediction_id=prediction_id,
                    body=body,
                    work=lambda v, c: provider(v).chat_stream(body, request, _w(c, rewrite)),
                )
            except MeshgateError:
                await admission.abandon()
                raise
            served = Served(version.version, prediction_id, None)

            def finished(outcome: str) -> None:
                stream.close()
                prediction = self._prediction(
                    rt, version, caller, prediction_id, body, request, stream.text, started
                )
                # A client leaving early is its choice, not a failure of the model.
                prediction.status = "error" if outcome == "error" else "ok"
                prediction.tokens, prediction.extra["stream"] = stream.tokens, outcome
                prediction.context_fields = context_fields
                prediction.fallback_from = chain[0] if version.version != chain[0] else None
                shadows = self._shadow_work(body, request) if rt.shadow else None
                self.inference.after_response(served, rt, caller, shadows, stream.tokens)
                self.inference.service.spawn(
                    self._close_stream(served, prediction, user_turn, outcome == "ok", admission)
                )

            served.value = Relay(admission.relay(stream.chunks()), finished)
            return served

        try:
            version, reply = await self.inference.attempt(
                rt,
                chain,
                caller,
                lambda v, c: provider(v).chat(body, request, _w(c, rewrite)),
                prediction_id=prediction_id,
                body=body,
            )
        except MeshgateError:
            await admission.abandon()
            raise
        prediction = self._prediction(
            rt, version, caller, prediction_id, body, request, reply.text, started
        )
        prediction.tokens, prediction.context_fields = reply.tokens, context_fields
        prediction.fallback_from = chain[0] if version.version != chain[0] else None
        try:
            reply = await admission.finish(prediction, reply)
        finally:
            await self.inference.record(prediction)
        await self._append_turns(caller, prediction, user_turn, reply.text)
        served = Served(version.version, prediction_id, reply, cache=admission.cache)
        shadows = self._shadow_work(body, request) if rt.shadow else None
        self.inference.after_response(served, rt, caller, shadows, reply.tokens)
        return served

    async def embeddings(self, body: bytes, request: dict[str, Any], caller: Caller) -> Served:
        if "input" not in request:
            raise BadRequest("'input' is required", param="input")
        rt = await self.inference.runtime(caller, request["model"])
        require_task(rt, ("embedding",), "/v1/embeddings")
        chain = self.inference.chain(rt, caller)
        prediction_id = new_prediction_id()
        started = time.perf_counter()
        version, reply = await self.inference.attempt(
            rt,
            chain,
            caller,
            lambda v, c: provider(v).embed(body, request, c),
            prediction_id=prediction_id,
            body=body,
        )
        prediction = self._prediction(
            rt, version, caller, prediction_id, body, request, None, started
        )
        prediction.tokens = reply.tokens
        prediction.outputs = {"bytes": len(reply.body)}
        await self.inference.record(prediction)
        served = Served(version.version, prediction_id, reply)
        self.inference.after_response(served, rt, caller, None, reply.tokens)
        return served

    async def _embed(self, caller: Caller, model: str, text: str) -> list[float]:
        """An embedding the platform asks for (the semantic cache): a prediction of ``model``
        like any other, charged to the caller, whatever models the caller's key may call."""
        request = {"model": model, "input": text}
        internal = dataclasses.replace(caller, version=None, models=None)
        served = await self.embeddings(orjson.dumps(request), request, internal)
        for step in served.after:
            await step()
        try:
            vector = orjson.loads(served.value.body)["data"][0]["embedding"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(f"model {model!r} answered no embedding") from exc
        if not isinstance(vector, list):
            raise UpstreamError(f"model {model!r} answered no embedding")
        return vector

    # --- helpers -----------------------------------------------------------------------

    def _prediction(
        self,
        rt: ModelRuntime,
        version: VersionRuntime,
        caller: Caller,
        prediction_id: str,
        body: bytes,
        request: dict[str, Any],
        text: str | None,
        started: float,
    ) -> Prediction:
        return Prediction(
            prediction_id=prediction_id,
            tenant=caller.tenant,
            model=rt.name,
            version=version.version,
            task=rt.task,
            logging=rt.logging,
            inputs_hash=digest(body),
            inputs=request.get("messages", request.get("input")),
            outputs=text,
            latency_ms=(time.perf_counter() - started) * 1000,
            trace_id=caller.trace.trace_id if caller.trace is not None else None,
            user_id=caller.user_id,
            session_id=caller.session_id,
            key_id=caller.key_id,
        )

    def _shadow_work(self, body: bytes, request: dict[str, Any]) -> Any:
        shadow_request = {**request, "stream": False}
        shadow_request.pop("stream_options", None)

        async def work(version: VersionRuntime, call: Call) -> Prediction:
            started = time.perf_counter()
            reply = await provider(version).chat(body, shadow_request, _w(call, True))
            return Prediction(
                prediction_id=new_prediction_id(),
                tenant="",
                model=version.model,
                version=version.version,
                task="chat",
                logging=default_logging("chat"),
                inputs_hash=digest(body),
                inputs=request.get("messages"),
                outputs=reply.text,
                latency_ms=(time.perf_counter() - started) * 1000,
                trace_id=None,
                user_id=None,
                tokens=reply.tokens,
            )

        return work

    async def _cached(
        self,
        rt: ModelRuntime,
        version: str,
        caller: Caller,
        prediction_id: str,
        body: bytes,
        request: dict[str, Any],
        admission: Admission,
        started: float,
    ) -> Served:
        """A stored answer: no upstream call, still a prediction event (marked, charged 0)."""
        prediction = self._prediction(
            rt, rt.versions[version], caller, prediction_id, body, request, None, started
        )
        prediction.tokens = 0
        prediction.extra["cache"] = "hit"
        try:
            reply = await admission.finish(prediction, JsonReply(admission.cached or b"", 0))
        finally:
            await self.inference.record(prediction)
        return Served(version, prediction_id, reply, cache="hit")

    async def _close_stream(
        self,
        served: Served,
        prediction: Prediction,
        user_turn: str | None,
        complete: bool,
        admission: Admission,
    ) -> None:
        await admission.finish_stream(prediction)
        await self.inference.record(prediction)
        if complete:
            await self._append_turns_for(prediction, user_turn)
        await served.run_after()

    async def _append_turns(
        self, caller: Caller, prediction: Prediction, user_turn: str | None, reply: str | None
    ) -> None:
        if caller.session_id is None or user_turn is None:
            return
        meta = {
            "model": prediction.model,
            "version": prediction.version,
            "prediction_id": prediction.prediction_id,
        }
        turns = [("user", user_turn, {}), ("assistant", reply or "", meta)]
        await self.context.append_interactions(
            tenant=caller.tenant, session_id=caller.session_id, turns=turns
        )

    async def _append_turns_for(self, prediction: Prediction, user_turn: str | None) -> None:
        caller = Caller(prediction.tenant, "", False, prediction.user_id, prediction.session_id)
        await self._append_turns(caller, prediction, user_turn, prediction.outputs)


def provider(version: VersionRuntime) -> ChatProvider:
    p = version.provider
    if p.kind not in CHAT_KINDS:
        raise BadRequest(
            f"version {version.version} of {version.model} is not a chat model", param="model"
        )
    return p  # type: ignore[return-value]


def _w(call: Call, rewrite: bool) -> Call:
    call.rewrite = rewrite
    return call


__all__ = ["ChatFlow", "JsonReply", "parse_body"]
