"""Platform-wide figures are the operator's: /metrics answers a root-tenant admin key or the
metrics token, never a tenant's key; the token opens nothing else."""

from __future__ import annotations

from collections.abc import Callable

from meshgate.config import Settings
from tests.conftest import LOOPBACK, app_client
from tests.security.conftest import bearer, make_key

TOKEN = "metrics-" + "t" * 32


async def test_metrics_are_for_the_operator_only(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(security={"egress_allow": LOOPBACK, "metrics_token": TOKEN})
    async with app_client(settings) as client:
        for scopes in (["audit:read"], ["admin"]):
            key = await make_key(client, "acme", *scopes)
            refused = await client.get("/metrics", headers=bearer(key))
            assert refused.status_code == 403, (scopes, refused.text)
            assert "meshgate_" not in refused.text
        assert (await client.get("/metrics")).status_code == 200  # the root tenant's admin
        scraped = await client.get("/metrics", headers=bearer(TOKEN))
        assert scraped.status_code == 200 and "meshgate_http_requests_total" in scraped.text
        for path in ("/v1/admin/keys", "/v1/whoami", "/v1/audit"):
            assert (await client.get(path, headers=bearer(TOKEN))).status_code == 401, path
        wrong = await client.get("/metrics", headers=bearer(TOKEN + "x"))
        assert wrong.status_code == 401
