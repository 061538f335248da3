"""A key's model allow-list and limits, and tenant limits, through the HTTP API."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.economics.conftest import as_key, new_key, openai_client


async def test_a_key_limited_to_one_model_calls_and_lists_only_that_one(
    admin: httpx.AsyncClient,
) -> None:
    key_id, key = await new_key(admin)
    patched = await admin.patch(f"/v1/admin/keys/{key_id}", json={"models": ["alpha"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["models"] == ["alpha"]
    client = openai_client(admin, key)

    assert [m.id async for m in client.models.list()] == ["alpha"]
    reply = await client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "upstream says: hi"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await client.chat.completions.create(
            model="beta", messages=[{"role": "user", "content": "hi"}]
        )
    assert denied.value.status_code == 403
    error = denied.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_allowed" and error["type"] == "permission_error"
    assert "beta" in error["message"]

    lifted = await admin.patch(f"/v1/admin/keys/{key_id}", json={"models": None})
    assert lifted.json()["models"] is None
    assert {"alpha", "beta"} <= {m.id async for m in client.models.list()}


async def test_patch_changes_only_the_fields_sent(admin: httpx.AsyncClient) -> None:
    key_id, _ = await new_key(admin, rpm=50)
    await admin.patch(f"/v1/admin/keys/{key_id}", json={"models": ["alpha"]})
    record = (await admin.patch(f"/v1/admin/keys/{key_id}", json={"tpm": 999})).json()
    assert (record["models"], record["rpm"], record["tpm"]) == (["alpha"], 50, 999)
    assert (await admin.get(f"/v1/admin/keys/{key_id}")).json()["tpm"] == 999


async def test_a_key_limit_set_by_patch_is_enforced(admin: httpx.AsyncClient) -> None:
    key_id, key = await new_key(admin)
    assert (await admin.patch(f"/v1/admin/keys/{key_id}", json={"rpm": 2})).status_code == 200
    async with as_key(admin, key) as http:
        codes = [(await http.get("/v1/models")).status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[-1] == 429


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"models": ["no spaces allowed"]}, "models.0"),
        ({"rpm": -1}, "rpm"),
        ({"tpm": 0}, "tpm"),
        ({"modles": ["alpha"]}, "modles"),
    ],
)
async def test_bad_key_patches_name_the_field_and_change_nothing(
    admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    key_id, _ = await new_key(admin)
    before = (await admin.get(f"/v1/admin/keys/{key_id}")).json()
    response = await admin.patch(f"/v1/admin/keys/{key_id}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]
    assert (await admin.get(f"/v1/admin/keys/{key_id}")).json() == before


async def test_another_tenants_key_is_not_found(admin: httpx.AsyncClient) -> None:
    key_id, _ = await new_key(admin)
    created = await admin.post("/v1/admin/keys", json={"tenant": "other", "scopes": ["admin"]})
    async with as_key(admin, created.json()["key"]) as other:
        response = await other.patch(f"/v1/admin/keys/{key_id}", json={"models": []})
    assert response.status_code == 404
    assert (await admin.get(f"/v1/admin/keys/{key_id}")).json()["models"] is None


async def test_tenant_limits_are_set_by_the_root_admin_and_enforced(
    admin: httpx.AsyncClient,
) -> None:
    created = await admin.post("/v1/admin/keys", json={"tenant": "limited", "scopes": ["admin"]})
    response = await admin.put("/v1/admin/tenants/limited", json={"rpm": 3})
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["tenant"], view["rpm"], view["tpm"], view["effective_rpm"]) == (
        "limited",
        3,
        None,
        3,
    )
    async with as_key(admin, created.json()["key"]) as http:
        # The tenant's own admin reads its limits but cannot raise them.
        assert (await http.get("/v1/admin/tenants/limited")).json()["rpm"] == 3
        codes = [(await http.get("/v1/models")).status_code for _ in range(3)]
        assert codes[-1] == 429
    bad = await admin.put("/v1/admin/tenants/limited", json={"rpm": -5})
    assert bad.status_code == 422 and "rpm" in bad.json()["detail"]
    assert (await admin.get("/v1/admin/tenants/limited")).json()["rpm"] == 3


async def test_a_tenant_admin_cannot_set_its_own_limits(admin: httpx.AsyncClient) -> None:
    created = await admin.post("/v1/admin/keys", json={"tenant": "selfish", "scopes": ["admin"]})
    async with as_key(admin, created.json()["key"]) as http:
        refused = await http.put("/v1/admin/tenants/selfish", json={"rpm": 10_000})
        assert refused.status_code == 403
        assert (await http.get("/v1/admin/tenants/default")).status_code == 404
    assert (await admin.get("/v1/admin/tenants/selfish")).json()["rpm"] is None
