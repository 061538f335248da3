"""JSON's ``true`` is never a number: every integer and number the API documents refuses it.

The operations and their numeric fields come from the app's own ``/openapi.json``, so a new
field is covered the day it is declared; a new operation with one needs a valid body below
(the test says which). Each case sends an otherwise valid body with one number replaced by
``true`` (or ``false``), expects a 4xx naming the field, and finds nothing changed: no audit
record, no event, no upstream call. The same body with its numbers is then accepted once, so
the refusal is the boolean's and not some other mistake in the body.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from meshgate.config import Settings
from tests.conftest import ADMIN_KEY, LOOPBACK, app_client
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

pytestmark = pytest.mark.asyncio(loop_scope="module")

Path = tuple[str, ...]
"""Where a number sits in a body: keys, ``[]`` for every item, ``{}`` for every value."""

CHAT = "chat"
PREDICTION = "p_0123456789abcdef0123"


def valid_bodies(upstream: str) -> dict[tuple[str, str], dict[str, Any]]:
    """An accepted body for each operation with a numeric field, every number in it."""
    openai = {"type": "openai", "base_url": upstream}
    return {
        ("post", "/v1/admin/keys"): {"scopes": ["inference"], "rpm": 10, "tpm": 1000},
        ("patch", "/v1/admin/keys/{key_id}"): {"rpm": 10, "tpm": 1000},
        ("put", "/v1/admin/tenants/{tenant}"): {"rpm": 10, "tpm": 1000},
        ("post", "/v1/subscriptions/{sub_id}/replay"): {"after": 0, "until": 5},
        ("post", "/v1/context/sessions"): {"user_id": "alice", "ttl_seconds": 60},
        ("post", "/v1/messages"): {
            "model": CHAT,
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 3,
        },
        ("post", "/v1/responses"): {
            "model": CHAT,
            "input": "hi",
            "store": False,
            "max_output_tokens": 5,
            "temperature": 0.5,
            "top_p": 0.9,
        },
        ("post", "/v1/completions"): {
            "model": CHAT,
            "prompt": "hi",
            "max_tokens": 5,
            "temperature": 0.5,
        },
        ("post", "/v1/registry/models/{name}/versions"): {
            "version": "v9",
            "provider": {
                "type": "deployments",
                "deployments": [{"name": "a", "provider": openai, "weight": 2, "rpm": 5, "tpm": 9}],
                "cooldown_seconds": 1.5,
            },
            "resilience": {
                "timeout_seconds": 5.0,
                "retries": 1,
                "backoff_seconds": 0.1,
                "breaker": {"failures": 3, "reset_seconds": 2.0},
            },
            "signature": {
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
            },
        },
        ("put", "/v1/registry/models/{name}/traffic"): {"split": {"v1": 100}},
        ("patch", "/v1/registry/models/{name}/traffic"): {"split": {"v1": 100}},
        ("post", "/v1/predictions/{prediction_id}/feedback"): {"score": 0.5},
        ("put", "/v1/registry/models/{name}/guardrails"): {
            "guardrails": [{"check": "max_input", "max_chars": 1000}]
        },
        ("put", "/v1/registry/models/{name}/cache"): {
            "mode": "exact",
            "ttl_seconds": 60,
            "similarity": 0.9,
        },
        ("put", "/v1/registry/models/{name}/versions/{version}/price"): {
            "input_per_mtok": 1.0,
            "output_per_mtok": 2.0,
            "cached_input_per_mtok": 0.5,
        },
        ("put", "/v1/budgets/{budget_scope}/{budget_id}"): {"amount": 10.0, "soft_at": 0.5},
        ("put", "/v1/flags/{flag_key}"): {
            "variants": {"on": True, "off": False},
            "default": "off",
            "fractional": {"on": 50, "off": 50},
        },
        ("post", "/v1/registry/models/{name}/rollouts"): {
            "candidate": "v2",
            "baseline": "v1",
            "steps": [10, 50],
            "interval_seconds": 60.0,
            "min_requests": 10,
            "analysis": {
                "max_error_rate_delta": 0.1,
                "max_p95_ratio": 2.0,
                "min_accuracy_delta": -0.1,
                "max_drift_psi": 0.5,
                "min_agreement": 0.5,
                "alpha": 0.05,
            },
        },
    }


# --- the document ---------------------------------------------------------------------------


class Schema:
    def __init__(self, document: dict[str, Any]):
        self.components = document["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def branches(self, schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
        schema = self.resolve(schema)
        yield schema
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in schema.get(key, []):
                yield from self.branches(branch)

    def is_number(self, schema: dict[str, Any]) -> bool:
        return any(b.get("type") in ("integer", "number") for b in self.branches(schema))

    def numbers(self, schema: dict[str, Any], at: Path = ()) -> Iterator[Path]:
        """Every place ``schema`` declares an integer or a number, a few levels deep."""
        if len(at) > 6:
            return
        for branch in self.branches(schema):
            for name, sub in branch.get("properties", {}).items():
                if self.is_number(sub):
                    yield (*at, name)
                yield from self.numbers(sub, (*at, name))
            for key, mark in (("items", "[]"), ("additionalProperties", "{}")):
                sub = branch.get(key)
                if isinstance(sub, dict):
                    if self.is_number(sub):
                        yield (*at, mark)
                    yield from self.numbers(sub, (*at, mark))


def json_bodies(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield method, path, content["application/json"]["schema"]


def with_boolean(body: Any, at: Path, value: bool) -> Any | None:
    """``body`` with every number at ``at`` replaced by ``value``; None if ``at`` is not in it
    (a top-level field absent from the body is added: the top level is one object)."""
    body = copy.deepcopy(body)

    def put(node: Any, rest: Path, top: bool) -> bool:
        head, tail = rest[0], rest[1:]
        if head in ("[]", "{}"):
            children = list(range(len(node))) if isinstance(node, list) else list(node)
        elif isinstance(node, dict) and (head in node or (top and not tail)):
            children = [head]
        else:
            return False
        changed = False
        for child in children:
            if not tail:
                if child in node and isinstance(node[child], bool):
                    continue  # a boolean already (a flag variant): not a number
                node[child] = value
                changed = True
            elif isinstance(node[child], dict | list):
                changed |= put(node[child], tail, False)
        return changed

    return body if put(body, at, True) else None


# --- the app --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    loop = UpstreamLoop()
    yield loop.fake("booleans")
    loop.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("booleans") / "data",
        admin_key=ADMIN_KEY,
        security={"egress_allow": LOOPBACK},
        # The settling polls are many requests a minute from one key.
        limits={"key_rpm": 10**8, "tenant_rpm": 10**8},
    )
    async with app_client(settings) as client:
        version = {"provider": {"type": "openai", "base_url": upstream.base_url}}
        created = await client.post("/v1/registry/models", json={"name": CHAT, "task": "chat"})
        assert created.status_code == 201, created.text
        for v in ("v1", "v2"):
            answer = await client.post(
                f"/v1/registry/models/{CHAT}/versions", json={"version": v, **version}
            )
            assert answer.status_code == 201, answer.text
        answer = await client.put(
            f"/v1/registry/models/{CHAT}/traffic", json={"split": {"v1": 100}}
        )
        assert answer.status_code == 200, answer.text
        yield client


def concrete(path: str, ids: dict[str, str]) -> str:
    return path.format(
        key_id=ids["key"],
        session_id="s1",
        tenant="acme",
        sub_id=ids["subscription"],
        name=CHAT,
        version="v1",
        prediction_id=ids["prediction"],
        budget_scope="tenant",
        budget_id="acme",
        flag_key="checkout",
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ids(api: httpx.AsyncClient, upstream: FakeOpenAI) -> dict[str, str]:
    """A key, a subscription and a prediction the paths name."""
    key = await api.post("/v1/admin/keys", json={"scopes": ["inference"]})
    subscription = await api.post(
        "/v1/subscriptions",
        json={"url": upstream.base_url + "/hook", "types": ["x.y"], "secret": "s" * 16},
    )
    chat = await api.post(
        "/v1/chat/completions",
        json={"model": CHAT, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert key.status_code == 201 and subscription.status_code == 201, subscription.text
    assert chat.status_code == 200, chat.text
    return {
        "key": key.json()["id"],
        "subscription": subscription.json()["id"],
        "prediction": chat.headers.get("x-prediction-id", PREDICTION),
    }


async def snapshot(api: httpx.AsyncClient, upstream: FakeOpenAI) -> tuple[Any, ...]:
    audit = (await api.get("/v1/audit/verify")).json()
    events = (await api.get("/v1/events?limit=1000")).json()["events"]
    return audit["records"], audit["head"], len(events), upstream.calls()


async def settled(api: httpx.AsyncClient, upstream: FakeOpenAI) -> tuple[Any, ...]:
    """The snapshot once the audit consumer has caught up with the calls before."""
    last = await snapshot(api, upstream)
    for _ in range(100):
        await asyncio.sleep(0.05)
        now = await snapshot(api, upstream)
        if now == last:
            return now
        last = now
    raise AssertionError("the audit trail never settled")


# --- the tests ------------------------------------------------------------------------------


async def test_every_documented_number_refuses_a_boolean(
    api: httpx.AsyncClient, upstream: FakeOpenAI, ids: dict[str, str]
) -> None:
    document = (await api.get("/openapi.json")).json()
    schema = Schema(document)
    bodies = valid_bodies(upstream.base_url)
    accepted: list[str] = []
    problems: list[str] = []
    tried = 0
    for method, path, body_schema in json_bodies(document):
        places = sorted(set(schema.numbers(body_schema)))
        if not places:
            continue
        if (method, path) not in bodies:
            problems.append(f"{method.upper()} {path}: add a valid body with {places}")
            continue
        valid = bodies[(method, path)]
        url = concrete(path, ids)
        for at in places:
            for value in (True, False):
                body = with_boolean(valid, at, value)
                if body is None:
                    problems.append(f"{method.upper()} {path}: the valid body lacks {at}")
                    break
                before = await settled(api, upstream)
                answer = await api.request(method, url, json=body)
                tried += 1
                field = next(p for p in reversed(at) if p not in ("[]", "{}"))
                if answer.status_code not in (400, 422) or field not in answer.text:
                    problems.append(
                        f"{method.upper()} {path} {at}={value}: {answer.status_code}"
                        f" {answer.text[:200]}"
                    )
                elif (after := await snapshot(api, upstream)) != before:
                    problems.append(f"{method.upper()} {path} {at}={value}: {before} -> {after}")
        answer = await api.request(method, url, json=valid)
        if answer.status_code >= 400:
            accepted.append(f"{method.upper()} {path}: {answer.status_code} {answer.text[:300]}")
    assert problems == [], "\n".join(problems)
    assert accepted == [], "a valid body must be accepted, or the refusals prove nothing"
    assert tried >= 100


async def test_every_documented_query_integer_refuses_a_boolean(
    api: httpx.AsyncClient, ids: dict[str, str]
) -> None:
    document = (await api.get("/openapi.json")).json()
    schema = Schema(document)
    problems: list[str] = []
    tried = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query" or not schema.is_number(parameter["schema"]):
                    continue
                for value in ("true", "false"):
                    url = f"{concrete(path, ids)}?{parameter['name']}={value}"
                    answer = await api.request(method, url)
                    tried += 1
                    errors = answer.json().get("errors", [{}]) if answer.content else [{}]
                    if answer.status_code != 422 or not errors[0].get("field", "").endswith(
                        parameter["name"]
                    ):
                        problems.append(f"{method.upper()} {url}: {answer.status_code}")
    assert problems == []
    assert tried >= 14


@pytest.mark.parametrize("field", ["temperature", "top_p", "max_tokens", "seed", "n"])
async def test_chat_completions_numbers_refuse_booleans(
    api: httpx.AsyncClient, upstream: FakeOpenAI, field: str
) -> None:
    """The chat body is passed on as sent, so the document declares few of its fields; the
    numbers it reads or passes on are still checked before the upstream is called."""
    calls = upstream.calls()
    body = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], field: True}
    answer = await api.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field
    assert upstream.calls() == calls
