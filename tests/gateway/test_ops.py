"""Operations routes, field selection, deprecation, readiness and metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from meshgate.config import Settings
from tests.conftest import app_client


async def test_liveness_readiness_and_public_paths(client: httpx.AsyncClient) -> None:
    anonymous = {"Authorization": ""}
    assert (await client.get("/healthz", headers=anonymous)).json() == {"status": "ok"}
    ready = await client.get("/readyz", headers=anonymous)
    assert ready.status_code == 200 and "sql" in ready.json()["backends"]
    assert (await client.get("/openapi.json", headers=anonymous)).status_code == 200


async def test_readyz_names_the_failing_backend_and_limits_hold_per_process(
    make_settings: object,
) -> None:
    settings: Settings = make_settings(limiter_url="redis://127.0.0.1:1/0")  # type: ignore[operator]
    async with app_client(settings) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        failing = ready.json()["failing"]
        assert failing == {"limiter": "rate limiter (Redis) is unavailable; retry later"}
        assert "127.0.0.1" not in ready.text
        # Requests that need nothing but a limit go on, limited by this process alone.
        assert (await client.get("/v1/whoami")).status_code == 200
        made = await client.post("/v1/admin/keys", json={"scopes": ["inference"], "rpm": 2})
        key = {"Authorization": f"Bearer {made.json()['key']}"}
        statuses = [(await client.get("/v1/whoami", headers=key)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


async def test_deprecated_routes_announce_their_sunset(client: httpx.AsyncClient) -> None:
    old = await client.get("/health")
    assert old.status_code == 200
    assert old.headers["deprecation"] == "true"
    assert old.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert 'rel="successor-version"' in old.headers["link"]
    assert "deprecation" not in (await client.get("/healthz")).headers
    spec = (await client.get("/openapi.json")).json()
    assert spec["paths"]["/health"]["get"]["deprecated"] is True


async def test_fields_selects_from_objects_and_lists(client: httpx.AsyncClient) -> None:
    me = await client.get("/v1/whoami?fields=tenant,scopes")
    assert me.json() == {"tenant": "default", "scopes": ["admin"]}
    listed = await client.get("/v1/admin/keys?fields=keys.id,keys.tenant")
    assert listed.json() == {"keys": [{"id": "key_bootstrap_admin", "tenant": "default"}]}
    assert int(listed.headers["content-length"]) == len(listed.content)


async def test_rate_limit_headers_and_429(make_settings: object) -> None:
    settings: Settings = make_settings()  # type: ignore[operator]
    async with app_client(settings) as client:
        created = await client.post("/v1/admin/keys", json={"scopes": ["inference"], "rpm": 3})
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        answers = [await client.get("/v1/whoami", headers=key) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["ratelimit-remaining"] for r in answers[:3]] == ["2", "1", "0"]
        refused = answers[-1]
        assert refused.headers["retry-after"] == "20"
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["content-type"] == "application/problem+json"


async def test_metrics_are_red_per_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/v1/admin/keys/key_bootstrap_admin")
    await client.get("/v1/admin/keys/key_missing")
    text = (await client.get("/metrics")).text
    samples = [
        s
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "meshgate_http_requests_total"
    ]
    by_status = {
        s.labels["status"]: s.value
        for s in samples
        if s.labels["route"] == "/v1/admin/keys/{key_id}"
    }
    assert by_status == {"200": 1.0, "404": 1.0}
