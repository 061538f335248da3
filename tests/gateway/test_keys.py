"""API keys through the admin API and the CLI: hashed at rest, scoped, tenant-bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from meshgate.config import Settings


async def create_key(client: httpx.AsyncClient, **body: object) -> dict:
    response = await client.post("/v1/admin/keys", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_created_key_works_once_shown_and_is_stored_hashed(
    client: httpx.AsyncClient,
) -> None:
    created = await create_key(client, tenant="acme", scopes=["inference"], rpm=50)
    assert created["key"].startswith("mg_") and len(created["key"]) >= 40
    me = await client.get("/v1/whoami", headers=bearer(created["key"]))
    assert me.json() == {
        "key_id": created["id"],
        "tenant": "acme",
        "scopes": ["inference"],
        "rpm": 50,
        "tpm": 200_000,
    }
    listed = (await client.get("/v1/admin/keys")).json()["keys"]
    assert created["key"] not in str(listed)
    platform = client.app.state.services  # type: ignore[attr-defined]
    rows = await platform.sql.fetch_all("SELECT digest FROM api_keys")
    assert all(created["key"] not in r["digest"] for r in rows)
    assert platform.keys.digest(created["key"]) in {r["digest"] for r in rows}


async def test_revoked_and_expired_keys_are_refused(client: httpx.AsyncClient) -> None:
    created = await create_key(client, scopes=["inference"])
    assert (await client.get("/v1/whoami", headers=bearer(created["key"]))).status_code == 200
    revoked = await client.delete(f"/v1/admin/keys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = await client.get("/v1/whoami", headers=bearer(created["key"]))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")

    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    expired = await create_key(client, scopes=["inference"], expires_at=past)
    response = await client.get("/v1/whoami", headers=bearer(expired["key"]))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


async def test_bad_key_requests_change_nothing(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/admin/keys")).json()["keys"]
    cases = [
        ({"scopes": ["inference", "root"]}, 400, "unknown scopes: root"),
        ({"scopes": []}, 422, "scopes"),
        ({"scopes": "inference"}, 422, "scopes"),
        ({"scopes": ["inference"], "rpm": 0}, 422, "rpm"),
        ({"scopes": ["inference"], "colour": "red"}, 422, "colour"),
        ({"scopes": ["inference"], "tenant": "bad tenant!"}, 422, "tenant"),
        ({"scopes": ["inference"], "expires_at": "tomorrow"}, 422, "expires_at"),
    ]
    for body, status, mention in cases:
        response = await client.post("/v1/admin/keys", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert mention in response.json()["detail"], (body, response.json())
    assert (await client.get("/v1/admin/keys")).json()["keys"] == before


async def test_tenants_are_partitioned(client: httpx.AsyncClient) -> None:
    acme_admin = await create_key(client, tenant="acme", scopes=["admin"])
    globex_key = await create_key(client, tenant="globex", scopes=["inference"])
    as_acme = bearer(acme_admin["key"])
    listed = (await client.get("/v1/admin/keys", headers=as_acme)).json()["keys"]
    assert {k["tenant"] for k in listed} == {"acme"}
    for method in ("GET", "DELETE"):
        response = await client.request(
            method, f"/v1/admin/keys/{globex_key['id']}", headers=as_acme
        )
        assert response.status_code == 404, method
    cross = await client.post(
        "/v1/admin/keys", json={"tenant": "globex", "scopes": ["admin"]}, headers=as_acme
    )
    assert cross.status_code == 403
    # The globex key still works: acme's attempts changed nothing.
    assert (await client.get("/v1/whoami", headers=bearer(globex_key["key"]))).status_code == 200


async def test_bootstrap_key_is_generated_once_when_not_configured(
    make_settings: object,
) -> None:
    from tests.conftest import app_client

    settings: Settings = make_settings(admin_key=None)  # type: ignore[operator]
    async with app_client(settings) as client:
        platform = client.app.state.services  # type: ignore[attr-defined]
        row = await platform.sql.fetch_one("SELECT id, scopes FROM api_keys")
        assert row == {"id": "key_bootstrap_admin", "scopes": '["admin"]'}
        assert await platform.keys.ensure_bootstrap(None) is None


# meshgate keys create | list | revoke: tests/cli/test_api_commands.py (over the API).
