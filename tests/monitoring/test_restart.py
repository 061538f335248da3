"""A restarted process shows the figures it showed before: it resumes from the snapshot of
monitoring's state in the SQL store and follows the log after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshgate.config import Settings
from tests.conftest import app_client
from tests.monitoring.helpers import feedback, platform_of, predict, report_when, version_of


def drop_event_log(data_dir: Path) -> None:
    for path in data_dir.glob("events.db*"):
        path.unlink()


def feedback_count(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda report: version_of(report, "1")["accuracy"]["feedback"] == n


async def test_a_restarted_process_shows_the_same_figures_and_counts_later_feedback(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    async with app_client(settings) as client:
        platform = platform_of(client)
        made = [
            await predict(platform, "iris", "1", outputs={"label": "a"}, latency_ms=2 + i)
            for i in range(6)
        ]
        await predict(platform, "iris", "1", error="boom")
        for prediction, truth in zip(made[:4], "aaab", strict=True):
            await feedback(platform, prediction, label=truth)
        before = await report_when(client, "iris", feedback_count(4))
        last = await platform.events.log.last_sequence()

    async with app_client(settings) as client:
        platform = platform_of(client)
        # Started from the snapshot the first process saved when it stopped, not the whole log.
        assert platform.monitoring.resumed_from == last
        assert (await client.get("/v1/monitoring/models/iris")).json() == before
        one = version_of(before, "1")
        assert (one["requests"], one["errors"], one["accuracy"]["value"]) == (7, 1, 0.75)
        # A prediction made before the restart still takes its feedback, once.
        await feedback(platform, made[4], label="b")
        await feedback(platform, made[4], label="a")
        after = await report_when(client, "iris", feedback_count(5))
        assert version_of(after, "1")["accuracy"]["value"] == 0.6


async def test_a_snapshot_ahead_of_a_new_log_is_dropped_not_followed(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    async with app_client(settings) as client:
        platform = platform_of(client)
        for _ in range(5):
            await predict(platform, "iris", "1")
        await report_when(client, "iris", lambda r: version_of(r, "1")["requests"] == 5)
    drop_event_log(Path(settings.data_dir))  # as when a stream is dropped and created again
    async with app_client(settings) as client:
        platform = platform_of(client)
        assert platform.monitoring.resumed_from == 0
        await predict(platform, "iris", "1")
        report = await report_when(client, "iris", lambda r: version_of(r, "1")["requests"] >= 1)
        assert version_of(report, "1")["requests"] == 1


async def test_a_node_still_reading_the_log_says_so_and_leaves_the_alert_lease(
    make_settings: Callable[..., Settings],
) -> None:
    from meshgate.monitoring.service import ALERT_LEASE

    async with app_client(make_settings()) as client:
        platform = platform_of(client)
        monitoring = platform.monitoring

        async def lease_holder() -> str | None:
            sql = "SELECT holder FROM cluster_leases WHERE name = ?"
            row = await platform.sql.fetch_one(sql, (ALERT_LEASE,))
            return None if row is None else str(row["holder"])

        for _ in range(3):
            await predict(platform, "iris", "1")
        report = await report_when(client, "iris", lambda r: version_of(r, "1")["requests"] == 3)
        assert report["complete"] is True
        await monitoring._lead_round(30)
        assert await lease_holder() == monitoring.holder
        # As a node that found one more event in the log at start than it has read so far
        # (one with no snapshot, reading a long log): partial figures, and no alert lease.
        monitoring._start_end = monitoring.follower.position + 1
        assert (await client.get("/v1/monitoring/models/iris")).json()["complete"] is False
        await monitoring._lead_round(30)
        assert await lease_holder() is None
        await predict(platform, "iris", "1")  # the event it had still to read
        await report_when(client, "iris", lambda r: r["complete"])
        await monitoring._lead_round(30)
        assert await lease_holder() == monitoring.holder
