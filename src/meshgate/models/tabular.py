"""Tensor inference over the Open Inference Protocol (V2): classifiers, regressors, any model
that takes and returns named tensors."""

from __future__ import annotations

import time
from typing import Any

import orjson

from meshgate.errors import BadRequest, ValidationFailed
from meshgate.models import enrichment
from meshgate.models.expectations import violations
from meshgate.models.inference import Caller, Inference, Served, require_task
from meshgate.models.predictions import Prediction, digest, jsonable, new_prediction_id
from meshgate.models.providers.base import Call, TensorProvider, Tensors
from meshgate.models.runtime import ModelRuntime, VersionRuntime
from meshgate.models.tensors import InferRequest, encode_response, parse_request, validate

TABULAR = ("classification", "regression")
TENSOR_KINDS = frozenset({"v2", "onnx", "sklearn", "python"})


class TabularFlow:
    def __init__(self, inference: Inference):
        self.inference = inference
        self.context = inference.context

    async def infer(
        self, name: str, body: bytes, header_length: int | None, caller: Caller, *, versioned: bool
    ) -> Served:
        rt = await self.inference.runtime(caller, name)
        require_task(rt, TABULAR, "the V2 infer route")
        chain = self.inference.chain(rt, caller, explicit_any=versioned)
        request = parse_request(body, header_length)
        validate(request, rt.versions[chain[0]].signature)
        inputs = dict(request.inputs)
        expected = rt.versions[chain[0]].spec.metadata.get("expectations")
        violated = check_expectations(expected, inputs) if expected else []
        context_fields: list[str] = []
        if needs_context(rt, chain[0], inputs):
            bundle = await enrichment.resolve(
                self.context,
                tenant=caller.tenant,
                model=rt.name,
                registered=rt.allow,
                user_id=caller.user_id,
                session_id=caller.session_id,
            )
            inputs.update(
                enrichment.context_inputs(rt.versions[chain[0]].signature, inputs, bundle)
            )
            context_fields = [
                t.from_context
                for t in rt.versions[chain[0]].signature.inputs
                if t.from_context and t.name not in request.inputs
            ]
        # Never the caller's request id: callers reuse ids, and an event id is stored once.
        prediction_id = new_prediction_id()
        started = time.perf_counter()
        version, outputs = await self.inference.attempt(
            rt,
            chain,
            caller,
            lambda v, c: tensor_provider(v).infer(inputs, c),
            prediction_id=prediction_id,
            body=body,
        )
        outputs = pick_outputs(outputs, request)
        latency = (time.perf_counter() - started) * 1000
        logged_inputs = jsonable(inputs)
        inputs_hash = digest(orjson.dumps(logged_inputs))
        prediction = Prediction(
            prediction_id=prediction_id,
            tenant=caller.tenant,
            model=rt.name,
            version=version.version,
            task=rt.task,
            logging=rt.logging,
            inputs_hash=inputs_hash,
            inputs=logged_inputs,
            outputs=jsonable(outputs),
            latency_ms=latency,
            trace_id=caller.trace.trace_id if caller.trace is not None else None,
            user_id=caller.user_id,
            session_id=caller.session_id,
            context_fields=context_fields,
            fallback_from=chain[0] if version.version != chain[0] else None,
            key_id=caller.key_id,
        )
        if violated:
            prediction.extra["violations"] = violated
        await self.inference.record(prediction)
        binary = request.binary_outputs | (set(outputs) if request.binary_default else set())
        served = Served(
            version.version,
            prediction_id,
            encode_response(
                rt.name, version.version, request.request_id or prediction_id, outputs, binary
            ),
        )
        if violated and expected and expected.get("action") == "warn":
            served.validation = violated
        self.inference.after_response(served, rt, caller, shadow_work(inputs, inputs_hash))
        return served


def check_expectations(expected: dict[str, Any], inputs: Tensors) -> list[str]:
    """The violations of the version's input expectations; raises when its action blocks."""
    found = violations(expected, inputs)
    if found and expected.get("action") == "block":
        raise ValidationFailed(
            "the inputs are outside what this version was trained on: " + "; ".join(found),
            param="inputs",
        )
    return found


def needs_context(rt: ModelRuntime, version: str, inputs: Tensors) -> bool:
    signature = rt.versions[version].signature
    return any(t.from_context and t.name not in inputs for t in signature.inputs)


def pick_outputs(outputs: Tensors, request: InferRequest) -> Tensors:
    if request.outputs is None:
        return outputs
    missing = [n for n in request.outputs if n not in outputs]
    if missing:
        raise BadRequest(
            f"unknown output {missing[0]!r}; this model gives {', '.join(sorted(outputs))}"
        )
    return {n: outputs[n] for n in request.outputs}


def tensor_provider(version: VersionRuntime) -> TensorProvider:
    p = version.provider
    if p.kind not in TENSOR_KINDS:
        raise BadRequest(f"version {version.version} of {version.model} takes no tensors")
    return p  # type: ignore[return-value]


def shadow_work(inputs: Tensors, inputs_hash: str):  # type: ignore[no-untyped-def]
    async def work(version: VersionRuntime, call: Call) -> Prediction:
        started = time.perf_counter()
        outputs = await tensor_provider(version).infer(inputs, call)
        return Prediction(
            prediction_id=new_prediction_id(),
            tenant="",
            model=version.model,
            version=version.version,
            task="",
            logging=None,  # type: ignore[arg-type]
            inputs_hash=inputs_hash,
            inputs=jsonable(inputs),
            outputs=jsonable(outputs),
            latency_ms=(time.perf_counter() - started) * 1000,
            trace_id=None,
            user_id=None,
        )

    return work
