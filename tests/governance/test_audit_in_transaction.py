"""An admin change and its audit record commit together or not at all.

The registry, key, tenant-limit, flag, budget, price, guardrail, cache, credential and
subscription writes record their audit entry inside their own transaction. With the audit
insert failing for real (a trigger on ``audit_records`` refuses every row), each write fails
and leaves neither the change nor a record; once the audit store takes rows again, the same
writes succeed and GET /v1/audit shows each of them on an intact chain. Both SQL backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from meshgate.sql import SqlStore, open_sql_store
from tests.conftest import app_client

REFUSE = {
    "sqlite": [
        "CREATE TRIGGER audit_down BEFORE INSERT ON audit_records"
        " BEGIN SELECT RAISE(ABORT, 'the audit store refuses'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION audit_down() RETURNS trigger AS $$"
        " BEGIN RAISE EXCEPTION 'the audit store refuses'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_down BEFORE INSERT ON audit_records"
        " FOR EACH ROW EXECUTE FUNCTION audit_down()",
    ],
}
ACCEPT = {
    "sqlite": ["DROP TRIGGER audit_down"],
    "postgresql": ["DROP TRIGGER audit_down ON audit_records", "DROP FUNCTION audit_down()"],
}
VERSION = {"provider": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}
FLAG = {"variants": {"on": True, "off": False}, "default": "off"}
HOOK = {"url": "http://127.0.0.1:9/hook", "types": ["x.y"], "secret": "s" * 16}


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, make_settings: Any) -> Settings:
    if request.param == "sqlite":
        return make_settings()  # type: ignore[no-any-return]
    return make_settings(database_url=request.getfixturevalue("postgres_url"))  # type: ignore[no-any-return]


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as started:
        # A failed statement is a 500 on the wire; the in-process transport would re-raise it.
        transport = httpx.ASGITransport(app=started.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
        client = httpx.AsyncClient(
            transport=transport, base_url=started.base_url, headers=started.headers
        )
        assert (await client.post("/v1/registry/models", json={"name": "m"})).status_code == 201
        for v in ("v1", "v2"):
            added = await client.post(
                "/v1/registry/models/m/versions", json={"version": v, **VERSION}
            )
            assert added.status_code == 201, added.text
        yield client
        await client.aclose()


@pytest.fixture
async def sql(settings: Settings) -> AsyncIterator[SqlStore]:
    """A connection of the test's own to the platform's database."""
    store = open_sql_store(settings.sql_url)
    await store.start()
    yield store
    await store.close()


async def run(sql: SqlStore, statements: list[str]) -> None:
    for statement in statements:
        await sql.execute(statement)


async def view(api: httpx.AsyncClient, path: str) -> Any:
    """A resource, or its status when there is none (a problem names its request)."""
    answer = await api.get(path)
    return answer.json() if answer.status_code == 200 else answer.status_code


async def state(api: httpx.AsyncClient, key_id: str) -> dict[str, Any]:
    """What the writes below would change, and the audit trail's head."""
    model = (await api.get("/v1/registry/models/m")).json()
    key = (await api.get(f"/v1/admin/keys/{key_id}")).json()
    return {
        "model": model,
        "keys": sorted(k["id"] for k in (await api.get("/v1/admin/keys")).json()["keys"]),
        "key": key,
        "tenant": (await api.get("/v1/admin/tenants/acme")).json(),
        "flag": (await api.get("/v1/flags/beta")).status_code,
        "budget": await view(api, "/v1/budgets/tenant/default"),
        "key budget": await view(api, f"/v1/budgets/key/{key_id}"),
        "price": await view(api, "/v1/registry/models/m/versions/v1/price"),
        "guardrails": await view(api, "/v1/registry/models/m/guardrails"),
        "cache": await view(api, "/v1/registry/models/m/cache"),
        "credentials": await view(api, "/v1/admin/credentials"),
        "subscriptions": await view(api, "/v1/subscriptions"),
        "audit": (await api.get("/v1/audit/verify")).json(),
    }


# (method, path, body, the audit action it leaves)
WRITES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    (
        "POST",
        "/v1/registry/models/m/versions",
        {"version": "v3", **VERSION},
        "model.version.registered",
    ),
    (
        "PUT",
        "/v1/registry/models/m/traffic",
        {"split": {"v1": 50, "v2": 50}},
        "model.traffic.changed",
    ),
    ("PUT", "/v1/registry/models/m/aliases/prod", {"version": "v2"}, "model.alias.set"),
    ("POST", "/v1/registry/models", {"name": "other"}, "model.registered"),
    ("POST", "/v1/admin/keys", {"tenant": "acme", "scopes": ["inference"]}, "key.created"),
    ("PATCH", "/v1/admin/keys/{key}", {"rpm": 7}, "key.changed"),
    ("PUT", "/v1/admin/tenants/acme", {"rpm": 70}, "tenant.limits.set"),
    ("PUT", "/v1/flags/beta", FLAG, "flag.put"),
    ("DELETE", "/v1/admin/keys/{key}", None, "key.revoked"),
    ("PUT", "/v1/budgets/tenant/default", {"amount": 5.0}, "budget.set"),
    ("DELETE", "/v1/budgets/key/{key}", None, "budget.deleted"),
    (
        "PUT",
        "/v1/registry/models/m/versions/v1/price",
        {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
        "model.price.set",
    ),
    (
        "PUT",
        "/v1/registry/models/m/guardrails",
        {"guardrails": [{"check": "injection"}]},
        "model.guardrails.set",
    ),
    ("PUT", "/v1/registry/models/m/cache", {"mode": "exact"}, "model.cache.set"),
    (
        "POST",
        "/v1/admin/credentials",
        {"name": "c1", "secret": "s3cret", "tenants": ["acme"]},
        "credential.created",
    ),
    ("PUT", "/v1/admin/credentials/c0/grants/beta", None, "credential.granted"),
    ("DELETE", "/v1/admin/credentials/c0/grants/acme", None, "credential.grant.revoked"),
    ("DELETE", "/v1/admin/credentials/c0", None, "credential.deleted"),
    ("POST", "/v1/subscriptions", HOOK, "event.subscription.created"),
    ("DELETE", "/v1/subscriptions/{sub}", None, "event.subscription.deleted"),
]


async def test_a_write_whose_audit_record_fails_leaves_neither(
    api: httpx.AsyncClient, sql: SqlStore, settings: Settings
) -> None:
    dialect = "postgresql" if settings.database_url else "sqlite"
    key = (
        await api.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["inference"]})
    ).json()
    assert (await api.put("/v1/admin/tenants/acme", json={"rpm": 60})).status_code == 200
    budget = await api.put(f"/v1/budgets/key/{key['id']}", json={"amount": 3.0})
    assert budget.status_code == 200, budget.text
    credential = {"name": "c0", "secret": "s3cret", "tenants": ["acme"]}
    assert (await api.post("/v1/admin/credentials", json=credential)).status_code == 201
    hook = await api.post("/v1/subscriptions", json=HOOK)
    assert hook.status_code == 201, hook.text
    before = await state(api, key["id"])
    assert before["audit"]["ok"] is True

    await run(sql, REFUSE[dialect])
    for method, path, body, action in WRITES:
        answer = await api.request(
            method, path.format(key=key["id"], sub=hook.json()["id"]), json=body
        )
        assert answer.status_code >= 500, (method, path, answer.status_code, answer.text)
        assert await state(api, key["id"]) == before, (method, path, action)

    await run(sql, ACCEPT[dialect])
    for method, path, body, action in WRITES:
        answer = await api.request(
            method, path.format(key=key["id"], sub=hook.json()["id"]), json=body
        )
        assert answer.status_code < 300, (method, path, answer.text)
        found = (await api.get("/v1/audit", params={"action": action})).json()["records"]
        assert found and found[-1]["actor"] == "key_bootstrap_admin", (action, found)
    after = await state(api, key["id"])
    assert after["audit"]["ok"] is True
    assert after["audit"]["records"] == before["audit"]["records"] + len(WRITES)


async def test_deleting_a_flag_is_audited_with_it(
    api: httpx.AsyncClient, sql: SqlStore, settings: Settings
) -> None:
    dialect = "postgresql" if settings.database_url else "sqlite"
    assert (await api.put("/v1/flags/beta", json=FLAG)).status_code == 200
    await run(sql, REFUSE[dialect])
    assert (await api.delete("/v1/flags/beta")).status_code >= 500
    assert (await api.get("/v1/flags/beta")).status_code == 200
    await run(sql, ACCEPT[dialect])
    assert (await api.delete("/v1/flags/beta")).status_code in (200, 204)
    assert (await api.get("/v1/flags/beta")).status_code == 404
    actions = [
        r["action"]
        for r in (await api.get("/v1/audit", params={"resource": "flags/beta"})).json()["records"]
    ]
    assert actions == ["flag.put", "flag.deleted"]
    assert (await api.get("/v1/audit/verify")).json()["ok"] is True


async def test_a_rollout_move_is_audited_with_it(
    api: httpx.AsyncClient, sql: SqlStore, settings: Settings
) -> None:
    dialect = "postgresql" if settings.database_url else "sqlite"
    url = "/v1/registry/models/m/rollouts"
    made = await api.post(url, json={"candidate": "v2", "baseline": "v1", "interval_seconds": 60})
    assert made.status_code == 201, made.text
    rollout = made.json()
    assert rollout["state"] == "progressing"
    await run(sql, REFUSE[dialect])
    assert (await api.post(f"{url}/{rollout['id']}/pause")).status_code >= 500
    unchanged = (await api.get(f"{url}/{rollout['id']}")).json()
    assert (unchanged["state"], unchanged["steps_analysis"]) == (
        "progressing",
        rollout["steps_analysis"],
    )
    await run(sql, ACCEPT[dialect])
    assert (await api.post(f"{url}/{rollout['id']}/pause")).json()["state"] == "paused"
    records = (await api.get("/v1/audit", params={"action": "rollout.*"})).json()["records"]
    assert [r["action"] for r in records] == ["rollout.started", "rollout.paused"]
    assert (await api.get("/v1/audit/verify")).json()["ok"] is True
