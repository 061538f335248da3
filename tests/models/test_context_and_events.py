"""Context enrichment, session history, prediction and feedback events, token charging."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai

from tests.conftest import Server
from tests.models.conftest import chat_version
from tests.models.fake_openai import FakeOpenAI
from tests.models.test_openai_compat import client_for, eventually


def events_of(http: httpx.Client, type_: str) -> list[dict[str, Any]]:
    response = http.get("/v1/events", params={"type": type_, "limit": 1000})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_chat_gets_allowed_context_and_appends_to_the_session(
    server: Server, primary: FakeOpenAI, admin_http: httpx.Client
) -> None:
    patched = admin_http.patch(
        "/v1/context/users/ada",
        json={"preferences": {"language": "de"}, "attributes": {"salary": 99000}},
    )
    assert patched.status_code in (200, 201), patched.text
    session = admin_http.post(
        "/v1/context/sessions", json={"user_id": "ada", "channel": "api", "ttl_seconds": 600}
    )
    assert session.status_code == 201, session.text
    session_id = session.json()["session_id"]

    client = client_for(server, **{"x-session-id": session_id})
    raw = client.chat.completions.with_raw_response.create(
        model="support-chat", messages=[{"role": "user", "content": "guten tag"}], user="ada"
    )
    assert raw.parse().choices[0].message.content == "primary says: guten tag"

    sent = primary.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and '"language":"de"' in sent[0]["content"]
    assert "salary" not in sent[0]["content"]  # not in the model's policy
    assert sent[1:] == [{"role": "user", "content": "guten tag"}]
    assert "baggage" in primary.headers[-1]  # the signed context handle, not the data
    assert "ada" not in primary.headers[-1]["baggage"]

    turns = admin_http.get(f"/v1/context/sessions/{session_id}/interactions").json()
    items = turns["interactions"] if isinstance(turns, dict) else turns
    assert [(t["role"], t["content"]) for t in items[-2:]] == [
        ("user", "guten tag"),
        ("assistant", "primary says: guten tag"),
    ]

    # The prediction's personal part (who, and the reply text) is readable until erasure.
    def event() -> dict[str, Any]:
        made = events_of(admin_http, "meshgate.prediction.made")
        return next(e for e in made if e["id"] == raw.headers["x-prediction-id"])

    data = event()["data"]
    assert data["context_fields"] == ["preferences.language"]
    assert "ada" not in str({k: v for k, v in data.items() if k != "personal"})
    assert data["personal"]["user_id"] == "ada"
    assert data["personal"]["outputs"] == "primary says: guten tag"
    assert admin_http.delete("/v1/context/users/ada").status_code == 200
    assert "primary says" not in str(event())


def test_every_prediction_is_an_event_and_feedback_refers_to_it(
    server: Server, admin_http: httpx.Client
) -> None:
    raw = client_for(server).chat.completions.with_raw_response.create(
        model="support-chat", messages=[{"role": "user", "content": "remember me"}]
    )
    prediction_id = raw.headers["x-prediction-id"]
    made = [
        e for e in events_of(admin_http, "meshgate.prediction.made") if e["id"] == prediction_id
    ]
    assert len(made) == 1  # durable before the answer was sent
    data = made[0]["data"]
    assert (data["model"], data["version"], data["shadow"]) == ("support-chat", "1", False)
    assert data["tokens"] == 12 and data["latency_ms"] > 0 and len(data["inputs_hash"]) == 64
    assert "remember me" not in str(made[0])  # chat inputs are hashed by default

    feedback = admin_http.post(
        f"/v1/predictions/{prediction_id}/feedback", json={"label": "good", "score": 0.9}
    )
    assert feedback.status_code == 201, feedback.text
    found = [
        e
        for e in events_of(admin_http, "meshgate.prediction.feedback")
        if e["data"]["prediction_id"] == prediction_id
    ]
    assert [(e["data"]["label"], e["data"]["score"]) for e in found] == [("good", 0.9)]


def test_bad_feedback_is_refused_and_records_nothing(admin_http: httpx.Client) -> None:
    before = len(events_of(admin_http, "meshgate.prediction.feedback"))
    for body, fragment in [
        ({"score": 1.5}, "score"),
        ({"comment": "no label"}, "label"),
        ({"label": "x", "extra": 1}, "extra"),
    ]:
        response = admin_http.post("/v1/predictions/pred_x/feedback", json=body)
        assert response.status_code == 422, response.text
        assert fragment in response.text
    assert len(events_of(admin_http, "meshgate.prediction.feedback")) == before


def test_tokens_used_are_charged_to_the_key(server: Server, admin_http: httpx.Client) -> None:
    created = admin_http.post("/v1/admin/keys", json={"scopes": ["inference"], "tpm": 20})
    key = created.json()["key"]
    client = client_for(server, key)
    ask = [{"role": "user", "content": "count me"}]
    client.chat.completions.create(model="support-chat", messages=ask)  # 12 of 20 tokens
    client.chat.completions.create(model="support-chat", messages=ask)  # 24: in debt now

    def refused() -> bool:
        try:
            client.chat.completions.create(model="support-chat", messages=ask)
        except openai.RateLimitError:
            return True
        return False

    eventually(refused, timeout=3)


def test_a_failed_inference_is_recorded_and_named_in_the_error(
    server: Server, admin_http: httpx.Client
) -> None:
    raw = admin_http.post(
        "/v1/chat/completions",
        json={"model": "support-chat", "messages": [{"role": "user", "content": "reject me"}]},
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["message"] == "This model's maximum context length is 10 tokens"
    prediction_id = raw.headers["x-prediction-id"]
    [event] = [
        e for e in events_of(admin_http, "meshgate.prediction.made") if e["id"] == prediction_id
    ]
    assert event["data"]["status"] == "rejected" and event["data"]["version"] == "1"
    assert "maximum context length" in event["data"]["error"]


def test_a_streamed_chat_is_recorded_and_appended_once_it_ends(
    server: Server, admin_http: httpx.Client
) -> None:
    session = admin_http.post(
        "/v1/context/sessions", json={"user_id": "lin", "channel": "web", "ttl_seconds": 600}
    ).json()["session_id"]
    client = client_for(server, **{"x-session-id": session})
    with client.chat.completions.with_streaming_response.create(
        model="support-chat",
        messages=[{"role": "user", "content": "tell me more"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        prediction_id = response.headers["x-prediction-id"]
        list(response.parse())

    def recorded() -> bool:
        made = events_of(admin_http, "meshgate.prediction.made")
        return any(e["id"] == prediction_id for e in made)

    eventually(recorded)
    [event] = [
        e for e in events_of(admin_http, "meshgate.prediction.made") if e["id"] == prediction_id
    ]
    assert event["data"]["status"] == "ok" and event["data"]["tokens"] == 30
    assert event["data"]["stream"] == "ok"

    def turns() -> list[tuple[str, str]]:
        got = admin_http.get(f"/v1/context/sessions/{session}/interactions").json()
        items = got["interactions"] if isinstance(got, dict) else got
        return [(t["role"], t["content"]) for t in items]

    eventually(lambda: len(turns()) == 2)  # appended right after the event
    assert turns() == [("user", "tell me more"), ("assistant", "primary says: tell me more ")]


async def test_the_audit_record_of_a_chat_call_names_the_key_that_made_it(
    client: httpx.AsyncClient, primary: FakeOpenAI
) -> None:
    version = chat_version("1", primary)
    assert (await client.post("/v1/registry/models", json={"name": "audited"})).status_code == 201
    added = await client.post("/v1/registry/models/audited/versions", json=version)
    assert added.status_code == 201, added.text
    created = await client.post("/v1/admin/keys", json={"scopes": ["inference"]})
    assert created.status_code == 201, created.text
    key_id, secret = created.json()["id"], created.json()["key"]
    chat = await client.post(
        "/v1/chat/completions",
        json={"model": "audited", "messages": [{"role": "user", "content": "who am i"}]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert chat.status_code == 200, chat.text
    prediction_id = chat.headers["x-prediction-id"]

    made = (await client.get("/v1/events", params={"type": "meshgate.prediction.made"})).json()
    assert [e["data"]["key_id"] for e in made["events"] if e["id"] == prediction_id] == [key_id]

    async def records() -> list[dict[str, Any]]:
        found = await client.get("/v1/audit", params={"actor": key_id})
        assert found.status_code == 200, found.text
        return list(found.json()["records"])

    for _ in range(100):
        if await records():
            break
        await asyncio.sleep(0.1)
    [record] = await records()
    assert record["action"] == "prediction.made"
    assert record["details"]["event_id"] == prediction_id
