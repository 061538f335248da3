"""Upstream credentials are platform secrets: a tenant's key can no longer read the process's
environment through a provider, uses only what the operator granted it, and nothing shows a
secret (API, audit trail, events, the SQL store in clear)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from tests.conftest import ADMIN_KEY, LOOPBACK, app_client
from tests.models.fake_openai import FakeOpenAI
from tests.security.conftest import bearer, chat, chat_model, make_key


async def test_a_tenant_key_cannot_send_the_admin_key_to_its_own_server(
    client: httpx.AsyncClient, attacker: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHGATE_ADMIN_KEY", ADMIN_KEY)
    writer = await make_key(client, "acme", "registry:write", "inference")
    provider = {
        "type": "openai",
        "base_url": attacker.base_url,
        "api_key_env": "MESHGATE_ADMIN_KEY",
    }
    refused = await chat_model(client, writer, "exfil", provider)
    assert refused.status_code == 400, refused.text
    assert refused.json()["param"] == "provider.api_key_env"
    assert "provider.api_key_env" in refused.json()["detail"]
    answer = await client.post("/v1/chat/completions", json=chat("exfil"), headers=bearer(writer))
    assert answer.status_code in (404, 503), answer.text
    assert all(ADMIN_KEY not in str(h) for h in attacker.headers)


async def test_a_granted_credential_reaches_the_upstream_and_nowhere_else(
    client: httpx.AsyncClient, attacker: FakeOpenAI, settings: Settings
) -> None:
    secret = "sk-upstream-" + "q" * 24
    created = await client.post(
        "/v1/admin/credentials",
        json={"name": "openai-prod", "secret": secret, "tenants": ["acme"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["tenants"] == ["acme"] and secret not in created.text
    writer = await make_key(client, "acme", "registry:write", "inference", "audit:read")
    provider = {"type": "openai", "base_url": attacker.base_url, "credential": "openai-prod"}
    registered = await chat_model(client, writer, "granted", provider)
    assert registered.status_code == 201, registered.text
    answer = await client.post("/v1/chat/completions", json=chat("granted"), headers=bearer(writer))
    assert answer.status_code == 200, answer.text
    assert attacker.headers[-1]["Authorization"] == f"Bearer {secret}"

    # Not in the list, the audit trail, the events or the SQL store in clear.
    listed = await client.get("/v1/admin/credentials")
    assert listed.status_code == 200 and secret not in listed.text
    assert [c["name"] for c in listed.json()["credentials"]] == ["openai-prod"]
    audit = await client.get(
        "/v1/audit", params={"action": "model.version.registered"}, headers=bearer(writer)
    )
    details = audit.json()["records"][0]["details"]
    assert details["provider"] == "openai"
    assert details["url"] == attacker.base_url
    assert details["credential"] == "openai-prod"
    operator_audit = await client.get("/v1/audit", params={"action": "credential.*"})
    assert operator_audit.status_code == 200 and secret not in operator_audit.text
    assert secret not in (await client.get("/v1/events", params={"limit": 1000})).text
    with sqlite3.connect(settings.sql_url.removeprefix("sqlite:///")) as db:
        rows = db.execute("SELECT * FROM upstream_credentials").fetchall()
    assert rows and secret not in repr(rows)


async def test_a_credential_not_granted_is_refused_naming_the_field(
    client: httpx.AsyncClient, attacker: FakeOpenAI
) -> None:
    await client.post(
        "/v1/admin/credentials", json={"name": "acme-only", "secret": "s1", "tenants": ["acme"]}
    )
    intruder = await make_key(client, "intruder", "registry:write", "inference")
    for name in ("acme-only", "no-such-credential"):
        provider = {"type": "openai", "base_url": attacker.base_url, "credential": name}
        refused = await chat_model(client, intruder, f"m-{name}", provider)
        assert refused.status_code == 400, refused.text
        assert refused.json()["param"] == "provider.credential"
        assert "not granted" in refused.json()["detail"]


async def test_taking_a_grant_back_stops_its_use(
    make_settings: Callable[..., Settings], attacker: FakeOpenAI
) -> None:
    async with app_client(make_settings(auth_cache_ttl_seconds=0)) as client:
        client.app.state.services.base.credentials._cache_seconds = 0  # type: ignore[attr-defined]
        await client.post(
            "/v1/admin/credentials", json={"name": "c", "secret": "s-1", "tenants": ["acme"]}
        )
        writer = await make_key(client, "acme", "registry:write", "inference")
        provider = {"type": "openai", "base_url": attacker.base_url, "credential": "c"}
        assert (await chat_model(client, writer, "m", provider)).status_code == 201
        ok = await client.post("/v1/chat/completions", json=chat("m"), headers=bearer(writer))
        assert ok.status_code == 200, ok.text
        revoked = await client.delete("/v1/admin/credentials/c/grants/acme")
        assert revoked.status_code == 200 and revoked.json()["tenants"] == []
        calls = attacker.calls()
        after = await client.post("/v1/chat/completions", json=chat("m"), headers=bearer(writer))
        assert after.status_code == 502, after.text
        assert attacker.calls() == calls


async def test_only_the_operator_manages_credentials(client: httpx.AsyncClient) -> None:
    await client.post("/v1/admin/credentials", json={"name": "c", "secret": "s"})
    tenant_admin = bearer(await make_key(client, "acme", "admin"))
    body = {"name": "mine", "secret": "s"}
    assert (
        await client.post("/v1/admin/credentials", json=body, headers=tenant_admin)
    ).status_code == 403
    assert (await client.get("/v1/admin/credentials", headers=tenant_admin)).status_code == 403
    for method, path in [
        ("GET", "/v1/admin/credentials/c"),
        ("PUT", "/v1/admin/credentials/c/grants/acme"),
        ("DELETE", "/v1/admin/credentials/c"),
    ]:
        response = await client.request(method, path, headers=tenant_admin)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/v1/admin/credentials/c")).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "e", "env": "MESHGATE_ADMIN_KEY"}, "env"),
        ({"name": "e", "env": "HOME"}, "env"),
        ({"name": "e"}, "secret"),
        ({"name": "e", "env": "UPSTREAM_KEY_A", "secret": "s"}, "secret"),
        ({"name": "Bad Name", "secret": "s"}, "name"),
    ],
)
async def test_credential_input_is_checked(
    make_settings: Callable[..., Settings], body: dict[str, Any], param: str
) -> None:
    security = {"egress_allow": LOOPBACK, "credential_env_prefixes": ["UPSTREAM_KEY_"]}
    async with app_client(make_settings(security=security)) as client:
        refused = await client.post("/v1/admin/credentials", json=body)
        assert refused.status_code in (400, 422), refused.text
        assert refused.json()["param"] == param
        assert (await client.get("/v1/admin/credentials")).json() == {"credentials": []}


async def test_env_credentials_from_an_allowed_prefix_and_from_the_config(
    make_settings: Callable[..., Settings],
    attacker: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTREAM_KEY_A", "sk-from-env-a")
    monkeypatch.setenv("OPERATOR_KEY", "sk-from-config")
    security = {
        "egress_allow": LOOPBACK,
        "credential_env_prefixes": ["UPSTREAM_KEY_"],
        "credentials": [{"name": "declared", "env": "OPERATOR_KEY", "tenants": ["acme"]}],
    }
    async with app_client(make_settings(security=security)) as client:
        made = await client.post(
            "/v1/admin/credentials",
            json={"name": "a", "env": "UPSTREAM_KEY_A", "tenants": ["acme"]},
        )
        assert made.status_code == 201 and made.json()["source"] == "env", made.text
        writer = await make_key(client, "acme", "registry:write", "inference")
        for name, expected in (("a", "sk-from-env-a"), ("declared", "sk-from-config")):
            provider = {"type": "openai", "base_url": attacker.base_url, "credential": name}
            assert (await chat_model(client, writer, f"m-{name}", provider)).status_code == 201
            answer = await client.post(
                "/v1/chat/completions", json=chat(f"m-{name}"), headers=bearer(writer)
            )
            assert answer.status_code == 200, answer.text
            assert attacker.headers[-1]["Authorization"] == f"Bearer {expected}"


async def test_api_key_env_still_works_from_the_config_file(
    make_settings: Callable[..., Settings],
    attacker: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONFIG_UPSTREAM_KEY", "sk-config")
    provider = {
        "type": "openai",
        "base_url": attacker.base_url,
        "api_key_env": "CONFIG_UPSTREAM_KEY",
    }
    models = [
        {"name": "declared", "task": "chat", "versions": [{"version": "1", "provider": provider}]}
    ]
    async with app_client(make_settings(models=models)) as client:
        answer = await client.post("/v1/chat/completions", json=chat("declared"))
        assert answer.status_code == 200, answer.text
        assert attacker.headers[-1]["Authorization"] == "Bearer sk-config"
