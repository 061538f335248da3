"""The audit trail through the HTTP API, as an auditor uses it."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meshgate.config import Settings
from tests.conftest import ADMIN_KEY
from tests.governance.conftest import Clock

BOOTSTRAP_ID = "key_bootstrap_admin"


async def make_key(client: httpx.AsyncClient, tenant: str, *scopes: str) -> dict[str, Any]:
    r = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    return r.json()


def as_key(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def records(client: httpx.AsyncClient, key: str = ADMIN_KEY, **params: Any) -> list[dict]:
    r = await client.get("/v1/audit", params=params, headers=as_key(client, key))
    assert r.status_code == 200, r.text
    return r.json()["records"]


async def test_creating_and_revoking_a_key_leaves_records_naming_the_actor(
    client: httpx.AsyncClient,
) -> None:
    created = await make_key(client, "acme", "inference")
    assert (await client.delete(f"/v1/admin/keys/{created['id']}")).status_code == 200

    r = await client.get("/v1/audit", params={"resource": f"keys/{created['id']}"})
    assert r.status_code == 200
    got = r.json()["records"]
    assert [(x["action"], x["actor"], x["tenant"]) for x in got] == [
        ("key.created", BOOTSTRAP_ID, "acme"),
        ("key.revoked", BOOTSTRAP_ID, "acme"),
    ]
    assert got[0]["details"] == {"scopes": ["inference"]}
    assert got[1]["prev_hash"] == got[0]["hash"]
    assert created["key"] not in r.text and ADMIN_KEY not in r.text
    datetime.fromisoformat(got[0]["time"])  # an RFC 3339 time


async def test_an_auditor_sees_only_its_tenant_and_root_sees_all(
    client: httpx.AsyncClient,
) -> None:
    auditor = await make_key(client, "acme", "audit:read")
    await make_key(client, "acme", "inference")
    await make_key(client, "globex", "inference")

    mine = await records(client, auditor["key"])
    assert len(mine) == 2 and {x["tenant"] for x in mine} == {"acme"}
    everything = await records(client)
    assert [x["tenant"] for x in everything] == ["acme", "acme", "globex"]
    assert {x["tenant"] for x in await records(client, tenant="globex")} == {"globex"}

    r = await client.get(
        "/v1/audit", params={"tenant": "globex"}, headers=as_key(client, auditor["key"])
    )
    assert r.status_code == 403
    # Verification covers the whole chain whoever asks; it shows no other tenant's records.
    r = await client.get("/v1/audit/verify", headers=as_key(client, auditor["key"]))
    assert r.status_code == 200
    assert r.json()["ok"] is True and r.json()["records"] == 3
    assert "globex" not in r.text


async def test_the_audit_routes_need_the_audit_read_scope(client: httpx.AsyncClient) -> None:
    other = await make_key(client, "default", "inference", "events:read")
    for path in ("/v1/audit", "/v1/audit/verify", "/v1/audit/public-key", "/v1/audit/checkpoints"):
        assert (await client.get(path, headers=as_key(client, other["key"]))).status_code == 403
        assert (await client.get(path, headers={"Authorization": ""})).status_code == 401


async def test_paging_filters_and_a_models_full_history(client: httpx.AsyncClient) -> None:
    audit = client.app.state.services.audit  # type: ignore[attr-defined]
    for action, resource, version in [
        ("model.registered", "models/support-chat", None),
        ("model.version.registered", "models/support-chat/versions/2", "2"),
        ("model.registered", "models/support-chat-v2", None),
        ("model.traffic.changed", "models/support-chat", "2"),
    ]:
        await audit.record(
            actor="key_ops",
            tenant="default",
            action=action,
            resource=resource,
            details={},
            model_version=version,
        )
    history = await records(client, resource="models/support-chat")
    assert [x["resource"] for x in history] == [
        "models/support-chat",
        "models/support-chat/versions/2",
        "models/support-chat",
    ]
    assert [x["model_version"] for x in history] == [None, "2", "2"]
    assert len(await records(client, action="model.registered")) == 2
    assert len(await records(client, action="model.*")) == 4
    assert await records(client, actor="key_nobody") == []

    seen, after = [], 0
    while after is not None:
        r = await client.get("/v1/audit", params={"limit": 3, "after": after})
        page = r.json()
        seen += [x["sequence"] for x in page["records"]]
        after = page["next_after"]
    assert seen == [1, 2, 3, 4]


async def test_since_and_until_select_a_window(client: httpx.AsyncClient) -> None:
    audit = client.app.state.services.audit  # type: ignore[attr-defined]
    audit.clock = Clock(datetime(2026, 3, 1, tzinfo=UTC))
    for day in (1, 2, 3):
        audit.clock.at = datetime(2026, 3, day, 12, tzinfo=UTC)
        await audit.record(
            actor="key_ops", tenant="default", action="x.y", resource=f"d/{day}", details={}
        )
    window = await records(client, since="2026-03-02", until="2026-03-03T00:00:00+00:00")
    assert [x["resource"] for x in window] == ["d/2"]
    assert len(await records(client, since="2026-03-02T12:00:00.002Z")) == 1
    assert len(await records(client, until="2026-03-02T12:00:00.002Z")) == 2


@pytest.mark.parametrize(
    ("params", "status", "names"),
    [
        ({"since": "yesterday"}, 400, "since"),
        ({"until": "2026-13-01"}, 400, "until"),
        ({"since": "0001-01-01T00:00:00+14:00"}, 400, "since"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, 400, "since"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 1001}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"after": -1}, 422, "after"),
        ({"action": "a" * 300}, 422, "action"),
    ],
)
async def test_bad_queries_are_refused_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, names: str
) -> None:
    await make_key(client, "acme", "inference")
    before = (await client.get("/v1/audit/verify")).json()
    r = await client.get("/v1/audit", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert names in r.text
    assert (await client.get("/v1/audit/verify")).json() == before


async def test_anyone_holding_the_public_key_can_check_records_and_checkpoints(
    make_settings: Any,
) -> None:
    from tests.conftest import app_client

    settings: Settings = make_settings(audit={"checkpoint_every": 2})
    async with app_client(settings) as client:
        await make_key(client, "acme", "inference")
        await make_key(client, "acme", "inference")
        published = (await client.get("/v1/audit/public-key")).json()
        got = await records(client)
        cps = (await client.get("/v1/audit/checkpoints")).json()["checkpoints"]

    # Only the standard library and the published key: the documented canonical form.
    for rec in got:
        body = {k: v for k, v in rec.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == rec["hash"]
    assert [c["sequence"] for c in cps] == [2]
    cp = cps[0]
    assert cp["hash"] == got[1]["hash"] and cp["key_id"] == published["key_id"]
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(published["public_key"]))
    payload = {k: cp[k] for k in ("sequence", "hash", "time", "max_gap")}
    payload["kind"] = "meshgate.audit.checkpoint"
    message = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    key.verify(base64.b64decode(cp["signature"]), message)  # raises when forged


async def test_verify_reports_the_first_bad_record_after_tampering(
    settings: Settings,
) -> None:
    from tests.conftest import app_client

    async with app_client(settings) as client:
        for _ in range(3):
            await make_key(client, "acme", "inference")
        ok = (await client.get("/v1/audit/verify")).json()
        assert ok["ok"] is True and ok["records"] == 3
        with sqlite3.connect(settings.data_dir / "meshgate.db") as db:
            db.execute("UPDATE audit_records SET tenant = 'globex' WHERE seq = 2")
        r = await client.get("/v1/audit/verify")
    assert r.status_code == 200
    assert r.json()["ok"] is False
    assert r.json()["first_bad"]["sequence"] == 2


async def test_the_api_works_the_same_on_postgresql(make_settings: Any, postgres_url: str) -> None:
    from tests.conftest import app_client

    settings: Settings = make_settings(database_url=postgres_url, audit={"checkpoint_every": 2})
    async with app_client(settings) as client:
        created = await make_key(client, "acme", "inference")
        await client.delete(f"/v1/admin/keys/{created['id']}")
        got = await records(client, resource=f"keys/{created['id']}")
        assert [x["action"] for x in got] == ["key.created", "key.revoked"]
        result = (await client.get("/v1/audit/verify")).json()
        assert result["ok"] is True
        assert result["checkpoints"]["last"]["sequence"] == 2
