"""The blocking client drives registry, inference, context, events and audit end to end."""

from __future__ import annotations

import contextlib
import time

import pytest

from meshgate.client import (
    AuthenticationError,
    BadRequestError,
    Client,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from meshgate.client import models as m
from tests.conftest import ADMIN_KEY, Server

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)

IRIS_INPUT = [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [6.3, 3.3, 6.0, 2.5]}]


@pytest.fixture
def mesh(server: Server) -> Client:
    with Client(server.url, ADMIN_KEY) as client:
        yield client  # type: ignore[misc]


def test_keys_and_identity(mesh: Client, server: Server) -> None:
    assert mesh.whoami().scopes == ["admin"]
    created = mesh.keys.create(["inference", "context:read"], description="sdk test")
    assert isinstance(created, m.KeyCreated) and created.key.startswith("mg_")
    with Client(server.url, created.key) as limited:
        me = limited.whoami()
        assert (me.key_id, me.tenant) == (created.id, "default")
        with pytest.raises(PermissionDeniedError) as refused:
            limited.keys.list()
        assert refused.value.status == 403 and refused.value.request_id
    assert created.id in {k.id for k in mesh.keys.list()}
    assert mesh.keys.revoke(created.id).revoked_at is not None
    with Client(server.url, created.key) as revoked, pytest.raises(AuthenticationError):
        revoked.whoami()
    with pytest.raises(BadRequestError) as bad:
        mesh.keys.create(["superuser"])
    assert "unknown scopes" in bad.value.detail


def test_registry_traffic_inference_and_feedback(mesh: Client) -> None:
    iris = mesh.models.get("iris")
    assert [v.version for v in iris.versions] == ["1", "2"]
    assert iris.traffic is not None and iris.traffic.fallback == ["1"]
    policy = mesh.models.set_traffic("iris", {"1": 100}, fallback=["2"])
    assert policy.split == {"1": 100} and policy.fallback == ["2"]
    served = mesh.inference.infer("iris", IRIS_INPUT, user_id="carol")
    assert served.model_version == "1" and served.prediction_id
    assert served.outputs[0].name == "label" and served.outputs[0].data == [2]
    pinned = mesh.inference.infer("iris", IRIS_INPUT, version="2")
    assert pinned.model_version == "2"
    assert mesh.models.feedback(served.prediction_id, label=2).prediction_id == served.prediction_id
    history = mesh.models.history("iris")
    assert history[-1].change == "model.traffic.changed"
    assert any(x.id == "iris" for x in mesh.inference.models())
    with pytest.raises(NotFoundError) as missing:
        mesh.models.get("no-such-model")
    assert "no-such-model" in missing.value.detail
    with pytest.raises(ValidationError):
        mesh.models.set_traffic("iris", {"1": 70})
    assert mesh.models.get("iris").traffic.split == {"1": 100}  # type: ignore[union-attr]
    # Monitoring reads the log, so the report follows the calls within a moment.
    deadline = time.monotonic() + 10
    monitored: set[str] = set()
    while True:
        with contextlib.suppress(NotFoundError):  # 404 until the first prediction is applied
            monitored = {v["version"] for v in mesh.monitoring.model("iris").versions}
        if monitored >= {"1", "2"} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert monitored >= {"1", "2"}


def test_context_policy_sessions_and_erasure(mesh: Client) -> None:
    user = mesh.context.patch_user(
        "dora", attributes={"plan": "pro"}, preferences={"language": "fr", "tone": "warm"}
    )
    assert user.version == 1 and user.etag
    mesh.context.set_policy("sdk-bot", ["preferences.language", "attributes.plan"])
    seen = mesh.context.resolve("sdk-bot", user_id="dora")
    assert seen.context["preferences"] == {"language": "fr"}
    assert seen.context["attributes"] == {"plan": "pro"}
    session = mesh.context.create_session("dora", channel="api")
    mesh.context.add_interaction(session.session_id, "user", "bonjour")
    [said] = mesh.context.interactions(session.session_id)
    assert (said.role, said.content) == ("user", "bonjour")
    assert mesh.context.export_user("dora").profile.preferences["tone"] == "warm"  # type: ignore[union-attr]
    assert any(p.consumer == "sdk-bot" for p in mesh.context.policies())
    assert mesh.context.erase_user("dora").user_id == "dora"
    with pytest.raises(NotFoundError):
        mesh.context.get_user("dora")


def test_events_pages_publish_and_audit(mesh: Client) -> None:
    sent = [
        {"specversion": "1.0", "id": f"sync-{n}", "source": "/sdk", "type": "sdk.sync", "data": n}
        for n in range(5)
    ]
    stored = mesh.events.publish_batch(sent)
    assert [e.data for e in stored] == list(range(5))
    again = mesh.events.publish(sent[0])
    assert again.sequence == stored[0].sequence  # a repeat is not stored twice
    read = list(mesh.events.iter(type="sdk.sync", page_size=2))
    assert [e.id for e in read] == [f"sync-{n}" for n in range(5)]
    exported = b"".join(mesh.events.export(type="sdk.sync"))
    assert exported.count(b"\n") == 5
    records = list(mesh.audit.iter(page_size=3))
    assert [r.sequence for r in records] == list(range(1, len(records) + 1))
    assert mesh.audit.verify().ok
    assert mesh.audit.public_key().algorithm == "Ed25519"
