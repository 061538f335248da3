"""A store outage holds prediction references back, never loses or forks them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from meshgate.errors import BackendUnavailable
from meshgate.governance import audit as audit_module
from tests.governance.conftest import Clock, open_trail


def prediction(i: int) -> SimpleNamespace:
    return SimpleNamespace(id=f"ev-{i}", tenant="acme", data={"model": "m", "version": "1"})


async def test_references_queued_during_an_outage_are_written_when_the_store_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "MAX_PENDING", 8)
    trail = await open_trail(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, Clock())
    await trail.add(2)
    await trail.sql.close()  # the store goes away

    for i in range(10):
        await trail.audit.on_prediction(prediction(i))
    with pytest.raises(BackendUnavailable):
        await trail.audit.flush()
    assert trail.audit.dropped_references == 2  # bounded memory, and counted

    await trail.sql.start()  # the store is back
    assert await trail.audit.flush() == 8
    assert await trail.sequences() == list(range(1, 11))
    refs = await trail.sql.fetch_all(
        "SELECT resource, model_version FROM audit_records WHERE action = 'prediction.made'"
    )
    assert {(r["resource"], r["model_version"]) for r in refs} == {("models/m", "1")}
    assert (await trail.audit.verify())["ok"] is True
    await trail.sql.close()
