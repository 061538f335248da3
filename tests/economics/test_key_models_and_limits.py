"""A key's model allow-list and limits, and tenant limits, through the real server."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import Server
from tests.economics.conftest import new_key, openai_client


def test_a_key_limited_to_one_model_calls_and_lists_only_that_one(
    server: Server, admin: httpx.Client
) -> None:
    key_id, key = new_key(admin)
    patched = admin.patch(f"/v1/admin/keys/{key_id}", json={"models": ["alpha"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["models"] == ["alpha"]
    client = openai_client(server, key)

    assert [m.id for m in client.models.list()] == ["alpha"]
    reply = client.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "upstream says: hi"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="beta", messages=[{"role": "user", "content": "hi"}])
    assert denied.value.status_code == 403
    error = denied.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_allowed" and error["type"] == "permission_error"
    assert "beta" in error["message"]

    # Off the OpenAI routes the same refusal is problem+json.
    with server.client(key) as http:
        v2 = http.post("/v2/models/beta/infer", json={"inputs": []})
    assert v2.status_code == 403

    lifted = admin.patch(f"/v1/admin/keys/{key_id}", json={"models": None})
    assert lifted.json()["models"] is None
    assert {"alpha", "beta"} <= {m.id for m in client.models.list()}


def test_patch_changes_only_the_fields_sent(admin: httpx.Client) -> None:
    key_id, _ = new_key(admin, rpm=50)
    admin.patch(f"/v1/admin/keys/{key_id}", json={"models": ["alpha"]})
    record = admin.patch(f"/v1/admin/keys/{key_id}", json={"tpm": 999}).json()
    assert (record["models"], record["rpm"], record["tpm"]) == (["alpha"], 50, 999)
    assert admin.get(f"/v1/admin/keys/{key_id}").json()["tpm"] == 999


def test_a_key_limit_set_by_patch_is_enforced(server: Server, admin: httpx.Client) -> None:
    key_id, key = new_key(admin)
    assert admin.patch(f"/v1/admin/keys/{key_id}", json={"rpm": 2}).status_code == 200
    with server.client(key) as http:
        codes = [http.get("/v1/models").status_code for _ in range(4)]
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
def test_bad_key_patches_name_the_field_and_change_nothing(
    admin: httpx.Client, body: dict[str, object], field: str
) -> None:
    key_id, _ = new_key(admin)
    before = admin.get(f"/v1/admin/keys/{key_id}").json()
    response = admin.patch(f"/v1/admin/keys/{key_id}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]
    assert admin.get(f"/v1/admin/keys/{key_id}").json() == before


def test_another_tenants_key_is_not_found(server: Server, admin: httpx.Client) -> None:
    key_id, _ = new_key(admin)
    created = admin.post("/v1/admin/keys", json={"tenant": "other", "scopes": ["admin"]})
    with server.client(created.json()["key"]) as other:
        response = other.patch(f"/v1/admin/keys/{key_id}", json={"models": []})
    assert response.status_code == 404
    assert admin.get(f"/v1/admin/keys/{key_id}").json()["models"] is None


def test_tenant_limits_are_set_by_the_root_admin_and_enforced(
    server: Server, admin: httpx.Client
) -> None:
    created = admin.post("/v1/admin/keys", json={"tenant": "limited", "scopes": ["admin"]})
    key = created.json()["key"]
    response = admin.put("/v1/admin/tenants/limited", json={"rpm": 3})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "tenant": "limited",
        "rpm": 3,
        "tpm": None,
        "effective_rpm": 3,
        "effective_tpm": response.json()["effective_tpm"],
    }
    with server.client(key) as http:
        # The tenant's own admin reads its limits but cannot raise them.
        assert http.get("/v1/admin/tenants/limited").json()["rpm"] == 3
        codes = [http.get("/v1/models").status_code for _ in range(3)]
        assert codes[-1] == 429
    with server.client(key) as http:
        assert http.get("/v1/admin/tenants/default").status_code in (404, 429)
    bad = admin.put("/v1/admin/tenants/limited", json={"rpm": -5})
    assert bad.status_code == 422 and "rpm" in bad.json()["detail"]
    assert admin.get("/v1/admin/tenants/limited").json()["rpm"] == 3


def test_a_tenant_admin_cannot_set_its_own_limits(server: Server, admin: httpx.Client) -> None:
    created = admin.post("/v1/admin/keys", json={"tenant": "selfish", "scopes": ["admin"]})
    with server.client(created.json()["key"]) as http:
        assert http.put("/v1/admin/tenants/selfish", json={"rpm": 10_000}).status_code == 403
        assert http.get("/v1/admin/tenants/other-one").status_code == 404
    assert admin.get("/v1/admin/tenants/selfish").json()["rpm"] is None
