"""Every prediction leaves a reference in the audit trail: event id, model, version, no payload."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from meshgate.config import Settings
from tests.conftest import app_client


async def wait_for(client: httpx.AsyncClient, count: int, **params: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = await client.get("/v1/audit", params={"limit": 1000, **params})
        got = r.json()["records"]
        if len(got) >= count:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(got)} of {count} records appeared")


async def test_a_prediction_event_is_referenced_without_its_payload(make_settings: Any) -> None:
    settings: Settings = make_settings(audit={"prediction_flush_seconds": 0.01})
    async with app_client(settings) as client:
        events = client.app.state.services.events  # type: ignore[attr-defined]
        event = await events.publish(
            "meshgate.prediction.made",
            tenant="acme",
            subject="models/support-chat",
            data={
                "model": "support-chat",
                "version": "2",
                "key_id": "key_caller",
                "input": {"text": "my account number is 12345"},
            },
        )
        (ref,) = await wait_for(client, 1, action="prediction.made")
        assert ref["tenant"] == "acme"
        assert ref["actor"] == "key_caller"
        assert ref["resource"] == "models/support-chat"
        assert ref["model_version"] == "2"
        assert ref["details"] == {"event_id": event.id, "model": "support-chat", "version": "2"}
        history = await client.get("/v1/audit", params={"resource": "models/support-chat"})
        assert "12345" not in history.text


async def test_a_burst_of_predictions_is_referenced_in_full_and_in_batches(
    make_settings: Any,
) -> None:
    settings: Settings = make_settings(
        audit={"prediction_flush_seconds": 0.05, "checkpoint_every": 400}
    )
    async with app_client(settings) as client:
        events = client.app.state.services.events  # type: ignore[attr-defined]
        published = await asyncio.gather(
            *(
                events.publish(
                    "meshgate.prediction.made",
                    tenant="acme",
                    data={"model": "m", "version": str(i % 3)},
                )
                for i in range(1200)
            )
        )
        refs = await wait_for(client, 1000, action="prediction.made")
        refs += await wait_for(client, 200, action="prediction.made", after=refs[-1]["sequence"])
        assert sorted(r["details"]["event_id"] for r in refs) == sorted(e.id for e in published)
        result = (await client.get("/v1/audit/verify")).json()
        assert result["ok"] is True and result["records"] == 1200
        assert result["checkpoints"]["count"] == 3


async def test_references_still_queued_at_shutdown_are_written(make_settings: Any) -> None:
    settings: Settings = make_settings(audit={"prediction_flush_seconds": 60})
    async with app_client(settings) as client:
        events = client.app.state.services.events  # type: ignore[attr-defined]
        for _ in range(5):
            await events.publish("meshgate.prediction.made", tenant="acme", data={"model": "m"})
        await asyncio.sleep(0.05)  # handed to the audit trail, not yet flushed
    async with app_client(settings) as client:
        refs = await wait_for(client, 5, action="prediction.made")
        assert len(refs) == 5
        assert (await client.get("/v1/audit/verify")).json()["ok"] is True
