"""Retention: old whole segments go, the chain stays verifiable, early removal is found."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meshgate.governance.config import AuditConfig
from meshgate.governance.store import Filters
from tests.governance.conftest import Trail


async def test_pruning_removes_whole_old_segments_and_keeps_the_chain_verifiable(
    trail: Trail,
) -> None:
    await trail.add(12)  # signed at 5 and 10, on day 0
    trail.clock.advance(days=200)
    await trail.add(3)  # 13..15, signed at 15 on day 200

    pruned = await trail.audit.prune()

    assert pruned is not None
    assert (pruned["anchor"]["sequence"], pruned["removed"]) == (10, 10)
    # 11 and 12 are as old, but only a whole segment up to a checkpoint goes.
    assert await trail.sequences() == [11, 12, 13, 14, 15, 16]
    note = (await trail.audit.query(Filters(), after=15))["records"][0]
    assert note["action"] == "audit.pruned"
    assert note["details"]["through_sequence"] == 10
    result = await trail.audit.verify()
    assert result["ok"] is True, result
    assert (result["first_sequence"], result["records"]) == (11, 6)

    await trail.add(7)
    assert (await trail.audit.verify())["ok"] is True
    assert await trail.audit.prune() is None  # nothing more is old enough


async def test_records_within_the_retention_period_are_kept(trail: Trail) -> None:
    await trail.add(12)
    trail.clock.advance(days=182)
    assert await trail.audit.prune() is None
    assert await trail.sequences() == list(range(1, 13))


async def test_tampering_after_a_prune_is_still_found(trail: Trail) -> None:
    await trail.add(12)
    trail.clock.advance(days=200)
    await trail.add(3)
    await trail.audit.prune()
    await trail.sql.execute("UPDATE audit_records SET actor = 'key_mallory' WHERE seq = 12")
    result = await trail.audit.verify()
    assert result["ok"] is False
    assert result["first_bad"]["sequence"] == 12


async def test_removing_recent_records_the_way_a_prune_would_is_found(trail: Trail) -> None:
    await trail.add(12)
    trail.clock.advance(days=10)
    await trail.sql.execute("DELETE FROM audit_records WHERE seq <= 5")
    await trail.sql.execute("DELETE FROM audit_checkpoints WHERE seq < 5")
    result = await trail.audit.verify()
    assert result["ok"] is False
    assert result["first_bad"]["sequence"] == 5
    assert "retention" in result["first_bad"]["reason"]


async def test_removing_old_records_short_of_a_checkpoint_is_found(trail: Trail) -> None:
    await trail.add(12)
    trail.clock.advance(days=400)
    await trail.sql.execute("DELETE FROM audit_records WHERE seq <= 3")
    result = await trail.audit.verify()
    assert result["ok"] is False
    assert result["first_bad"]["sequence"] == 1


def test_retention_is_six_months_at_least() -> None:
    assert AuditConfig().retention_days >= 183
    with pytest.raises(ValidationError, match="retention_days"):
        AuditConfig(retention_days=90)
    with pytest.raises(ValidationError, match="checkpoint_every"):
        AuditConfig(checkpoint_every=0)
