"""The official ``openai`` package against a real Meshgate server and a fake upstream."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.models.fake_openai import FakeOpenAI, bag_of_words


def client_for(server: Server, key: str = ADMIN_KEY, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key=key, max_retries=0, default_headers=headers or None
    )


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_models_are_listed_in_openai_shape(server: Server, inference_key: str) -> None:
    ids = {m.id for m in client_for(server, inference_key).models.list()}
    assert {"support-chat", "embedder", "iris"} <= ids


def test_chat_passes_through_and_names_version_and_prediction(
    server: Server, inference_key: str, primary: FakeOpenAI
) -> None:
    before = primary.calls()
    raw = client_for(server, inference_key).chat.completions.with_raw_response.create(
        model="support-chat", messages=[{"role": "user", "content": "hello"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "primary says: hello"
    assert completion.usage is not None and completion.usage.total_tokens == 12
    assert raw.headers["x-model-version"] == "1"
    assert raw.headers["x-prediction-id"].startswith("pred_")
    assert primary.calls() == before + 1
    sent = primary.requests[-1]
    assert sent["model"] == "up-1"  # the version's upstream model, not the public name
    assert sent["messages"] == [{"role": "user", "content": "hello"}]
    assert primary.headers[-1]["traceparent"].startswith("00-")


def test_trace_context_continues_upstream(server: Server, primary: FakeOpenAI) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client = client_for(server, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    client.chat.completions.create(
        model="support-chat", messages=[{"role": "user", "content": "t"}]
    )
    outbound = primary.headers[-1]["traceparent"].split("-")
    assert outbound[1] == trace_id and outbound[2] != "00f067aa0ba902b7"


def test_stream_arrives_as_server_sent_events(server: Server, inference_key: str) -> None:
    client = client_for(server, inference_key)
    with client.chat.completions.with_streaming_response.create(
        model="support-chat",
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-model-version"] == "1"
        assert response.headers["x-prediction-id"].startswith("pred_")
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "primary says: stream this please "
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 30


def test_embeddings(server: Server, inference_key: str) -> None:
    raw = client_for(server, inference_key).embeddings.with_raw_response.create(
        model="embedder", input=["a", "bbb"]
    )
    result = raw.parse()
    assert [d.embedding for d in result.data] == [bag_of_words("a"), bag_of_words("bbb")]
    assert raw.headers["x-model-version"] == "1"


@pytest.mark.parametrize(
    ("model", "content", "error", "fragment"),
    [
        ("no-such-model", "hi", openai.NotFoundError, "no-such-model"),
        ("support-chat", "reject me", openai.BadRequestError, "maximum context length"),
        ("support-chat", "slow down", openai.RateLimitError, "upstream rate limit"),
        ("iris", "hi", openai.BadRequestError, "classification model"),
    ],
)
def test_errors_have_openai_types(
    server: Server, inference_key: str, model: str, content: str, error: type, fragment: str
) -> None:
    with pytest.raises(error) as caught:
        client_for(server, inference_key).chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}]
        )
    assert fragment in caught.value.message


def test_bad_requests_are_refused_before_any_upstream_call(
    server: Server, inference_key: str, primary: FakeOpenAI
) -> None:
    before = primary.calls()
    client = client_for(server, inference_key)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="support-chat", messages=[])
    with pytest.raises(openai.AuthenticationError):
        client_for(server, "wrong-key").chat.completions.create(
            model="support-chat", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.PermissionDeniedError, match="admin"):
        client.chat.completions.create(
            model="support-chat",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-model-version": "1"},
        )
    with httpx.Client(base_url=server.url) as http:
        auth = {"Authorization": f"Bearer {inference_key}"}
        malformed = http.post("/v1/chat/completions", content=b"{nope", headers=auth)
        assert malformed.status_code == 400
        assert "malformed JSON" in malformed.json()["error"]["message"]
        no_model = http.post("/v1/chat/completions", json={"messages": []}, headers=auth)
        assert no_model.json()["error"]["param"] == "model"
    assert primary.calls() == before


def test_client_leaving_mid_stream_closes_the_upstream_connection(
    server: Server, primary: FakeOpenAI, admin_http: httpx.Client
) -> None:
    started = primary.streams_started
    body = {
        "model": "support-chat",
        "stream": True,
        "messages": [{"role": "user", "content": "endless"}],
    }
    with (
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        prediction_id = response.headers["x-prediction-id"]
        first = next(response.iter_bytes())
        assert first.startswith(b"data: ")
        eventually(lambda: primary.open_streams == 1)
    # The client is gone; the upstream must see its connection closed, not keep streaming.
    eventually(lambda: primary.open_streams == 0, timeout=5)
    assert primary.streams_started == started + 1

    def recorded() -> list[dict[str, object]]:
        made = admin_http.get(
            "/v1/events", params={"type": "meshgate.prediction.made", "limit": 1000}
        ).json()["events"]
        return [e["data"] for e in made if e["id"] == prediction_id]

    eventually(lambda: len(recorded()) == 1)
    assert recorded()[0]["stream"] == "disconnected" and recorded()[0]["status"] == "ok"


def test_breaker_opens_fails_over_and_closes(
    server: Server, flaky: FakeOpenAI, secondary: FakeOpenAI, admin_http: httpx.Client
) -> None:
    client = client_for(server)

    def ask() -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="resilient-chat", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().choices[0].message.content.endswith("says: hi")
        return raw.headers["x-model-version"]

    assert ask() == "1"
    flaky.fail_status = 503
    try:
        calls = flaky.calls()
        assert [ask() for _ in range(3)] == ["2", "2", "2"]  # failed over each time
        assert flaky.calls() == calls + 3
        assert breaker_state(admin_http, "resilient-chat", "1") == 2.0  # open
        assert [ask() for _ in range(5)] == ["2"] * 5
        assert flaky.calls() == calls + 3  # open: the failing upstream is left alone
    finally:
        flaky.fail_status = None
    time.sleep(0.6)  # the breaker's reset time in the test config
    assert ask() == "1"  # half-open trial succeeded
    assert breaker_state(admin_http, "resilient-chat", "1") == 0.0


def breaker_state(http: httpx.Client, model: str, version: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        labels = (f'model="{model}"', f'version="{version}"')
        if line.startswith("meshgate_breaker_state{") and all(x in line for x in labels):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no breaker gauge for {model} {version}")


def test_shadow_is_called_but_never_seen(
    server: Server, primary: FakeOpenAI, secondary: FakeOpenAI, admin_http: httpx.Client
) -> None:
    before = secondary.calls()
    raw = client_for(server).chat.completions.with_raw_response.create(
        model="shadowed-chat", messages=[{"role": "user", "content": "who answers"}]
    )
    assert raw.parse().choices[0].message.content == "primary says: who answers"
    assert raw.headers["x-model-version"] == "1"
    assert "secondary" not in raw.http_response.text
    eventually(lambda: secondary.calls() == before + 1)
    assert secondary.requests[-1]["messages"][-1]["content"] == "who answers"
    assert secondary.requests[-1]["stream"] is False

    def shadow_recorded() -> bool:
        events = admin_http.get(
            "/v1/events", params={"type": "meshgate.prediction.made", "limit": 1000}
        ).json()["events"]
        return any(
            e["data"]["model"] == "shadowed-chat" and e["data"]["shadow"] is True
            and e["data"]["version"] == "2"
            and e["data"]["shadow_of"] == raw.headers["x-prediction-id"]
            for e in events
        )  # fmt: skip

    eventually(shadow_recorded)


def test_admins_choose_a_version_explicitly(server: Server, secondary: FakeOpenAI) -> None:
    raw = client_for(server).chat.completions.with_raw_response.create(
        model="shadowed-chat",
        messages=[{"role": "user", "content": "pinned"}],
        extra_headers={"x-model-version": "2"},
    )
    assert raw.headers["x-model-version"] == "2"
    assert raw.parse().choices[0].message.content == "secondary says: pinned"
    with pytest.raises(openai.NotFoundError, match="no version or alias '9'"):
        client_for(server).chat.completions.create(
            model="shadowed-chat",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-model-version": "9"},
        )
