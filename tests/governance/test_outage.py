"""A store outage holds prediction references back, never loses, repeats or forks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshgate.errors import BackendUnavailable
from meshgate.events.envelope import Record
from tests.governance.conftest import Clock, open_trail


def prediction(i: int, tenant: str = "acme") -> Record:
    return Record(
        tenant=tenant,
        id=f"ev-{i}",
        source="/meshgate",
        type="meshgate.prediction.made",
        time="2026-01-05T09:00:00.000000Z",
        data={"model": "m", "version": "1", "key_id": f"key_{i % 2}"},
        sequence=i + 1,
    )


async def test_a_batch_refused_during_an_outage_is_written_once_when_the_store_returns(
    tmp_path: Path,
) -> None:
    trail = await open_trail(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, Clock())
    await trail.add(2)
    await trail.sql.close()  # the store goes away
    batch = [prediction(i) for i in range(10)]
    with pytest.raises(BackendUnavailable):
        await trail.audit.record_predictions(batch)  # not committed: delivered again later

    await trail.sql.start()  # the store is back
    assert await trail.audit.record_predictions(batch) == 10
    # At-least-once delivery hands over the same events again (and a repeat within a batch):
    # each is referenced once; the same id in another tenant is another event.
    again = [*batch[5:], prediction(3), prediction(3, tenant="other")]
    assert await trail.audit.record_predictions(again) == 1
    assert await trail.sequences() == list(range(1, 14))
    refs = await trail.sql.fetch_all(
        "SELECT actor, tenant, resource, model_version FROM audit_records"
        " WHERE action = 'prediction.made' ORDER BY seq"
    )
    assert {(r["resource"], r["model_version"]) for r in refs} == {("models/m", "1")}
    assert [r["actor"] for r in refs[:4]] == ["key_0", "key_1", "key_0", "key_1"]
    assert [r["tenant"] for r in refs].count("other") == 1
    assert (await trail.audit.verify())["ok"] is True
    await trail.sql.close()
