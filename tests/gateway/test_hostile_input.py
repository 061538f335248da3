"""Hostile input: each answered with a 4xx naming the problem, and nothing changes.

Every JSON body goes through one strict parser (meshgate.strictjson), on the framework's
routes and on the hot routes alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from meshgate.config import Settings
from tests.conftest import ADMIN_KEY, app_client

JSON = {"content-type": "application/json"}
BIG = 2**70


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the module (the demo models train once): every test leaves it unchanged."""
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY, demo=True, max_body_bytes=2**16)
    async with app_client(settings) as client:
        yield client


async def snapshot(api: httpx.AsyncClient) -> tuple[Any, ...]:
    keys = (await api.get("/v1/admin/keys")).json()["keys"]
    user = await api.get("/v1/context/users/alice")
    events = (await api.get("/v1/events?limit=1000")).json()["events"]
    return (keys, user.status_code, user.json().get("attributes"), len(events))


@pytest.mark.parametrize(
    "path",
    [f"/v1/events?after={BIG}", f"/v1/audit?after={BIG}", f"/v1/audit/checkpoints?after={BIG}"],
)
async def test_query_integers_past_64_bits_are_422(api: httpx.AsyncClient, path: str) -> None:
    answer = await api.get(path)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].endswith("after")


BODIES: list[tuple[str, str, str, bytes, str]] = [
    # (what, method, path, body, words the answer names)
    (
        "rpm of 2^63",
        "POST",
        "/v1/admin/keys",
        b'{"scopes":["inference"],"rpm":9223372036854775808}',
        "64-bit",
    ),
    (
        "2^64 in a context patch",
        "PATCH",
        "/v1/context/users/alice",
        b'{"attributes":{"n":18446744073709551616}}',
        "64-bit",
    ),
    (
        "a 4,000-digit number in session state",
        "POST",
        "/v1/context/sessions",
        b'{"user_id":"alice","state":{"n":' + b"9" * 4000 + b"}}",
        "64-bit",
    ),
    (
        "nesting 10,000 deep",
        "PATCH",
        "/v1/context/users/alice",
        b'{"attributes":{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        "depth",
    ),
    (
        "nesting past 64 levels",
        "POST",
        "/v1/context/sessions",
        b'{"user_id":"alice","state":{"a":' + b"[" * 70 + b"]" * 70 + b"}}",
        "nested deeper",
    ),
    (
        "invalid UTF-8",
        "PATCH",
        "/v1/context/users/alice",
        b'{"attributes":{"a":"\xff\xfe"}}',
        "UTF-8",
    ),
    (
        "a lone surrogate",
        "PATCH",
        "/v1/context/users/alice",
        b'{"attributes":{"a":"\\ud800"}}',
        "surrogate",
    ),
    (
        "duplicate keys",
        "POST",
        "/v1/admin/keys",
        b'{"scopes":["admin"],"scopes":["inference"]}',
        "appears twice",
    ),
    ("NaN", "PATCH", "/v1/context/users/alice", b'{"attributes":{"a":NaN}}', "malformed"),
    (
        "a feedback label of Infinity",
        "POST",
        "/v1/predictions/p1/feedback",
        b'{"label":Infinity}',
        "malformed",
    ),
    (
        "a number past a double",
        "POST",
        "/v1/predictions/p1/feedback",
        b'{"label":1e999}',
        "infinity",
    ),
    (
        "duplicate keys in chat",
        "POST",
        "/v1/chat/completions",
        b'{"model":"iris","model":"x","messages":[]}',
        "appears twice",
    ),
    (
        "deep nesting in V2",
        "POST",
        "/v2/models/iris/infer",
        b'{"inputs":' + b"[" * 100 + b"]" * 100 + b"}",
        "nested deeper",
    ),
    (
        "a big integer in V2",
        "POST",
        "/v2/models/iris/infer",
        b'{"inputs":[{"name":"input","datatype":"INT64","shape":[1],"data":['
        + str(BIG).encode()
        + b"]}]}",
        "64-bit",
    ),
]


@pytest.mark.parametrize("what,method,path,body,named", BODIES, ids=[b[0] for b in BODIES])
async def test_hostile_bodies_are_400_naming_the_problem_and_change_nothing(
    api: httpx.AsyncClient, what: str, method: str, path: str, body: bytes, named: str
) -> None:
    before = await snapshot(api)
    answer = await api.request(method, path, content=body, headers=JSON)
    assert answer.status_code == 400, (what, answer.status_code, answer.text)
    assert named in answer.text, (what, answer.text)
    assert await snapshot(api) == before


@pytest.mark.parametrize(
    "path,body,shape",
    [
        ("/v1/chat/completions", b'{"model":"demo","messages":[]}', "error"),
        ("/v1/admin/keys", b'{"scopes":["inference"]}', "detail"),
        ("/v2/models/iris/infer", b'{"inputs":[]}', "error"),
        ("/v1/context/sessions", b'{"user_id":"alice"}', "detail"),
    ],
)
async def test_a_body_of_another_type_is_415(
    api: httpx.AsyncClient, path: str, body: bytes, shape: str
) -> None:
    before = await snapshot(api)
    answer = await api.post(path, content=body, headers={"content-type": "text/plain"})
    assert answer.status_code == 415, answer.text
    assert shape in answer.json() and "text/plain" in answer.text
    assert await snapshot(api) == before


async def test_the_largest_64_bit_integers_are_accepted_exactly(api: httpx.AsyncClient) -> None:
    body = b'{"attributes":{"max":9223372036854775807,"min":-9223372036854775808}}'
    answer = await api.patch("/v1/context/users/bob", content=body, headers=JSON)
    assert answer.status_code in (200, 201), answer.text
    stored = (await api.get("/v1/context/users/bob")).json()["attributes"]
    assert stored == {"max": 2**63 - 1, "min": -(2**63)}
