"""Rollouts through the HTTP API: start, read, control by hand, refuse bad input.

The controller's decisions are driven here by prediction and feedback events appended to
the log as the model service appends them (the end-to-end run through a real upstream is
in test_rollouts_e2e.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from meshgate.app import Services
from meshgate.config import Settings
from tests.conftest import app_client

URL = "/v1/registry/models/chat/rollouts"


def services(client: httpx.AsyncClient) -> Services:
    found: Services = client.app.state.services  # type: ignore[attr-defined]
    return found


async def register(client: httpx.AsyncClient, *versions: str, task: str = "chat") -> None:
    made = await client.post("/v1/registry/models", json={"name": "chat", "task": task})
    assert made.status_code == 201, made.text
    for version in versions:
        provider = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
        added = await client.post(
            "/v1/registry/models/chat/versions", json={"version": version, "provider": provider}
        )
        assert added.status_code == 201, added.text
    traffic = {"split": {"1": 100}, "sticky": "user", "fallback": []}
    assert (await client.put("/v1/registry/models/chat/traffic", json=traffic)).status_code == 200
    alias = await client.put("/v1/registry/models/chat/aliases/production", json={"version": "1"})
    assert alias.status_code == 200


async def model(client: httpx.AsyncClient) -> dict[str, Any]:
    found: dict[str, Any] = (await client.get("/v1/registry/models/chat")).json()
    return found


async def test_a_rollout_starts_at_its_first_step_and_is_controlled_by_hand(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "1", "2")
    made = await client.post(URL, json={"candidate": "2", "baseline": "1", "interval_seconds": 60})
    assert made.status_code == 201, made.text
    rollout = made.json()
    assert rollout["traffic_applied"] is True
    assert (rollout["state"], rollout["step"], rollout["current_step"], rollout["weight"]) == (
        "progressing",
        0,
        5,
        5,
    )
    assert rollout["steps"] == [5, 25, 50, 100] and rollout["mode"] == "canary"
    assert (await model(client))["traffic"]["split"] == {"1": 95, "2": 5}
    one = await client.get(f"{URL}/{rollout['id']}")
    assert one.status_code == 200 and one.json()["id"] == rollout["id"]
    listed = (await client.get(URL)).json()["rollouts"]
    assert [r["id"] for r in listed] == [rollout["id"]]

    paused = await client.post(f"{URL}/{rollout['id']}/pause")
    assert paused.json()["state"] == "paused"
    assert (await client.post(f"{URL}/{rollout['id']}/pause")).status_code == 409
    assert (await client.post(f"{URL}/{rollout['id']}/resume")).json()["state"] == "progressing"
    aborted = await client.post(f"{URL}/{rollout['id']}/abort")
    assert aborted.json()["state"] == "aborted"
    assert (await model(client))["traffic"]["split"] == {"1": 100}
    assert (await client.post(f"{URL}/{rollout['id']}/resume")).status_code == 409

    again = await client.post(URL, json={"candidate": "2", "baseline": "1"})
    assert again.status_code == 201, "an ended rollout leaves room for the next"
    promoted = await client.post(f"{URL}/{again.json()['id']}/promote")
    assert promoted.json()["state"] == "promoted"
    after = await model(client)
    assert after["traffic"]["split"] == {"2": 100} and after["aliases"]["production"] == "2"

    events = (await client.get("/v1/events", params={"type": "meshgate.rollout.started"})).json()
    assert len(events["events"]) == 2
    kinds = [
        e["type"].removeprefix("meshgate.rollout.")
        for e in (await client.get("/v1/events", params={"limit": 1000})).json()["events"]
        if e["type"].startswith("meshgate.rollout.")
    ]
    assert kinds == ["started", "paused", "resumed", "aborted", "started", "promoted"]
    records = (await client.get("/v1/audit", params={"action": "rollout.*"})).json()["records"]
    audit = [r["action"] for r in records]
    assert "rollout.started" in audit and "rollout.aborted" in audit
    assert "rollout.promoted" in audit


async def test_bad_input_is_named_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await register(client, "1", "2", "3")
    for body, field in (
        ({"candidate": "2", "baseline": "1", "steps": [5, 5, 100]}, "steps"),
        ({"candidate": "2", "baseline": "1", "steps": [50, 25]}, "steps"),
        ({"candidate": "2", "baseline": "1", "steps": [5, 150]}, "steps"),
        ({"candidate": "9", "baseline": "1"}, "candidate"),
        ({"candidate": "2", "baseline": "8"}, "baseline"),
        ({"candidate": "2", "baseline": "2"}, "candidate"),
        ({"candidate": "2", "baseline": "1", "mode": "yolo"}, "mode"),
        ({"candidate": "2", "baseline": "1", "analysis": {"alpha": 2}}, "analysis"),
        ({"candidate": "2", "baseline": "1", "interval_seconds": 0}, "interval_seconds"),
    ):
        refused = await client.post(URL, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.json()["detail"] or refused.json().get("param", "").endswith(
            field
        ), refused.json()
    assert (await client.get(URL)).json() == {"rollouts": []}
    assert (await model(client))["traffic"]["split"] == {"1": 100}

    first = await client.post(URL, json={"candidate": "2", "baseline": "1"})
    assert first.status_code == 201
    second = await client.post(URL, json={"candidate": "3", "baseline": "1"})
    assert second.status_code == 409 and second.json()["param"] == "model"
    assert len((await client.get(URL)).json()["rollouts"]) == 1
    assert (await model(client))["traffic"]["split"] == {"1": 95, "2": 5}

    missing = await client.post(
        "/v1/registry/models/nope/rollouts", json={"candidate": "2", "baseline": "1"}
    )
    assert missing.status_code == 404
    assert (await client.get(f"{URL}/ro_0123456789abcdef")).status_code == 404
    assert (await client.post(f"{URL}/ro_0123456789abcdef/abort")).status_code == 404


async def test_scopes_and_tenants(client: httpx.AsyncClient) -> None:
    await register(client, "1", "2")
    reader = await client.post("/v1/admin/keys", json={"scopes": ["inference"]})
    headers = {"Authorization": f"Bearer {reader.json()['key']}"}
    body = {"candidate": "2", "baseline": "1"}
    assert (await client.post(URL, json=body, headers=headers)).status_code == 403
    made = await client.post(URL, json=body)
    assert (await client.get(URL, headers=headers)).status_code == 200
    other = await client.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["admin"]})
    theirs = {"Authorization": f"Bearer {other.json()['key']}"}
    mine = f"{URL}/{made.json()['id']}"
    assert (await client.get(mine, headers=theirs)).status_code == 404
    assert (await client.post(f"{mine}/abort", headers=theirs)).status_code == 404
    assert (await client.get(mine)).json()["state"] == "progressing"


async def test_blue_green_switches_in_one_call_and_rolls_back_in_one(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "1", "2")
    made = await client.post(URL, json={"candidate": "2", "baseline": "1", "mode": "blue_green"})
    assert made.status_code == 201, made.text
    switched = await model(client)
    assert switched["traffic"]["split"] == {"2": 100}
    assert switched["traffic"]["shadow"] == ["1"], "blue stays warm, shadowing green"
    assert switched["aliases"]["production"] == "2"
    back = await client.post(f"{URL}/{made.json()['id']}/abort")
    assert back.json()["state"] == "aborted"
    restored = await model(client)
    assert restored["traffic"]["split"] == {"1": 100} and restored["traffic"]["shadow"] == []
    assert restored["aliases"]["production"] == "1"
    history = (await client.get("/v1/registry/models/chat/history")).json()["history"]
    aliases = [h["details"]["version"] for h in history if h["change"] == "model.alias.set"]
    assert aliases == ["1", "2", "1"], "every switch is kept in the model's history"


# --- the controller, on events as the model service appends them ------------------------


async def predict(
    s: Services,
    version: str,
    *,
    error: bool = False,
    latency_ms: float = 50.0,
    label: str | None = None,
    shadow_of: str | None = None,
) -> str:
    data: dict[str, Any] = {
        "model": "chat",
        "version": version,
        "status": "error" if error else "ok",
        "latency_ms": latency_ms,
        "shadow": shadow_of is not None,
    }
    if label is not None:
        data["outputs"] = {"label": label}
    if shadow_of is not None:
        data["shadow_of"] = shadow_of
    event = await s.events.publish(
        "meshgate.prediction.made", tenant="default", subject="models/chat", data=data
    )
    data["prediction_id"] = event.id
    return event.id


async def wait_state(
    client: httpx.AsyncClient, rollout_id: str, ready: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            found: dict[str, Any] = (await client.get(f"{URL}/{rollout_id}")).json()
            if ready(found):
                return found
            await asyncio.sleep(0.05)


def applied(rollout: dict[str, Any]) -> bool:
    """The traffic of the rollout's state is set (it follows the state's write)."""
    return bool(rollout["traffic_applied"])


def fast(**extra: Any) -> dict[str, Any]:
    return {
        "candidate": "2",
        "baseline": "1",
        "steps": [20, 50, 100],
        "interval_seconds": 0.2,
        "min_requests": 50,
        **extra,
    }


async def test_worse_accuracy_from_feedback_rolls_back(client: httpx.AsyncClient) -> None:
    await register(client, "1", "2", task="classification")
    s = services(client)
    made = await client.post(URL, json=fast(min_requests=10_000))
    rollout_id = made.json()["id"]
    for i in range(400):
        version = "2" if i % 5 == 0 else "1"
        prediction = await predict(s, version, label="yes")
        right = i % 10 != 0 if version == "2" else True  # 50 % against 100 %
        await s.events.publish(
            "meshgate.prediction.feedback",
            tenant="default",
            subject=f"predictions/{prediction}",
            data={"prediction_id": prediction, "label": "yes" if right else "no"},
        )
    done = await wait_state(
        client, rollout_id, lambda r: r["state"] != "progressing" and applied(r)
    )
    assert done["state"] == "rolled_back", done
    assert "accuracy" in done["reason"]
    checks = done["figures"]["checks"]
    assert checks["accuracy"]["worse"] is True
    assert checks["accuracy"]["candidate"] < checks["accuracy"]["baseline"]
    assert (await model(client))["traffic"]["split"] == {"1": 100}
    event = (await client.get("/v1/events", params={"type": "meshgate.rollout.rolled_back"})).json()
    assert event["events"][0]["data"]["figures"]["checks"]["accuracy"]["worse"] is True
    audit = await client.get("/v1/audit", params={"action": "rollout.rolled_back"})
    (record,) = audit.json()["records"]
    assert record["details"]["figures"]["candidate"]["feedback"] > 0


async def test_a_paused_rollout_holds_and_a_healthy_one_is_promoted(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "1", "2")
    s = services(client)
    rollout_id = (await client.post(URL, json=fast())).json()["id"]
    await client.post(f"{URL}/{rollout_id}/pause")
    for i in range(200):
        await predict(s, "2" if i % 2 else "1")
    paused = await wait_state(
        client, rollout_id, lambda r: r["figures"].get("candidate", {}).get("requests") == 100
    )
    assert paused["state"] == "paused" and paused["step"] == 0, "it looks, but holds"
    await client.post(f"{URL}/{rollout_id}/resume")
    advanced = await wait_state(client, rollout_id, lambda r: r["step"] == 1 and applied(r))
    assert advanced["weight"] == 50
    assert (await model(client))["traffic"]["split"] == {"1": 50, "2": 50}
    for i in range(200):
        await predict(s, "2" if i % 2 else "1")
    done = await wait_state(client, rollout_id, lambda r: r["state"] == "promoted" and applied(r))
    assert [h["transition"] for h in done["steps_analysis"]] == [
        "started",
        "paused",
        "resumed",
        "advanced",
        "promoted",
    ]
    after = await model(client)
    assert after["traffic"]["split"] == {"2": 100} and after["aliases"]["production"] == "2"


async def test_shadow_first_then_canary_with_agreement(client: httpx.AsyncClient) -> None:
    await register(client, "1", "2", task="classification")
    s = services(client)
    body = fast(mode="shadow_then_canary", analysis={"min_agreement": 0.9})
    rollout_id = (await client.post(URL, json=body)).json()["id"]
    shadowing = await model(client)
    assert shadowing["traffic"]["split"] == {"1": 100}
    assert shadowing["traffic"]["shadow"] == ["2"]
    for _ in range(60):
        primary = await predict(s, "1", label="yes")
        await predict(s, "2", label="yes", shadow_of=primary)
    canary = await wait_state(client, rollout_id, lambda r: r["phase"] == "canary" and applied(r))
    assert canary["weight"] == 20 and canary["steps_analysis"][-1]["reason"].startswith("shadow")
    assert canary["figures"]["candidate"]["agreement"] == 1.0
    split = await model(client)
    assert split["traffic"]["split"] == {"1": 80, "2": 20} and split["traffic"]["shadow"] == []


async def test_the_controller_continues_on_another_node(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(key_pepper="shared")  # both nodes on the same data directory
    async with app_client(settings) as first:
        await register(first, "1", "2")
        rollout_id = (await first.post(URL, json=fast())).json()["id"]
        for i in range(120):
            await predict(services(first), "2" if i % 2 else "1")
        await wait_state(first, rollout_id, lambda r: r["step"] == 1)
    # The first node stopped (its lease released); a second one on the same stores continues.
    async with app_client(settings) as second:
        for i in range(120):
            await predict(services(second), "2" if i % 2 else "1")
        done = await wait_state(second, rollout_id, lambda r: r["state"] == "promoted")
        steps = [h["step"] for h in done["steps_analysis"]]
        assert steps == [0, 1, 1], "the second node continued from step 1"


async def test_traffic_is_not_changed_by_hand_while_a_rollout_sets_it(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "1", "2")
    made = await client.post(URL, json={"candidate": "2", "baseline": "1", "interval_seconds": 60})
    assert made.status_code == 201, made.text
    rollout = made.json()
    before = (await model(client))["traffic"]
    by_hand = {"split": {"1": 50, "2": 50}}
    for method in ("PUT", "PATCH"):
        refused = await client.request(method, "/v1/registry/models/chat/traffic", json=by_hand)
        assert refused.status_code == 409, refused.text
        assert rollout["id"] in refused.json()["detail"]
    assert (await model(client))["traffic"] == before
    assert (await client.post(f"{URL}/{rollout['id']}/pause")).status_code == 200
    paused = await client.put("/v1/registry/models/chat/traffic", json=by_hand)
    assert paused.status_code == 409, "a paused rollout still owns the split"
    assert (await client.post(f"{URL}/{rollout['id']}/abort")).status_code == 200
    after = await client.put("/v1/registry/models/chat/traffic", json=by_hand)
    assert after.status_code == 200, after.text
    assert (await model(client))["traffic"]["split"] == {"1": 50, "2": 50}
