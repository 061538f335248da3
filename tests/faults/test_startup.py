"""Start-up work every node repeats is safe when several nodes start at once on one database:
migrations, the bootstrap admin key, the demo models and their artifacts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshgate.app import create_app
from meshgate.config import Settings
from tests.conftest import ADMIN_KEY, app_client

IRIS = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5, 3, 1, 0]}]}


async def start_together(apps: list[Any]) -> list[Any]:
    contexts = [app.router.lifespan_context(app) for app in apps]
    await asyncio.gather(*(c.__aenter__() for c in contexts))
    return contexts


async def test_nodes_starting_together_share_keys_models_and_artifacts(
    make_settings: Callable[..., Settings], postgres_url: str, tmp_path: Path
) -> None:
    def node(i: int, **overrides: Any) -> Settings:
        # Each node has its own data directory, as on separate machines.
        return make_settings(
            database_url=postgres_url,
            data_dir=tmp_path / f"node{i}",
            demo=True,
            key_pepper="shared-pepper",
            **overrides,
        )

    # Generated bootstrap key: exactly one node creates it, none crashes.
    apps = [create_app(node(i, admin_key=None)) for i in range(3)]
    contexts = await start_together(apps)
    for context in contexts:
        await context.__aexit__(None, None, None)

    # The configured key, twice at once, then a third node later: every one serves iris,
    # whose artifacts none of them has in its data directory beforehand.
    apps = [create_app(node(i)) for i in (3, 4)]
    contexts = await start_together(apps)
    try:
        async with app_client(node(5)) as late:
            iris = (await late.get("/v1/registry/models/iris")).json()
            artifacts = {v["provider"]["artifact"] for v in iris["versions"]}
            assert all(a.startswith("sha256:") for a in artifacts)
            answer = await late.post("/v2/models/iris/infer", json=IRIS)
            assert answer.status_code == 200, answer.text
            keys = (await late.get("/v1/admin/keys")).json()["keys"]
            assert [k["id"] for k in keys] == ["key_bootstrap_admin"]
            assert late.headers["Authorization"] == f"Bearer {ADMIN_KEY}"
    finally:
        for context in contexts:
            await context.__aexit__(None, None, None)
